"""Reading desired state for the reconcile loop in a handful of queries, whatever the number of apps."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import String, and_, select, type_coerce
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec
from mypaas.manager.reconcile.plan import DesiredApp
from mypaas.manager.state.models import AppRow, DomainRow, FormationRow, OperationRow, ReleaseRow
from mypaas.states import AppState, BackendMode

# Releases never change, so their specs (parsed) and config vars (decrypted) are kept between passes:
# (row id, created at) -> (spec, config). A pass reads only the target releases' ids (with the apps) and
# loads (decrypts, parses) those it has not seen; what no app targets any more is forgotten.
# Built from a private copy of what the pass needs, so another thread's pruning only costs a reload.
_RELEASES: dict[tuple[int, float], tuple[AppSpec, dict[str, str]]] = {}
_LOCK = threading.Lock()
_LOAD_BATCH = 500  # ids per IN (...) query
# Every app with its target release's row id and creation time, in one query. The states come as the
# stored strings (AppState and BackendMode are str enums): the enum is made only for an app that changed.
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


class Unchanged:
    """The desired state one reader (the reconcile loop) was last given, by app, with the row it was
    made of: an app whose row (its target release's included) is what it was is given the same object
    again, so the reader can tell at a glance (``is``) the apps that did not change since its last pass."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[tuple[Any, ...], DesiredApp]] = {}

    def same(self, name: str, row: tuple[Any, ...], spec: AppSpec | None) -> DesiredApp | None:
        made = self._made.get(name)
        if made is None or made[0] != row or made[1].spec is not spec:
            return None  # a release loaded again (the cache pruned by another reader) is another object
        return made[1]

    def keep(self, made: dict[str, tuple[tuple[Any, ...], DesiredApp]]) -> None:
        self._made = made


def load_desired(
    session: Session, unchanged: Unchanged | None = None
) -> tuple[dict[str, DesiredApp], dict[str, list[str]]]:
    """Every app's desired state, plus the custom domains of each app that has some. With ``unchanged``,
    an app whose rows did not change since the last call is the very object that call returned."""
    conn = session.connection()  # plain rows through Core: no ORM object, nor the ORM's row handling
    apps = conn.execute(_APPS).all()
    releases = _releases(session, {(rid, created) for *_, rid, created in apps if rid is not None})
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
    desired: dict[str, DesiredApp] = {}
    names: dict[str, list[str]] = {}
    made: dict[str, tuple[tuple[Any, ...], DesiredApp]] = {}
    for row in apps:
        app_id, name, state, target, target_gen, current, current_gen, op_id, backend = row[:9]
        rel = releases.get((row[12], row[13]))
        if app_id in domains:
            names[name] = sorted(domains[app_id])
        formation = scale.get(app_id, {})
        key = (tuple(row), formation, deadlines.get(op_id) if op_id else None)
        app = unchanged.same(name, key, rel[0] if rel else None) if unchanged else None
        if app is None:
            app = DesiredApp(
                name=name,
                state=AppState(state),
                spec=rel[0] if rel else None,
                config=dict(rel[1]) if rel else {},
                target=(target, target_gen) if target else None,
                current=(current, current_gen) if current else None,
                scale=formation,
                operation_id=op_id,
                deadline=key[2],
                backend=BackendMode(backend),
                remove_volumes=row[9],
                remove_force=row[10],
                plain_http=row[11],
            )
        desired[name] = app
        made[name] = (key, app)
    if unchanged is not None:
        unchanged.keep(made)
    return desired, names


def _releases(
    session: Session, wanted: set[tuple[int, float]]
) -> dict[tuple[int, float], tuple[AppSpec, dict[str, str]]]:
    """The releases ``wanted`` (row id, created at) as (spec, config vars): a release's encrypted columns
    are read, decrypted and parsed once, and kept while an app targets it."""
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
        if len(_RELEASES) > len(have):
            for key in [k for k in _RELEASES if k not in wanted]:
                del _RELEASES[key]
    return have


def drop_failed_first_deploy(app: AppRow, *, target_failed: bool) -> bool:
    """A first deploy that failed leaves nothing behind: the app goes when no release of it is left
    to run — none recorded yet (its build failed: ``target_failed`` False), or only the target that
    failed with nothing served before. Returns whether it goes."""
    left = app.current_version if target_failed else app.target_version
    if left is None:
        app.state = AppState.DELETING
        return True
    return False
