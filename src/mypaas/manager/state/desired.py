"""Reading desired state for the reconcile loop in a handful of queries, whatever the number of apps."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, select, type_coerce
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec
from mypaas.manager.reconcile.plan import DesiredApp
from mypaas.manager.state.models import AppRow, DomainRow, FormationRow, OperationRow, ReleaseRow
from mypaas.states import AppState, BackendMode

# Releases never change, so their specs (parsed) and config vars (decrypted) are kept between passes:
# (row id, created at) -> (spec, config). A pass looks up the target release of the apps whose rows
# changed, loads (decrypts, parses) those it has not seen, and forgets what no app targets any more.
# Built from a private copy of what the pass needs, so another thread's pruning only costs a reload.
_RELEASES: dict[tuple[int, float], tuple[AppSpec, dict[str, str]]] = {}
_LOCK = threading.Lock()
_LOAD_BATCH = 500  # ids per IN (...) query
# Every app's identity and the time of its row's last write: the ORM writes ``updated_at`` with every
# change of the row (models.py: onupdate; nothing writes the apps table but the ORM), so an app whose
# (id, name, updated_at) is what it was still has the row it had, and targets the same release (a new
# target always comes with a write). Only the rows of the other apps are read whole.
_STAMPS = select(AppRow.id, AppRow.name, AppRow.updated_at, AppRow.operation_id)
# An app's whole row and its target release's (row id, created at); the states as the stored strings
# (AppState and BackendMode are str enums).
_APPS = select(
    AppRow.id,
    AppRow.name,
    type_coerce(AppRow.state, String),
    AppRow.target_version,
    AppRow.target_generation,
    AppRow.current_version,
    AppRow.current_generation,
    AppRow.operation_id,
    type_coerce(AppRow.backend, String),
    AppRow.remove_volumes,
    AppRow.remove_force,
    AppRow.plain_http,
    ReleaseRow.id,
    ReleaseRow.created_at,
).outerjoin(ReleaseRow, and_(ReleaseRow.app_id == AppRow.id, ReleaseRow.version == AppRow.target_version))


@dataclass(frozen=True)
class _Made:
    row: tuple[Any, ...]  # the app's (id, name, updated_at), its formation and its operation's deadline
    app: DesiredApp
    release: tuple[int, float] | None  # its target release's (row id, created at)


class Unchanged:
    """The desired state one reader (the reconcile loop) was last given, by app, with the rows it was
    made of: an app whose rows are what they were is given the same object again (its target release
    not even looked up), so the reader can tell at a glance (``is``) the apps that did not change."""

    def __init__(self) -> None:
        self._made: dict[str, _Made] = {}

    def same(self, name: str, row: tuple[Any, ...]) -> _Made | None:
        made = self._made.get(name)
        return made if made is not None and made.row == row else None

    def keep(self, made: dict[str, _Made]) -> None:
        self._made = made


def load_desired(
    session: Session, unchanged: Unchanged | None = None
) -> tuple[dict[str, DesiredApp], dict[str, list[str]]]:
    """Every app's desired state, plus the custom domains of each app that has some. With ``unchanged``,
    an app whose rows did not change since the last call is the very object that call returned."""
    conn = session.connection()  # plain rows through Core: no ORM object, nor the ORM's row handling
    stamps = conn.execute(_STAMPS).all()  # a reading session is one snapshot: the rows read below match
    scale: dict[int, dict[str, int]] = defaultdict(dict)
    for app_id, service, replicas in conn.execute(
        select(FormationRow.app_id, FormationRow.service, FormationRow.replicas)
    ).all():  # fetched at once: row by row costs twice as much
        scale[app_id][service] = replicas
    domains: dict[int, list[str]] = defaultdict(list)
    for domain, app_id in conn.execute(select(DomainRow.domain, DomainRow.app_id)):
        domains[app_id].append(domain)
    running = [op_id for *_, op_id in stamps if op_id]
    deadlines: dict[str, float | None] = {}
    if running:
        ops = select(OperationRow.id, OperationRow.deadline).where(OperationRow.id.in_(running))
        deadlines.update((op_id, deadline) for op_id, deadline in conn.execute(ops))
    made: dict[str, _Made] = {}
    changed: dict[int, tuple[Any, ...]] = {}
    for app_id, name, updated, op_id in stamps:
        key = ((app_id, name, updated), scale.get(app_id, {}), deadlines.get(op_id) if op_id else None)
        same = unchanged.same(name, key) if unchanged is not None else None
        if same is not None:
            made[name] = same
        else:
            changed[app_id] = key
    made.update(_make(session, changed))
    made = {name: made[name] for _, name, _, _ in stamps if name in made}  # in the store's order
    _forget_others({m.release for m in made.values() if m.release is not None})
    if unchanged is not None:  # an app whose target release was not found is read whole again
        unchanged.keep({name: m for name, m in made.items() if m.release is not None or m.app.target is None})
    names = {name: sorted(domains[app_id]) for app_id, name, _, _ in stamps if app_id in domains}
    return {name: m.app for name, m in made.items()}, names


def _make(session: Session, changed: dict[int, tuple[Any, ...]]) -> dict[str, _Made]:
    """The desired state of the apps whose rows changed (or were not seen before), by app id -> key:
    their rows read whole, with their target releases (loaded from the cache or the store)."""
    rows: list[Any] = []
    ids = list(changed)
    for start in range(0, len(ids), _LOAD_BATCH):
        rows += session.execute(_APPS.where(AppRow.id.in_(ids[start : start + _LOAD_BATCH]))).all()
    releases = _releases(session, {(row[12], row[13]) for row in rows if row[12] is not None})
    made = {}
    for row in rows:
        app_id, name, state, target, target_gen, current, current_gen, op_id, backend = row[:9]
        key = changed[app_id]
        at = (row[12], row[13]) if row[12] is not None else None
        rel = releases.get(at) if at else None
        app = DesiredApp(
            name=name,
            state=AppState(state),
            spec=rel[0] if rel else None,
            config=dict(rel[1]) if rel else {},
            target=(target, target_gen) if target else None,
            current=(current, current_gen) if current else None,
            scale=key[1],
            operation_id=op_id,
            deadline=key[2],
            backend=BackendMode(backend),
            remove_volumes=row[9],
            remove_force=row[10],
            plain_http=row[11],
        )
        made[name] = _Made(key, app, at if rel else None)
    return made


def _releases(
    session: Session, wanted: set[tuple[int, float]]
) -> dict[tuple[int, float], tuple[AppSpec, dict[str, str]]]:
    """The releases ``wanted`` (row id, created at) as (spec, config vars): a release's encrypted columns
    are read, decrypted and parsed once, and kept while an app targets it (see ``_forget_others``)."""
    with _LOCK:  # the reconcile loop and the evictables' pass read it from their own threads
        have = {key: _RELEASES[key] for key in wanted if key in _RELEASES}
    missing = [rid for rid, created in wanted if (rid, created) not in have]
    for start in range(0, len(missing), _LOAD_BATCH):
        batch = missing[start : start + _LOAD_BATCH]
        loaded = session.execute(
            select(ReleaseRow.id, ReleaseRow.created_at, ReleaseRow.spec, ReleaseRow.config).where(
                ReleaseRow.id.in_(batch)
            )
        )
        for rid, created, spec, config in loaded:
            if (rid, created) in wanted:
                have[(rid, created)] = (AppSpec.model_validate(spec), dict(config or {}))
    with _LOCK:
        _RELEASES.update(have)
    return have


def _forget_others(targets: set[tuple[int, float]]) -> None:
    """Forget the releases no app targets any more."""
    with _LOCK:
        for key in [k for k in _RELEASES if k not in targets]:
            del _RELEASES[key]


def drop_failed_first_deploy(app: AppRow, *, target_failed: bool) -> bool:
    """A first deploy that failed leaves nothing behind: the app goes when no release of it is left
    to run — none recorded yet (its build failed: ``target_failed`` False), or only the target that
    failed with nothing served before. Returns whether it goes."""
    left = app.current_version if target_failed else app.target_version
    if left is None:
        app.state = AppState.DELETING
        return True
    return False
