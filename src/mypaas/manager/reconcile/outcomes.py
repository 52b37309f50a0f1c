"""What a plan's outcome writes to the desired state: a rollout completed (its release becomes active),
abandoned (the current release keeps serving), an operation overdue, an app removed. Each is one
transaction that checks the desired state did not move on meanwhile; then whoever follows is told (the
operation's log, the event log)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import Instance
from mypaas.manager.operations import Operations
from mypaas.manager.reconcile.plan import DesiredApp, Plan
from mypaas.manager.state.desired import drop_failed_first_deploy
from mypaas.manager.state.models import AppRow, OperationRow, ReleaseRow
from mypaas.monitor.events import EventSink
from mypaas.monitor.tables import alert_rules as ar
from mypaas.monitor.tables import alert_states as ast
from mypaas.states import AppState, OperationStatus, ReleaseStatus


def _nothing(_app: str, _version: int) -> None:
    return None


class Outcomes:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        operations: Operations,
        events: EventSink,
        on_active: Callable[[str, int], None] = _nothing,
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._events = events
        self._on_active = on_active  # a release finished rolling out (its images go to the registry)

    @staticmethod
    def _row(s: Session, name: str) -> AppRow | None:
        return s.scalar(select(AppRow).where(AppRow.name == name))

    def complete(self, app: DesiredApp) -> None:
        """The target is ready everywhere: it becomes the current release; the operation succeeds."""
        activated: int | None = None
        with self._sessions.begin() as s:
            row = self._row(s, app.name)
            if row is None or (row.target_version, row.target_generation) != app.target:
                return  # desired state moved on meanwhile; the next pass handles it
            op = s.get(OperationRow, row.operation_id) if row.operation_id else None
            if op is not None and op.status == OperationStatus.BUILDING:
                return  # the build's release is not recorded yet
            if app.rolling and app.target is not None and row.state == AppState.RUNNING:
                s.execute(
                    update(ReleaseRow)
                    .where(ReleaseRow.app_id == row.id, ReleaseRow.status == ReleaseStatus.ACTIVE)
                    .values(status=ReleaseStatus.SUPERSEDED)
                )
                s.execute(
                    update(ReleaseRow)
                    .where(ReleaseRow.app_id == row.id, ReleaseRow.version == app.target[0])
                    .values(status=ReleaseStatus.ACTIVE)
                )
                row.current_version, row.current_generation = app.target
                activated = app.target[0]
            if row.operation_id == app.operation_id:
                message = f"{app.name} v{app.target[0] if app.target else '?'} is {app.state}"
                self._ops.finish(s, row.operation_id, ok=True, message=message)
                row.operation_id = None
        if activated is not None:  # queued before whoever waits on the operation is woken
            self._events.record(
                app.name, "release_activated", f"v{activated} is active", {"release": activated}
            )
        self._ops.notify()
        if activated is not None:
            self._on_active(app.name, activated)

    def overdue(self, app: DesiredApp, plan: Plan) -> None:
        """A scale or start that is not ready by its deadline: fail its operation, keep converging."""
        with self._sessions.begin() as s:
            row = self._row(s, app.name)
            if row is None or row.operation_id != app.operation_id:
                return
            waiting = "; ".join(plan.waiting) or "not ready"
            self._ops.finish(
                s, row.operation_id, ok=False, message=f"{app.name} is not ready in time: {waiting}"
            )
            row.operation_id = None
        self._ops.notify()

    def abandon(
        self, app: DesiredApp, *, reason: str | None = None, detail: str = "", tail: str = ""
    ) -> None:
        """The target never got ready in time (``reason`` None) or cannot run at all: the current
        release keeps serving; the operation fails saying why (what its instances show: ``detail``,
        with the failing instance's ``tail``)."""
        with self._sessions.begin() as s:
            row = self._row(s, app.name)
            if row is None or (row.target_version, row.target_generation) != app.target:
                return
            version = row.target_version
            if row.target_version != row.current_version:
                s.execute(
                    update(ReleaseRow)
                    .where(ReleaseRow.app_id == row.id, ReleaseRow.version == version)
                    .values(status=ReleaseStatus.FAILED)
                )
            if drop_failed_first_deploy(row, target_failed=True):
                fallback = "nothing was running before, so the app is removed"
            else:
                row.target_version, row.target_generation = row.current_version, row.current_generation
                fallback = f"v{row.current_version} keeps serving"
            why = f"v{version} failed: {reason}" if reason else f"v{version} did not become healthy in time"
            message = f"{why}; {fallback}"
            if detail:
                message += "\n" + detail
            if tail:
                message += "\n--- last log lines ---\n" + tail
            self._ops.finish(s, row.operation_id, ok=False, message=message)
            row.operation_id = None
        self._ops.notify()
        self._events.record(app.name, "rollout_abandoned", why + "; " + fallback, {"release": version})

    def replaced(self, app: DesiredApp, inst: Instance) -> None:
        """An instance that kept failing its health check is being replaced."""
        message = f"{inst.name} kept failing its health check: replaced"
        self._events.record(app.name, "instance_replaced", message, {})

    def progress(self, app: DesiredApp, line: str) -> None:
        """How the rollout goes ("web: 0/1 ready, restarted 2x (exit 3)"), for whoever follows it."""
        if app.operation_id:
            self._ops.append_log(app.operation_id, line + "\n")

    def error(self, app: DesiredApp, message: str) -> None:
        """A step failed (reported once by the loop): whoever follows the app's operation reads why."""
        if not app.operation_id:
            return
        with self._sessions() as s:
            op = s.get(OperationRow, app.operation_id)
            if op is None or op.status.finished:
                return  # it ended saying why (a removal that cannot finish, say)
        self._ops.append_log(app.operation_id, f"error: {message}\n")

    def removed(self, app: DesiredApp, *, left: str = "") -> None:
        """The app's instances and engine resources are gone (or, forced, ``left`` says what could
        not go): forget it; its removal succeeds."""
        with self._sessions.begin() as s:
            row = self._row(s, app.name)
            if row is None or row.state != AppState.DELETING:
                return
            rules = _drop_alert_rules(s, app.name)
            message = f"removed {app.name}" + (f" (left behind: {left})" if left else "")
            if rules:
                message += f"; removed {len(rules)} alert rule{'s' if len(rules) > 1 else ''}"
                message += f" ({', '.join(rules)})"
            self._ops.finish(s, row.operation_id, ok=True, message=message)
            s.delete(row)
        self._ops.notify()
        data = {"forced": app.remove_force, "alert_rules": rules}
        self._events.record(app.name, "removed", message, data)

    def blocked(self, app: DesiredApp, reason: str) -> None:
        """The removal cannot finish: record why (``ls`` and ``rm`` show it); the removal operation
        fails saying so, and the event log tells it once. The loop keeps trying."""
        with self._sessions.begin() as s:
            row = self._row(s, app.name)
            if row is None or row.state != AppState.DELETING:
                return
            if row.remove_force and not app.remove_force:
                return  # a forced removal was asked after this pass began: the next pass does it
            new = row.blocked != reason
            row.blocked = reason
            message = (
                f"removing {app.name} cannot finish: {reason} (mypaas rm {app.name} --force finishes it)"
            )
            if row.operation_id and row.operation_id == app.operation_id:
                self._ops.finish(s, row.operation_id, ok=False, message=message)
                row.operation_id = None
        self._ops.notify()
        if new:
            self._events.record(app.name, "removal_blocked", message, {"reason": reason})


def _drop_alert_rules(s: Session, app: str) -> list[str]:
    """Remove the alert rules of ``app`` alone (not those of every app) with their states, in the
    removal's transaction; answers their names."""
    names = list(s.scalars(select(ar.c.name).where(ar.c.app == app).order_by(ar.c.name)))
    if names:
        s.execute(delete(ast).where(ast.c.rule.in_(names)))
        s.execute(delete(ar).where(ar.c.name.in_(names)))
    return names
