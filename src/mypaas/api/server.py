"""Runs the manager in the foreground: the platform's threads plus the API under uvicorn."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

import uvicorn

from mypaas.api.app import create_app
from mypaas.homefiles import private_umask
from mypaas.manager.platform import build_platform
from mypaas.settings import Settings


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    private_umask()  # the state store, keys, logs and what Caddy and Distribution write: owner-only
    platform = build_platform(settings)
    platform.start()
    pid_file = settings.run_dir / "manager.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    config = uvicorn.Config(
        create_app(platform),
        # a cluster's hosts fetch registry tokens from the API: it listens on every address then
        host="0.0.0.0" if settings.cluster_addr else settings.api_host,  # noqa: S104
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)

    def _term(_sig: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, _term)
    try:
        server.run()
    finally:
        platform.stop()
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
