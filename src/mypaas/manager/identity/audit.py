"""The audit log: every call that changed something, every denied call and every failed login — who, with
which token, from where, what, on which app or host, and how it ended — kept in the state store for
``audit_retention_days`` and read back filtered to what the caller may see (``policy.audit_reach``).

Entries never hold a request body, a secret's value, a password or a token: the API's middleware gives
only names, the method and path, and the one-line error of a failure.

Writing: ``record`` only appends to a list in memory; a writer thread, woken at once, writes whatever
has gathered in one transaction. A request never waits on the store, and a crash loses at most the
entries of the moment (those not yet picked up, usually none). ``flush`` waits until everything recorded
so far is written (a read calls it first); ``close`` writes the rest and stops the thread. The same
thread prunes entries past the retention, at its first write and then hourly.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import InvalidSpec
from mypaas.manager.identity.policy import Principal, audit_reach
from mypaas.manager.state.models import AppRow, AuditRow, TeamRow

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
DETAIL_MAX = 500
_SINCE = re.compile(r"^(\d+)([smhdw])\Z")
# the columns' sizes (PostgreSQL enforces them)
_SIZES = {
    **{"user": 63, "token": 64, "source": 64, "action": 64, "app": 63, "host": 253, "team": 63},
    "detail": DETAIL_MAX,
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
IDLE_S = 5.0  # a writer that was not started by ``start`` ends after this long without entries


@dataclass(frozen=True)
class Entry:
    """One audited call. ``result``: ok | denied (401/403) | failed (another 4xx, a failed login) | error."""

    user: str
    token: str
    source: str
    action: str
    result: str
    status: int
    app: str = ""
    host: str = ""
    team: str = ""
    detail: str = ""
    at: float = 0.0  # 0: when recorded


def parse_since(text: str, now: float) -> float:
    """``30m``, ``1h``, ``2d``, ``90s``, ``2w`` back from ``now``, or an ISO time (UTC unless it names its
    zone), as a Unix time."""
    value = text.strip()
    match = _SINCE.fullmatch(value.lower())
    if match is not None:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSpec(
            f"invalid since {text!r}: use a duration such as 30m, 1h or 2d, or an ISO time such as"
            " 2026-12-01T10:00",
            field="since",
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class AuditLog:
    """The audit log in the state store (table ``audit``), written by one background thread."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        retention_days: float,
        clock: Callable[[], float] = time.time,
        prune_every_s: float = PRUNE_EVERY_S,
    ) -> None:
        self._sessions = sessions
        self.retention_days = retention_days
        self._clock = clock
        self._prune_every_s = prune_every_s
        self._pending: list[Entry] = []
        self._writing = False
        self._closing = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._resident = False  # started by ``start``: stays (and prunes hourly) while idle
        self._pruned_at: float | None = None

    # -- writing ----------------------------------------------------------------------------------

    def record(self, entry: Entry) -> None:
        """Keep ``entry``; the writer thread stores it at once (the caller never waits on the store)."""
        if not entry.at:
            entry = replace(entry, at=self._clock())
        with self._cond:
            self._pending.append(entry)
            self._cond.notify_all()
            self._ensure_writer()

    def start(self) -> None:
        """Start the writer for good (the manager's start): it also prunes hourly when nothing is
        recorded. Without it, a writer starts at the first entry and ends when idle."""
        with self._cond:
            self._resident = True
            self._ensure_writer()

    def _ensure_writer(self) -> None:
        if self._closing or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every entry recorded so far is in the store (at most ``timeout`` seconds)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending and not self._writing, timeout)

    def close(self) -> None:
        """Write what is left and stop the writer (the manager's shutdown)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        if self._pending:  # no writer ran (or it gave up): write here
            self._write(self._take())

    def _take(self) -> list[Entry]:
        with self._cond:
            batch, self._pending = self._pending, []
            self._writing = bool(batch)
            return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                wait = self._prune_every_s if self._resident else IDLE_S
                woke = self._cond.wait_for(lambda: self._pending or self._closing, wait)
                if not woke and not self._resident:
                    self._thread = None
                    return
                closing = self._closing
            batch = self._take()
            try:
                if batch:
                    self._write(batch)
                if self._pruned_at is None or self._clock() - self._pruned_at >= self._prune_every_s:
                    self.prune()
            except Exception:  # a locked or broken store: say so, keep the thread alive
                log.exception("writing %d audit entries failed", len(batch))
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
            if closing:
                with self._cond:
                    self._thread = None
                return

    def _write(self, batch: list[Entry]) -> None:
        apps = {e.app for e in batch if e.app and not e.team}
        with self._sessions.begin() as s:
            teams = _teams_of(s, apps) if apps else {}
            for e in batch:
                fields = asdict(e)
                fields["team"] = e.team or teams.get(e.app, "")
                for key, size in _SIZES.items():
                    fields[key] = fields[key][:size]
                s.add(AuditRow(**fields))

    def prune(self) -> int:
        """Delete the entries older than the retention (0 days: keep everything); answers how many."""
        self._pruned_at = self._clock()
        if self.retention_days <= 0:
            return 0
        cutoff = self._clock() - self.retention_days * 86400
        with self._sessions.begin() as s:
            gone = s.execute(delete(AuditRow).where(AuditRow.at < cutoff))
            return int(getattr(gone, "rowcount", 0) or 0)

    # -- reading ----------------------------------------------------------------------------------

    def query(
        self,
        who: Principal,
        *,
        app: str | None = None,
        user: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` entries the caller may read (oldest first): a platform admin's, all; a team
        owner's, those about the team's apps (and the team itself)."""
        start = parse_since(since, self._clock()) if since else None
        self.flush()
        reach = audit_reach(who)
        query = select(AuditRow)
        if not reach.everything:
            if reach.teams is not None:
                query = query.where(AuditRow.team.in_(sorted(reach.teams)))
            if reach.app is not None:
                query = query.where(AuditRow.app == reach.app)
        if app:
            query = query.where(AuditRow.app == app)
        if user:
            query = query.where(AuditRow.user == user)
        if start is not None:
            query = query.where(AuditRow.at >= start)
        with self._sessions() as s:
            rows = list(s.scalars(query.order_by(AuditRow.id.desc()).limit(limit)))
        return [_entry_dict(r) for r in reversed(rows)]


def _teams_of(s: Session, apps: set[str]) -> dict[str, str]:
    query = select(AppRow.name, TeamRow.name).join(TeamRow, AppRow.team_id == TeamRow.id)
    return {app: team for app, team in s.execute(query.where(AppRow.name.in_(sorted(apps))))}


def _entry_dict(row: AuditRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "user": row.user,
        "token": row.token,
        "source": row.source,
        "action": row.action,
        "app": row.app,
        "host": row.host,
        "team": row.team,
        "result": row.result,
        "status": row.status,
        "detail": row.detail,
    }
