"""API tokens: the admin token made at first start (kept in a 0600 file), checked by digest; and the
pull-only token a cluster's hosts pull images with."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import Unauthorized
from mypaas.manager.state.models import TokenRow

ADMIN = "admin"
PULL = "pull"  # registry pulls only


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_admin_token(sessions: sessionmaker[Session], path: Path) -> str:
    """Return the admin token, creating it (and its file, mode 0600) on first start."""
    if path.exists():
        token = path.read_text().strip()
        with sessions.begin() as s:
            if s.scalar(select(TokenRow).where(TokenRow.digest == digest(token))) is None:
                s.add(TokenRow(name=f"admin-{secrets.token_hex(3)}", digest=digest(token), role="admin"))
        return token
    return _new_token_file(sessions, path, "admin", "admin")


def ensure_pull_token(sessions: sessionmaker[Session], path: Path) -> str:
    """The token a cluster's hosts pull images with: it can pull from the registry and nothing else
    (the API refuses it). Made at first need, kept in a 0600 file like the admin token."""
    if path.exists():
        token = path.read_text().strip()
        with sessions.begin() as s:
            if s.scalar(select(TokenRow).where(TokenRow.digest == digest(token))) is not None:
                return token
    return _new_token_file(sessions, path, "pull", PULL)


def _new_token_file(sessions: sessionmaker[Session], path: Path, name: str, role: str) -> str:
    """A new token with ``role``, written to ``path`` (mode 0600) and recorded by its digest."""
    token = "mp_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    with sessions.begin() as s:
        s.add(TokenRow(name=f"{name}-{secrets.token_hex(3)}", digest=digest(token), role=role))
    return token


ADMIN_REGISTRY_ACTIONS = ("pull", "push", "delete", "*")


class TokenChecker:
    """Checks bearer tokens; known digests are cached so a request costs one hash, not a query."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._known: dict[str, tuple[str, str]] = {}  # digest -> (token name, role)

    def check(self, authorization: str | None) -> str:
        """Return the token's name for a valid ``Bearer`` header of an API token, else raise
        Unauthorized (a pull token is not an API token)."""
        name, role = self.identify(authorization)
        if role != ADMIN:
            raise Unauthorized("this token can only pull images from the registry")
        return name

    def registry_grant(self, password: str) -> tuple[str, tuple[str, ...]]:
        """Who a registry login is (its API token as the password) and what it may do in any repository:
        an admin token everything, a pull token pull (a cluster's hosts only pull)."""
        name, role = self.identify(f"Bearer {password}")
        return name, ADMIN_REGISTRY_ACTIONS if role == ADMIN else ("pull",)

    def identify(self, authorization: str | None) -> tuple[str, str]:
        """(name, role) of any valid token in a ``Bearer`` header, else raise Unauthorized."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        key = digest(authorization[7:].strip())
        known = self._known.get(key)
        if known is None:
            with self._sessions() as s:
                row = s.scalar(select(TokenRow).where(TokenRow.digest == key))
            if row is None:
                raise Unauthorized("invalid token")
            known = self._known[key] = (row.name, row.role)
        return known
