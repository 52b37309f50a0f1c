"""The event log: what happened to each app and to the platform, kept bounded in the state store.

Recording never blocks its caller (the reconcile loop, the API): ``record`` puts the event on an
in-process queue that one thread writes in batches. Readers can wait for newer events (follow mode).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, and_, delete, insert, select

from mypaas.changes import Changes
from mypaas.errors import InvalidSpec
from mypaas.monitor.tables import events

log = logging.getLogger("mypaas.events")

FLUSH_S = 0.2  # the writer's longest wait before it writes what is queued
PRUNE_S = 60.0
MAX_QUEUE = 100_000  # past this, events are dropped (and counted) rather than growing memory


@dataclass(frozen=True)
class Event:
    kind: str
    message: str
    app: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "app": self.app,
            "kind": self.kind,
            "message": self.message,
            "data": self.data,
        }


class EventSink(Protocol):
    def record(
        self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...


class NoEvents:
    """A sink that drops everything (the default before a platform wires its event log)."""

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        return None


class EventLog:
    """The event store. ``keep`` bounds the rows kept per app (and for the platform)."""

    def __init__(self, engine: Engine, *, keep: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._keep = keep
        self._clock = clock
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(MAX_QUEUE)
        self.changes = Changes()  # bumped by every flush that wrote events
        self.dropped = 0

    # -- writing --------------------------------------------------------------------------------

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Queue one event; returns at once (the writer thread stores it within ``FLUSH_S``)."""
        row = {"at": self._clock(), "app": app, "kind": kind, "message": message, "data": data or {}}
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.dropped += 1

    def flush(self) -> int:
        """Write every queued event now; returns how many were written."""
        rows: list[dict[str, Any]] = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not rows:
            return 0
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(events), rows)
        except Exception:
            for row in rows:  # keep them for the next flush (a locked or full database)
                try:
                    self._queue.put_nowait(row)
                except queue.Full:
                    self.dropped += 1
            raise
        self.changes.bump()
        return len(rows)

    def prune(self) -> int:
        """Delete all but the newest ``keep`` events of each app (and of the platform)."""
        removed = 0
        with self._engine.begin() as conn:
            apps = conn.execute(select(events.c.app).distinct()).scalars().all()
            for app in apps:
                where = events.c.app.is_(None) if app is None else events.c.app == app
                cutoff = conn.execute(
                    select(events.c.id).where(where).order_by(events.c.id.desc()).offset(self._keep).limit(1)
                ).scalar()
                if cutoff is not None:
                    removed += conn.execute(delete(events).where(and_(where, events.c.id <= cutoff))).rowcount
        return removed

    def run(self, stop: threading.Event) -> None:
        """The writer thread: flush every ``FLUSH_S``, prune every ``PRUNE_S``, until ``stop``."""
        next_prune = time.monotonic() + PRUNE_S
        while not stop.wait(FLUSH_S):
            try:
                self.flush()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_S
                    self.prune()
            except Exception:  # a full disk or a locked database must not kill the writer
                log.exception("writing events failed")
        self.flush()

    # -- reading --------------------------------------------------------------------------------

    def query(
        self,
        *,
        app: str | None = None,
        platform_only: bool = False,
        since: float | None = None,
        after: int | None = None,
        limit: int = 100,
        among: Collection[str] | None = None,
    ) -> list[Event]:
        """The newest ``limit`` events matching, oldest first; ``among``: only events of these apps."""
        query = select(events)
        if among is not None:
            query = query.where(events.c.app.in_(sorted(among)))
        if app is not None:
            query = query.where(events.c.app == app)
        elif platform_only:
            query = query.where(events.c.app.is_(None))
        if since is not None:
            query = query.where(events.c.at >= since)
        if after is not None:
            query = query.where(events.c.id > after)
        query = query.order_by(events.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Event(id=r["id"], at=r["at"], app=r["app"], kind=r["kind"], message=r["message"], data=r["data"])
            for r in reversed(rows)
        ]

    def wait(self, *, after: int, timeout: float, app: str | None = None, limit: int = 100) -> list[Event]:
        """Events newer than ``after``; if none yet, wait up to ``timeout`` for some (long poll)."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.changes.version
            found = self.query(app=app, after=after, limit=limit)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            self.changes.wait(seen, min(left, 1.0))


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, field: str = "since") -> float:
    """``90s``, ``5m``, ``1h``, ``7d`` or plain seconds, as seconds."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit is not None else value
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10 * 365 * 86400:  # also refuses inf and nan
        raise InvalidSpec(f"invalid duration {text!r}: use e.g. 30s, 15m, 1h or 7d", field=field)
    return seconds
