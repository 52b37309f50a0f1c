"""Helper processes of the platform (Caddy, Distribution): started detached in their own session,
with a pid file and a log, found again by pid after a manager restart, and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mypaas.errors import BackendError


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    what: str,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached (it outlives the manager), logging to ``log_path``; write its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
    except OSError as exc:
        raise BackendError(f"{what}: cannot start {argv[0]}: {exc}") from exc
    pid_path.write_text(f"{proc.pid}\n")
    return proc


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def is_program(pid: int, program: str) -> bool:
    """Guard against a recycled pid: is ``pid`` alive and running ``program``?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    first = cmdline.split(b"\0", 1)[0]
    return program.encode() in first


def terminate(pid_path: Path, program: str, timeout: float = 5.0) -> bool:
    """SIGTERM the process in ``pid_path`` if it still runs ``program`` (SIGKILL after ``timeout``)."""
    pid = read_pid(pid_path)
    if pid is None or not is_program(pid, program):
        pid_path.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_program(pid, program):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        time.sleep(0.05)
    if is_program(pid, program):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
