"""Reading desired state for the reconcile loop in a handful of queries, whatever the number of apps."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec
from mypaas.manager.reconcile.plan import DesiredApp
from mypaas.manager.state.models import AppRow, DomainRow, FormationRow, OperationRow, ReleaseRow
from mypaas.states import AppState, BackendMode

# Releases never change, so their specs (parsed) and config vars (decrypted) are kept between passes:
# (row id, created at) -> (spec, config). A pass reads only the target releases' ids and loads (decrypts,
# parses) those it has not seen; what no app targets any more is forgotten.
# Built from a private copy of what the pass needs, so another thread's pruning only costs a reload.
_RELEASES: dict[tuple[int, float], tuple[AppSpec, dict[str, str]]] = {}
_LOCK = threading.Lock()
_LOAD_BATCH = 500  # ids per IN (...) query
_APP_COLUMNS = (
    AppRow.id,
    AppRow.name,
    AppRow.state,
    AppRow.target_version,
    AppRow.target_generation,
    AppRow.current_version,
    AppRow.current_generation,
    AppRow.operation_id,
    AppRow.backend,
    AppRow.remove_volumes,
    AppRow.remove_force,
    AppRow.plain_http,
)


class Unchanged:
    """The desired state one reader (the reconcile loop) was last given, by app, with the rows it was
    made of: an app whose rows and target release are what they were is given the same object again,
    so the reader can tell at a glance (``is``) the apps that did not change since its last pass."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[tuple[Any, ...], DesiredApp]] = {}

    def same(self, name: str, rows: tuple[Any, ...], spec: AppSpec | None) -> DesiredApp | None:
        made = self._made.get(name)
        if made is None or made[0] != rows or made[1].spec is not spec:
            return None  # the spec's identity stands for its release (one cached object per release)
        return made[1]

    def keep(self, desired: dict[str, DesiredApp], rows: dict[str, tuple[Any, ...]]) -> None:
        self._made = {name: (rows[name], app) for name, app in desired.items()}


def load_desired(
    session: Session, unchanged: Unchanged | None = None
) -> tuple[dict[str, DesiredApp], dict[str, list[str]]]:
    """Every app's desired state, plus each app's custom domains. With ``unchanged``, an app whose
    rows did not change since the last call is the very object that call returned."""
    conn = session.connection()  # plain rows through Core: no ORM object, nor the ORM's row handling
    apps = conn.execute(select(*_APP_COLUMNS)).all()
    releases = _target_releases(session)
    scale: dict[int, dict[str, int]] = defaultdict(dict)
    for app_id, service, replicas in conn.execute(
        select(FormationRow.app_id, FormationRow.service, FormationRow.replicas)
    ):
        scale[app_id][service] = replicas
    domains: dict[int, list[str]] = defaultdict(list)
    for domain, app_id in conn.execute(select(DomainRow.domain, DomainRow.app_id)):
        domains[app_id].append(domain)
    running = [a.operation_id for a in apps if a.operation_id]
    deadlines: dict[str, float | None] = {}
    if running:
        ops = select(OperationRow.id, OperationRow.deadline).where(OperationRow.id.in_(running))
        deadlines.update((op_id, deadline) for op_id, deadline in conn.execute(ops))
    desired: dict[str, DesiredApp] = {}
    names: dict[str, list[str]] = {}
    made: dict[str, tuple[Any, ...]] = {}
    for app in apps:
        rel = releases.get((app.id, app.target_version or 0))
        names[app.name] = sorted(domains.get(app.id, []))
        deadline = deadlines.get(app.operation_id) if app.operation_id else None
        made[app.name] = rows = (tuple(app), tuple(scale.get(app.id, {}).items()), deadline)
        same = unchanged.same(app.name, rows, rel[0] if rel else None) if unchanged else None
        if same is not None:
            desired[app.name] = same
            continue
        desired[app.name] = DesiredApp(
            name=app.name,
            state=app.state,
            spec=rel[0] if rel else None,
            config=dict(rel[1]) if rel else {},
            target=(app.target_version, app.target_generation) if app.target_version else None,
            current=(app.current_version, app.current_generation) if app.current_version else None,
            scale=scale.get(app.id, {}),
            operation_id=app.operation_id,
            deadline=deadline,
            backend=BackendMode(app.backend),
            remove_volumes=app.remove_volumes,
            remove_force=app.remove_force,
            plain_http=app.plain_http,
        )
    if unchanged is not None:
        unchanged.keep(desired, made)
    return desired, names


def _target_releases(session: Session) -> dict[tuple[int, int], tuple[AppSpec, dict[str, str]]]:
    """Each app's target release as (app id, version) -> (spec, config vars): only the ids are read
    every pass; a release's encrypted columns are read, decrypted and parsed once."""
    rows = session.execute(
        select(ReleaseRow.id, ReleaseRow.created_at, ReleaseRow.app_id, ReleaseRow.version).join(
            AppRow, and_(AppRow.id == ReleaseRow.app_id, AppRow.target_version == ReleaseRow.version)
        )
    ).all()
    wanted = {(rid, created) for rid, created, _, _ in rows}
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
        for key in [k for k in _RELEASES if k not in wanted]:
            del _RELEASES[key]
    return {(app_id, version): have[(rid, created)] for rid, created, app_id, version in rows}


def drop_failed_first_deploy(app: AppRow, *, target_failed: bool) -> bool:
    """A first deploy that failed leaves nothing behind: the app goes when no release of it is left
    to run — none recorded yet (its build failed: ``target_failed`` False), or only the target that
    failed with nothing served before. Returns whether it goes."""
    left = app.current_version if target_failed else app.target_version
    if left is None:
        app.state = AppState.DELETING
        return True
    return False
