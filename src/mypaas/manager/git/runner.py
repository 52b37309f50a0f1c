"""A checked-out tree is deployed by the platform's own CLI, run as a subprocess as the user it acts for:
``mypaas deploy APP DIR --message "<sha12> <subject>" [--preview BRANCH] --json`` with ``MYPAAS_URL`` and a
short-lived token minted for that user, limited to the app (deployer at most, never more than the user has:
checked at each use) and revoked when the command ends. Its progress (stderr) goes to the operation's log
line by line; its JSON answer (stdout) says which release it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mypaas.errors import InvalidSpec

CLI = [sys.executable, "-m", "mypaas.cli.main"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    release: int | None = None


def run_cli(
    args: Sequence[str], *, api_url: str, token: str, emit: Callable[[str], None], timeout_s: float
) -> tuple[int, str]:
    """Run ``mypaas ARGS`` with the token; each stderr line to ``emit``; (exit code, stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYPAAS_TOKEN")}
    env.update(MYPAAS_URL=api_url, MYPAAS_TOKEN=token, NO_COLOR="1", COLUMNS="120")
    try:
        proc = subprocess.Popen(
            [*CLI, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise InvalidSpec(f"cannot run the mypaas CLI: {exc.strerror}", field="deploy") from exc
    out: list[str] = []
    reader = threading.Thread(
        target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + timeout_s
    assert proc.stderr is not None
    for line in proc.stderr:
        text = line.rstrip("\n").replace("\r", "")
        if text.strip():
            emit(text)
        if time.monotonic() > deadline:
            proc.kill()
            emit(f"error: the deploy took longer than {timeout_s:.0f} s")
            break
    code = proc.wait()
    reader.join(timeout=5)
    return code, "".join(out)


def outcome_of(code: int, stdout: str, log_tail: Sequence[str]) -> Outcome:
    """How `mypaas deploy --json` ended: its JSON on success, its last ``error:`` line on failure."""
    try:
        data: dict[str, Any] = json.loads(stdout) if stdout.strip() else {}
    except ValueError:
        data = {}
    op = data.get("operation") or {}
    release = (data.get("release") or {}).get("version")
    if code == 0:
        return Outcome(
            True, str(op.get("message") or "deployed"), release if isinstance(release, int) else None
        )
    errors = [line for line in log_tail if line.startswith("error:")]
    message = errors[-1].removeprefix("error:").strip() if errors else str(op.get("message") or "")
    return Outcome(False, message or f"mypaas deploy exited with {code}")
