"""Reading desired state for the reconcile loop in a handful of queries, whatever the number of apps."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec
from mypaas.manager.reconcile.plan import DesiredApp
from mypaas.manager.state.models import AppRow, DomainRow, FormationRow, OperationRow, ReleaseRow
from mypaas.states import AppState, BackendMode

# Releases never change, so their parsed specs can be kept: (row id, created at) -> spec.
_SPEC_CACHE: dict[tuple[int, float], AppSpec] = {}
_SPEC_CACHE_MAX = 10_000


def load_desired(session: Session) -> tuple[dict[str, DesiredApp], dict[str, list[str]]]:
    """Every app's desired state, plus each app's custom domains."""
    apps = session.scalars(select(AppRow)).all()
    releases = {
        (r.app_id, r.version): r
        for r in session.scalars(
            select(ReleaseRow).join(
                AppRow, and_(AppRow.id == ReleaseRow.app_id, AppRow.target_version == ReleaseRow.version)
            )
        )
    }
    scale: dict[int, dict[str, int]] = defaultdict(dict)
    for f in session.scalars(select(FormationRow)):
        scale[f.app_id][f.service] = f.replicas
    domains: dict[int, list[str]] = defaultdict(list)
    for d in session.scalars(select(DomainRow)):
        domains[d.app_id].append(d.domain)
    deadlines = {
        op.id: op.deadline
        for op in session.scalars(
            select(OperationRow).where(OperationRow.id.in_([a.operation_id for a in apps if a.operation_id]))
        )
    }
    desired: dict[str, DesiredApp] = {}
    names: dict[str, list[str]] = {}
    for app in apps:
        rel = releases.get((app.id, app.target_version or 0))
        desired[app.name] = DesiredApp(
            name=app.name,
            state=app.state,
            spec=_spec(rel) if rel else None,
            config=dict(rel.config) if rel else {},
            target=(app.target_version, app.target_generation) if app.target_version else None,
            current=(app.current_version, app.current_generation) if app.current_version else None,
            scale=scale.get(app.id, {}),
            operation_id=app.operation_id,
            deadline=deadlines.get(app.operation_id) if app.operation_id else None,
            backend=BackendMode(app.backend),
            remove_volumes=app.remove_volumes,
            remove_force=app.remove_force,
            plain_http=app.plain_http,
        )
        names[app.name] = sorted(domains.get(app.id, []))
    return desired, names


def _spec(rel: ReleaseRow) -> AppSpec:
    key = (rel.id, rel.created_at)
    spec = _SPEC_CACHE.get(key)
    if spec is None:
        if len(_SPEC_CACHE) >= _SPEC_CACHE_MAX:
            _SPEC_CACHE.clear()  # only target releases are read each pass: it refills at once
        spec = _SPEC_CACHE[key] = AppSpec.model_validate(rel.spec)
    return spec


def drop_failed_first_deploy(app: AppRow, *, target_failed: bool) -> bool:
    """A first deploy that failed leaves nothing behind: the app goes when no release of it is left
    to run — none recorded yet (its build failed: ``target_failed`` False), or only the target that
    failed with nothing served before. Returns whether it goes."""
    left = app.current_version if target_failed else app.target_version
    if left is None:
        app.state = AppState.DELETING
        return True
    return False
