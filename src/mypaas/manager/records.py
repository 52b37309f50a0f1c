"""What the app services (apps.py, releases.py) share: finding rows with an error that names what is
missing, one operation per app at a time, the event of a user's change, and the context they run in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import Backend
from mypaas.domain import AppSpec
from mypaas.egress import Egress
from mypaas.errors import Conflict, NotFound, UnknownApp
from mypaas.manager.operations import Operations
from mypaas.manager.reconcile.view import LoopView
from mypaas.manager.state.meta import read_mode
from mypaas.manager.state.models import AppRow, OperationRow, ReleaseRow, TeamRow
from mypaas.monitor.events import EventSink
from mypaas.monitor.health import HealthTracker
from mypaas.states import AppState, BackendMode


@dataclass(frozen=True)
class AppContext:
    """The collaborators of the app services, handed over by the composition root."""

    sessions: sessionmaker[Session]
    backend: Backend
    operations: Operations
    view: LoopView  # what the reconcile loop saw last
    tracker: HealthTracker  # readiness verdicts
    events: EventSink
    wake: Callable[[], None]  # wakes the reconcile loop after a change of desired state
    platform_id: str
    deploy_timeout_s: float
    base_domain: str
    deploy_lock: threading.Lock  # one deploy's checks and writes at a time
    build_egress: Egress = field(default_factory=Egress)  # what a Dockerfile's ADD <url> may fetch
    clock: Callable[[], float] = time.time  # the reconcile loop's clock: deadlines are on its time

    def deadline(self) -> float:
        """When an operation begun now is past its deadline, on the clock the loop compares it with."""
        return self.clock() + self.deploy_timeout_s

    def mode(self, s: Session) -> BackendMode:
        """The backend new releases run on: swarm once the platform is a cluster (and the backend
        can run services), else docker."""
        if not self.backend.capabilities.services:
            return BackendMode.DOCKER
        return read_mode(s)

    def change(self, app: str, kind: str, message: str, user: str, op: OperationRow, **data: Any) -> None:
        """Record a user's change in the app's event log (queued: it never blocks)."""
        data.update(user=user, operation=op.id)
        if op.release is not None:
            data.setdefault("release", op.release)
        self.events.record(app, kind, message, data)


def find_app(s: Session, name: str, *, deleting: bool = False) -> AppRow:
    """The app named ``name``; one being deleted only with ``deleting`` (else Conflict saying so)."""
    row = s.scalar(select(AppRow).where(AppRow.name == name))
    if row is None:
        raise no_app(s, name)
    if row.state == AppState.DELETING and not deleting:
        raise Conflict(being_deleted(row), field="app")
    return row


DEFAULT_TEAM = "default"


def new_app(s: Session, name: str, team: str | None) -> AppRow:
    """A new app row in ``team`` (None: the default team, as for a caller inside the manager)."""
    row = s.scalar(select(TeamRow).where(TeamRow.name == (team or DEFAULT_TEAM)))
    if row is None and team is None:  # the default team was removed: the oldest team
        row = s.scalar(select(TeamRow).order_by(TeamRow.id))
    if row is None:
        raise NotFound(f"no team {team or DEFAULT_TEAM!r}", field="team")
    app = AppRow(name=name, state=AppState.RUNNING, team_id=row.id)
    s.add(app)
    s.flush()
    return app


def no_app(s: Session, name: str) -> UnknownApp:
    """The 404 of an unknown app, naming the closest app there is ("did you mean 'web'?"); the API
    narrows the hint to the apps its caller sees."""
    names = s.scalars(select(AppRow.name).where(AppRow.state != AppState.DELETING, AppRow.name != name))
    return UnknownApp.among(name, names)


def refuse_deleting(row: AppRow | None) -> None:
    """A deploy to an app being deleted: refused, saying why it is not gone yet when it is stuck."""
    if row is not None and row.state == AppState.DELETING:
        message = (
            being_deleted(row) if row.blocked else f"app {row.name} is being removed; try again in a moment"
        )
        raise Conflict(message, field="app")


def being_deleted(row: AppRow) -> str:
    """'app x is being deleted' and, when its removal cannot finish, why and what finishes it."""
    if not row.blocked:
        return f"app {row.name} is being deleted"
    return (
        f"app {row.name} is being deleted but cannot be: {row.blocked} "
        f"(mypaas rm {row.name} --force finishes it)"
    )


def find_release(s: Session, app: AppRow, version: int | None) -> ReleaseRow:
    rel = s.scalar(select(ReleaseRow).where(ReleaseRow.app_id == app.id, ReleaseRow.version == version))
    if rel is None:
        raise NotFound(f"app {app.name} has no release v{version}", field="release")
    return rel


def target_spec(s: Session, app: AppRow) -> AppSpec | None:
    """The spec of the release the app should run, if it has one."""
    if app.target_version is None:
        return None
    return AppSpec.model_validate(find_release(s, app, app.target_version).spec)


def supersede(ops: Operations, s: Session, app: AppRow, op: OperationRow) -> None:
    """``op`` becomes the app's operation; the one before it, if still going, fails as superseded."""
    if app.operation_id and app.operation_id != op.id:
        ops.finish(s, app.operation_id, ok=False, message=f"superseded by operation {op.id}")
    app.operation_id = op.id


def release_dict(r: ReleaseRow) -> dict[str, Any]:
    spec = AppSpec.model_validate(r.spec)
    return {
        "version": r.version,
        "status": r.status.value,
        "description": r.description,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "images": {
            n: {"image": svc.image, "id": svc.image_id, "registry": (r.images or {}).get(n)}
            for n, svc in spec.services.items()
        },
        "config": dict(r.config),
        "files": {  # the project's own files each service has in this release (relative bind mounts)
            n: [{"source": f.shown, "target": f.target, "digest": f.digest} for f in svc.project_files]
            for n, svc in spec.services.items()
            if svc.project_files
        },
    }
