"""Platform-wide facts kept as ``Meta`` rows: the platform's id, its backend mode, the mirror's upstream."""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session, sessionmaker

from mypaas.manager.state.models import Meta
from mypaas.states import BackendMode

BACKEND_KEY = "backend"  # "docker" when absent (one engine), "swarm" once the cluster exists
PLATFORM_ID_KEY = "platform_id"


def read_mode(session: Session) -> BackendMode:
    """The platform's backend mode: docker unless the cluster was set up (swarm)."""
    row = session.get(Meta, BACKEND_KEY)
    return BackendMode(row.value) if row is not None else BackendMode.DOCKER


def platform_id(sessions: sessionmaker[Session]) -> str:
    """This platform's id, made at first start; every engine resource is labelled with it."""
    with sessions.begin() as s:
        row = s.get(Meta, PLATFORM_ID_KEY)
        if row is None:
            row = Meta(key=PLATFORM_ID_KEY, value=secrets.token_hex(6))
            s.add(row)
        return row.value


class Setting:
    """One optional text value kept in the store (e.g. the mirror's upstream)."""

    def __init__(self, sessions: sessionmaker[Session], key: str) -> None:
        self._sessions = sessions
        self.key = key

    def get(self) -> str | None:
        with self._sessions() as s:
            row = s.get(Meta, self.key)
            return row.value if row is not None else None

    def set(self, value: str | None) -> None:
        with self._sessions.begin() as s:
            row = s.get(Meta, self.key)
            if value is None:
                if row is not None:
                    s.delete(row)
            else:
                s.merge(Meta(key=self.key, value=value))
