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
# Every app, its states as the stored strings (AppState and BackendMode are str enums: the enum is made
# only for an app that changed). ``updated_at`` changes with every write to the row: a new target
# release always comes with one, so an app whose row is what it was still targets the same release.
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
    AppRow.updated_at,
)


@dataclass(frozen=True)
class _Made:
    row: tuple[Any, ...]  # the app's row, its formation and its operation's deadline
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
    apps = conn.execute(_APPS).all()
    scale: dict[int, dict[str, int]] = defaultdict(dict)
    for app_id, service, replicas in conn.execute(
        select(FormationRow.app_id, FormationRow.service, FormationRow.replicas)
    ):
        scale[app_id][service] = replicas
    domains: dict[int, list[str]] = defaultdict(list)
    for domain, app_id in conn.execute(select(DomainRow.domain, DomainRow.app_id)):
        domains[app_id].append(domain)
    running = [a[7] for a in apps if a[7]]
    deadlines: dict[str, float | None] = {}
    if running:
        ops = select(OperationRow.id, OperationRow.deadline).where(OperationRow.id.in_(running))
        deadlines.update((op_id, deadline) for op_id, deadline in conn.execute(ops))
    made: dict[str, _Made] = {}
    changed = []
    for row in apps:
        app_id, name, op_id = row[0], row[1], row[7]
        key = (tuple(row), scale.get(app_id, {}), deadlines.get(op_id) if op_id else None)
        same = unchanged.same(name, key) if unchanged is not None else None
        if same is not None:
            made[name] = same
        else:
            changed.append((row, key))
    made.update(_make(session, changed))
    made = {row[1]: made[row[1]] for row in apps}  # in the store's order, changed apps too
    _forget_others({m.release for m in made.values() if m.release is not None})
    if unchanged is not None:
        unchanged.keep({name: m for name, m in made.items() if m.release is not None or not m.row[0][3]})
    names = {row[1]: sorted(domains[row[0]]) for row in apps if row[0] in domains}
    return {name: m.app for name, m in made.items()}, names


def _make(session: Session, changed: list[tuple[Any, tuple[Any, ...]]]) -> dict[str, _Made]:
    """The desired state of the apps whose rows changed (or were not seen before), with their target
    releases (looked up by app, loaded from the cache or the store)."""
    targets: dict[int, tuple[int, float]] = {}
    ids = [row[0] for row, _ in changed if row[3]]
    for start in range(0, len(ids), _LOAD_BATCH):
        found = session.execute(
            select(ReleaseRow.app_id, ReleaseRow.id, ReleaseRow.created_at)
            .join(AppRow, and_(AppRow.id == ReleaseRow.app_id, AppRow.target_version == ReleaseRow.version))
            .where(AppRow.id.in_(ids[start : start + _LOAD_BATCH]))
        )
        targets.update((app_id, (rid, created)) for app_id, rid, created in found)
    releases = _releases(session, set(targets.values()))
    made = {}
    for row, key in changed:
        app_id, name, state, target, target_gen, current, current_gen, op_id, backend = row[:9]
        at = targets.get(app_id)
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
