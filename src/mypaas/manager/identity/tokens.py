"""API tokens: made (scoped to a team and a role, optionally one app, never more than their maker has),
listed and revoked; stored as SHA-256 digests only, their secret shown once."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from mypaas.errors import Conflict, Forbidden, InvalidSpec, NotFound
from mypaas.manager.identity.directory import Directory
from mypaas.manager.identity.policy import Principal, Role, may_grant
from mypaas.manager.state.models import TokenRow, UserRow

TOKEN_PREFIX = "mp_"  # noqa: S105 - what every token starts with, not a secret
API_TOKEN_TTL_S = 90 * 86400
TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_DURATION = re.compile(r"^(\d+)([mhdw])\Z")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_expiry(text: str | None, default_s: float) -> float | None:
    """``30d``, ``12h``, ``90m``, ``2w`` -> seconds from now; ``never`` -> None; empty -> the default."""
    if text is None or not text.strip():
        return default_s
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidSpec(
            f"invalid expiry {text!r}: expected e.g. 30d, 12h, 90m, 2w or never", field="expires"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def write_secret_file(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and its secret, shown once."""

    info: dict[str, Any]
    secret: str


class Tokens(Directory):
    """Tokens of the platform's users."""

    # -- tokens ---------------------------------------------------------------------------------------

    def create_token(
        self,
        who: Principal,
        name: str,
        *,
        team: str,
        role: Role,
        user: str | None = None,
        app: str | None = None,
        expires: str | None = None,
    ) -> NewToken:
        """A token scoped to ``team`` and ``role`` (and ``app``), never more than its maker has; for another
        user only by a platform admin (and never more than that user has, checked at each use)."""
        if not TOKEN_NAME_RE.fullmatch(name or ""):
            raise InvalidSpec(
                f"invalid token name {name!r}: letters, digits, '.', '_' and '-', at most 64", field="name"
            )
        owner = user or who.user
        if owner != who.user and not (who.admin and who.app is None):
            raise Forbidden("only a platform admin makes tokens for another user", field="user")
        if not owner:
            raise Forbidden("this token cannot make tokens", field="authorization")
        if not self.team_exists(team):
            raise NotFound(f"no team {team!r}", field="team")
        if app is not None and self.team_of_app(app) != team:
            raise InvalidSpec(f"app {app!r} is not an app of team {team!r}", field="app")
        may_grant(who, team, role, app)
        ttl = parse_expiry(expires, API_TOKEN_TTL_S)
        return self._add_token(owner, name, kind="api", team=team, role=role.label, app=app, ttl=ttl)

    def _add_token(
        self,
        user: str,
        name: str,
        *,
        kind: str,
        team: str | None,
        role: str,
        app: str | None,
        ttl: float | None,
    ) -> NewToken:
        secret = new_secret()
        now = time.time()
        with self._sessions.begin() as s:
            u = self._user(s, user)
            taken = s.scalar(
                select(TokenRow).where(
                    TokenRow.user_id == u.id, TokenRow.name == name, TokenRow.revoked_at.is_(None)
                )
            )
            if taken is not None:
                raise Conflict(f"{user!r} already has a token named {name!r}", field="name")
            for old in s.scalars(select(TokenRow).where(TokenRow.user_id == u.id, TokenRow.name == name)):
                old.name = f"{name[:50]}~{old.id}"  # a revoked token keeps its record under another name
            row = TokenRow(
                name=name,
                digest=digest(secret),
                kind=kind,
                user_id=u.id,
                team_id=self._team(s, team).id if team else None,
                role=role,
                app=app,
                created_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )
            s.add(row)
            s.flush()
            s.refresh(row)
            return NewToken(_token_dict(row), secret)

    def tokens(
        self, who: Principal, *, user: str | None = None, everyone: bool = False
    ) -> list[dict[str, Any]]:
        """The caller's tokens (a platform admin: any user's, or everyone's)."""
        if (user not in (None, who.user) or everyone) and not (who.admin and who.app is None):
            raise Forbidden("only a platform admin lists another user's tokens", field="user")
        with self._sessions() as s:
            query = select(TokenRow).options(selectinload(TokenRow.user), selectinload(TokenRow.team))
            if not everyone:
                query = query.join(UserRow, TokenRow.user_id == UserRow.id).where(
                    UserRow.name == (user or who.user)
                )
            return [_token_dict(r) for r in s.scalars(query.order_by(TokenRow.id))]

    def revoke_token(self, who: Principal, ref: str) -> dict[str, Any]:
        """Revoke a token by id (or by name among the caller's own); it stops working on the next request."""
        with self._sessions.begin() as s:
            row = None
            if ref.isdigit():
                row = s.get(TokenRow, int(ref))
            if row is None:
                mine = s.scalar(select(UserRow).where(UserRow.name == who.user))
                if mine is not None:
                    row = s.scalar(select(TokenRow).where(TokenRow.user_id == mine.id, TokenRow.name == ref))
            owner = row.user.name if row is not None and row.user is not None else ""
            if row is None or (owner != who.user and not (who.admin and who.app is None)):
                raise NotFound(f"no token {ref!r} of yours", field="token")
            if row.kind == "file":
                raise Conflict("the admin-token file's token is retired by replacing the file", field="token")
            if row.revoked_at is None:
                row.revoked_at = time.time()
            return _token_dict(row)


def _token_dict(row: TokenRow) -> dict[str, Any]:
    now = time.time()
    state = "active"
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    return {
        "id": row.id,
        "name": row.name,
        "user": row.user.name if row.user is not None else "",
        "kind": row.kind,
        "team": row.team.name if row.team is not None else None,
        "role": row.role or "all of the user's",
        "app": row.app,
        "created": row.created_at,
        "expires": row.expires_at,
        "last_used": row.last_used_at,
        "last_used_from": row.last_used_from,
        "state": state,
    }
