"""The bare repositories pushes land in: ``$MYPAAS_HOME/git/APP.git``, made on an app's first push,
each with a ``pre-receive`` hook that runs the platform's own Python (``python -m mypaas.cli.githook``):
the hook deploys what was pushed and rejects the push when the deploy fails, so the ref moves only with
a release that serves. Git itself is the real ``git`` binary, run with argument lists."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mypaas.errors import BackendError

HOOK = """#!/bin/sh
# MyPaas: deploys what is pushed; a failed deploy rejects the push (written by the platform)
exec "${MYPAAS_PYTHON:-python3}" -m mypaas.cli.githook "$@"
"""
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}


def repo_path(root: Path, app: str) -> Path:
    return root / f"{app}.git"


def ensure_repo(root: Path, app: str) -> Path:
    """The app's bare repository, made if missing, its hook (re)written."""
    path = repo_path(root, app)
    if not (path / "HEAD").exists():
        root.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["git", "init", "--quiet", "--bare", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
            check=False,
        )
        if done.returncode != 0:
            raise BackendError(f"cannot make the repository of {app}: {done.stderr.strip()}")
    hook = path / "hooks" / "pre-receive"
    if not hook.exists() or hook.read_text() != HOOK:
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(HOOK)
    hook.chmod(0o700)
    return path


def receive_command(path: Path, max_bytes: int) -> list[str]:
    """``git receive-pack`` of ``path``, refusing a pack larger than ``max_bytes`` (0: no limit)."""
    return ["git", "-c", f"receive.maxInputSize={max_bytes}", "receive-pack", str(path)]
