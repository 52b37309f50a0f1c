"""How many replicas each service runs after a new release: the formation survives a release unless
the release's file changed its own count.

The rule (written in the README): a service keeps its current count (a ``scale`` by hand, or the
autoscaler's) when the file's ``replicas`` is absent or the same as in the release before; when the
file's value changed (or the service is new), the file's value is used; a rollback keeps the counts.
A service with an autoscale policy keeps its count within the policy's bounds: the autoscaler owns
it, not the file. Each change or kept difference is told in a note the deploy shows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec
from mypaas.manager.state.models import AppRow, FormationRow
from mypaas.monitor.tables import autoscale_policies as ap


def _bounds(s: Session, app: str) -> dict[str, tuple[int, int]]:
    """The (min, max) replicas of the app's autoscaled services."""
    rows = s.execute(select(ap.c.service, ap.c.min_replicas, ap.c.max_replicas).where(ap.c.app == app)).all()
    return {service: (low, high) for service, low, high in rows}


def _one(current: int, said: int | None, before: int | None, bounds: tuple[int, int] | None) -> int:
    """The count a service already in the formation runs after the release."""
    if bounds is not None:
        return min(max(current, bounds[0]), bounds[1])
    if said is None or said == before:
        return current
    return said


def _note(name: str, current: int, after: int, said: int | None, bounds: tuple[int, int] | None) -> str:
    """What the deploy says of one service's count ("" when there is nothing to say)."""
    if bounds is not None:
        if said is None or said == after:
            return "" if after == current else f"{name}: {current} → {after} replicas (autoscale bounds)"
        return f"{name}: keeps {after} replicas (autoscaled {bounds[0]}..{bounds[1]}; the file says {said})"
    if after != current:
        return f"{name}: {current} → {after} replicas, as the file says"
    if said is not None and said != after:
        return f"{name}: keeps {after} replicas (scaled; the file says {said})"
    return ""


def set_formation(
    s: Session, app: AppRow, before: AppSpec | None, spec: AppSpec, *, rollback: bool = False
) -> list[str]:
    """Update ``app``'s formation for a release of ``spec`` (``before``: the app's target release
    until now); answer the notes to show. A rollback keeps every count (the formation is not part of
    a release): only services it brings back or drops are added or removed."""
    if rollback:
        before = spec
    rows = {f.service: f for f in app.formation}
    bounds = _bounds(s, app.name) if rows else {}
    notes: list[str] = []
    for name, svc in spec.services.items():
        row = rows.get(name)
        if row is None:
            app.formation.append(
                FormationRow(service=name, replicas=1 if svc.replicas is None else svc.replicas)
            )
            continue
        old = before.services.get(name) if before is not None else None
        after = _one(row.replicas, svc.replicas, old.replicas if old else None, bounds.get(name))
        note = _note(name, row.replicas, after, svc.replicas, bounds.get(name))
        if note:
            notes.append(note)
        row.replicas = after
    for name, row in rows.items():
        if name not in spec.services:
            s.delete(row)
    return notes


def kept_notes(s: Session, app: AppRow, spec: AppSpec) -> list[str]:
    """What a deploy of the release that runs says of the counts it keeps (``spec`` is that release:
    its ``replicas`` did not change, so every count stays as it is)."""
    rows = {f.service: f.replicas for f in app.formation}
    bounds = _bounds(s, app.name) if rows else {}
    notes = []
    for name, svc in spec.services.items():
        if name in rows:
            note = _note(name, rows[name], rows[name], svc.replicas, bounds.get(name))
            notes += [note] if note else []
    return notes
