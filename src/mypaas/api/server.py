"""Runs the manager in the foreground: the platform's threads plus the API under uvicorn. The API
answers plain HTTP on loopback only: a listener beyond loopback (api_host, the cluster address the
hosts fetch registry tokens from) serves TLS with the platform CA's server certificate."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from mypaas.api.app import create_app
from mypaas.clientconf import is_loopback
from mypaas.homefiles import private_umask
from mypaas.manager.pki import ServerFiles
from mypaas.manager.platform import Platform, build_platform
from mypaas.settings import Settings

if TYPE_CHECKING:
    from mypaas.manager.git.ssh import GitEndpoint

EVERYWHERE = ("0.0.0.0", "::")  # noqa: S104 - compared with, not bound
# The manager holds many long-lived objects (each app's parsed release, the ORM's and the API's
# tables). With Python's default thresholds a full collection, which walks every one of them, ran every
# few reconcile passes: at 3,000 apps a pass took 1.7 times its own work (the median against the
# fastest). What start-up made is frozen out of the collector's walks, and the young generation is
# collected less often.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Freeze what exists now (built once, kept for the process's life); collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def listeners(settings: Settings, tls: ServerFiles | None) -> list[tuple[str, ServerFiles | None]]:
    """(address, TLS files or None for plain HTTP) of each API listener."""
    own = None if is_loopback(settings.api_host) else tls
    found: list[tuple[str, ServerFiles | None]] = [(settings.api_host, own)]
    if settings.cluster_addr and settings.api_host not in (settings.cluster_addr, *EVERYWHERE):
        found.append((settings.cluster_addr, tls))
    if any(files is None and not is_loopback(host) for host, files in found):  # pragma: no cover
        raise RuntimeError("a listener beyond loopback has no TLS certificate")
    return found


def _config(app: Any, host: str, port: int, tls: ServerFiles | None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
    )


async def _serve_all(servers: list[uvicorn.Server]) -> None:
    """Run every listener; when one stops (a signal, a failure) stop the others."""
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)


def _git_endpoint(settings: Settings, platform: Platform) -> GitEndpoint | None:
    """The SSH endpoint `git push` deploys through (asyncssh is imported only when it runs)."""
    if not settings.git_ssh_port:
        return None
    from mypaas.manager.git.branches import DeployBranches
    from mypaas.manager.git.ssh import GitEndpoint

    endpoint = GitEndpoint(settings, platform.identity, DeployBranches(platform.sessions))
    endpoint.start()
    return endpoint


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    private_umask()  # the state store, keys, logs and what Caddy and Distribution write: owner-only
    platform = build_platform(settings)
    platform.start()
    git = _git_endpoint(settings, platform)
    pid_file = settings.run_dir / "manager.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    app = create_app(platform)
    tune_gc()
    servers = [
        uvicorn.Server(_config(app, host, settings.api_port, files))
        for host, files in listeners(settings, platform.tls)
    ]

    def _term(_sig: int, _frame: FrameType | None) -> None:
        for server in servers:
            server.should_exit = True

    signal.signal(signal.SIGTERM, _term)
    try:
        asyncio.run(_serve_all(servers))
    finally:
        if git is not None:
            git.stop()
        platform.stop()
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
