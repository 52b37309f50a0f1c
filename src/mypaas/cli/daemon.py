"""Starting and stopping the platform's own processes (the manager, which supervises the router)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from mypaas.cli.units import UNIT, Systemd
from mypaas.errors import BackendError
from mypaas.homefiles import private_umask, tighten
from mypaas.settings import Settings

START_TIMEOUT_S = 30.0


def manager_pid(settings: Settings) -> int | None:
    path = settings.run_dir / "manager.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def api_healthy(settings: Settings, timeout: float = 1.0) -> bool:
    try:
        ca = settings.tls_dir / "ca.crt"  # the API serves TLS when api_host is not loopback
        verify = str(ca) if settings.api_url.startswith("https://") and ca.exists() else True
        r = httpx.get(f"{settings.api_url}/api/v1/health", timeout=timeout, trust_env=False, verify=verify)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def start_manager(settings: Settings, systemd: Systemd | None = None) -> bool:
    """Start the manager unless it answers already; return True if started. Where systemd has this
    platform's unit (``mypaas up --boot`` installed it), systemd starts it; else it runs in the
    background, in its own session."""
    if api_healthy(settings):
        return False
    private_umask()  # the manager's log and what it writes: owner-only (homefiles.py)
    tighten(settings.home)
    settings.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = settings.log_dir / "manager.log"
    if systemd is not None and systemd.manages(settings):
        systemd.start()
        _wait_healthy(settings, log_path, lambda: None, f"systemctl status {UNIT}")
        return True
    env = dict(os.environ, MYPAAS_HOME=str(settings.home))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mypaas.cli.main", "manager", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    _wait_healthy(settings, log_path, proc.poll, str(log_path))
    return True


def _wait_healthy(settings: Settings, log_path: Path, exited: Callable[[], int | None], see: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if exited() is not None:
            raise RuntimeError(f"the manager exited at start; see {log_path}:\n{_tail(log_path)}")
        if api_healthy(settings, timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the manager did not answer within {START_TIMEOUT_S:.0f}s; see {see}")


def stop_manager(settings: Settings) -> bool:
    """Stop the manager (apps keep running); return True if one was running."""
    pid = manager_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


def halt_manager(settings: Settings, systemd: Systemd, wait_s: float = 15.0) -> bool:
    """Stop the manager as `mypaas down` does (through systemd when its unit runs this data folder, so
    its Restart= cannot bring it back) and make sure it is gone: its process has exited and nothing
    answers at its address; BackendError (one line) if not. True when one was running."""
    pid = manager_pid(settings)
    stopped = (systemd.manages(settings) and systemd.stop()) or stop_manager(settings)
    deadline = time.monotonic() + wait_s
    while pid is not None and _alive(pid):
        if time.monotonic() > deadline:
            raise BackendError(f"the manager (pid {pid}) did not stop; stop it (mypaas down) and run again")
        time.sleep(0.1)
    again = manager_pid(settings)
    again = again if again is not None and _alive(again) else None
    if again is not None or api_healthy(settings):
        who = f"pid {again}" if again is not None else settings.api_url
        raise BackendError(f"a manager started again ({who}) while stopping it: stop it and run again")
    return stopped


def _alive(pid: int) -> bool:
    """The process runs (an exited one nobody reaped yet, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal said it is there
    return stat[stat.rfind(")") + 2 :][:1] != "Z"


def stop_router(settings: Settings) -> None:
    from mypaas.manager.offline import stop_router

    stop_router(settings)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
