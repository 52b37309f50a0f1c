"""A checked-out tree is deployed by the platform's own CLI, run as a subprocess as the user it acts for:
``mypaas deploy APP DIR --message "<sha12> <subject>" [--preview BRANCH] --json`` with ``MYPAAS_URL`` and a
short-lived token minted for that user, limited to the app (deployer at most, never more than the user has:
checked at each use) and revoked when the command ends. Its progress (stderr) goes to the operation's log
line by line; its JSON answer (stdout) says which release it made."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import InvalidSpec, NotFound
from mypaas.manager.identity.policy import Role
from mypaas.manager.identity.tokens import digest, new_secret
from mypaas.manager.state.models import TeamRow, TokenRow, UserRow

TOKEN_TTL_S = 3600.0  # the longest a deploy may run with it; revoked as soon as it ends
CLI = [sys.executable, "-m", "mypaas.cli.main"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    release: int | None = None


def mint_token(sessions: sessionmaker[Session], *, user: str, team: str, app: str) -> tuple[int, str]:
    """A deployer token of ``user`` for ``app`` of ``team`` only, expiring in ``TOKEN_TTL_S``."""
    secret = new_secret()
    now = time.time()
    with sessions.begin() as s:
        owner = s.scalar(select(UserRow).where(UserRow.name == user))
        if owner is None:
            raise NotFound(f"user {user!r} (who the deploy acts for) is gone", field="user")
        team_row = s.scalar(select(TeamRow).where(TeamRow.name == team))
        if team_row is None:
            raise NotFound(f"no team {team!r}", field="team")
        row = TokenRow(
            name=f"git-{app[:40]}-{secrets.token_hex(4)}",
            digest=digest(secret),
            kind="api",
            user_id=owner.id,
            team_id=team_row.id,
            role=Role.DEPLOYER.label,
            app=app,
            created_at=now,
            expires_at=now + TOKEN_TTL_S,
        )
        s.add(row)
        s.flush()
        return row.id, secret


def revoke_token(sessions: sessionmaker[Session], token_id: int) -> None:
    with sessions.begin() as s:
        row = s.get(TokenRow, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = time.time()


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
