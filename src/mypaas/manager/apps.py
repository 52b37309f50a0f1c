"""App services: what the API and CLI can ask of the manager about apps — listing and reading them, their
instances and logs, scaling, stopping, starting, restarting and removing them, their domains, and moving
them onto Swarm. Each change validates, records desired state (and an operation to follow) in one
transaction, then wakes the reconcile loop. Deploys, rollbacks and config changes, which make releases,
are in releases.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import String, delete, func, select, type_coerce
from sqlalchemy.orm import Session

from mypaas.domain import MAX_REPLICAS, AppSpec, Instance, check_domain
from mypaas.errors import Conflict, InvalidSpec, NotFound, no_service
from mypaas.manager.applogs import follow_app, tail_without_probes, without_probes
from mypaas.manager.records import (
    AppContext,
    being_deleted,
    find_app,
    find_release,
    supersede,
    target_spec,
)
from mypaas.manager.releases import one_replica_with_host_port
from mypaas.manager.state.db import reading
from mypaas.manager.state.models import (
    AppRow,
    CertRow,
    DomainRow,
    FormationRow,
    OperationRow,
    PreviewRow,
    TeamRow,
)
from mypaas.states import AppState, BackendMode

_REPLICAS = (  # an app's desired replicas: the sum over its services (on the formation's primary key)
    select(func.sum(FormationRow.replicas))
    .where(FormationRow.app_id == AppRow.id)
    .correlate(AppRow)
    .scalar_subquery()
)
# The apps listing: each app with its team and its desired replicas; its state as stored (AppState is a
# str enum: the listing shows the string).
_SUMMARY = (
    select(
        AppRow.name,
        TeamRow.name,
        type_coerce(AppRow.state, String),
        AppRow.current_version,
        AppRow.target_version,
        AppRow.operation_id,
        AppRow.updated_at,
        AppRow.blocked,
        _REPLICAS,
    )
    .outerjoin(TeamRow, AppRow.team_id == TeamRow.id)
    .order_by(AppRow.name)
)


class Apps:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._sessions = ctx.sessions
        self._ops = ctx.operations

    # -- reading --------------------------------------------------------------------------------

    def summaries(self) -> list[dict[str, Any]]:
        """Every app as the listing shows it, from one query of the columns it shows (no ORM object,
        no release read) and the instances the reconcile loop saw last."""
        observed = self._ctx.view.observed.instances
        ready = self._ctx.tracker.ready
        with reading(self._sessions) as s:  # waits for no write in progress
            rows = s.connection().execute(_SUMMARY).all()
        out = []
        for name, team, state, current, target, op_id, updated, blocked, replicas in rows:
            insts = observed.get(name, ())
            out.append(
                {
                    "name": name,
                    "team": team,
                    "state": state,
                    "release": current,
                    "target_release": target,
                    "instances": len(insts),
                    "ready": sum(1 for i in insts if ready(i)) if insts else 0,
                    "desired": int(replicas or 0) if state == AppState.RUNNING else 0,
                    "operation": op_id,
                    "updated_at": updated,
                    "blocked": blocked if state == AppState.DELETING else None,  # why a removal waits
                }
            )
        return out

    def get(self, name: str) -> dict[str, Any]:
        with self._sessions() as s:
            row = find_app(s, name, deleting=True)
            rel = find_release(s, row, row.target_version) if row.target_version else None
            scale = {f.service: f.replicas for f in row.formation}
            domains = sorted(d.domain for d in row.domains)
            team = s.scalar(select(TeamRow.name).where(TeamRow.id == row.team_id))
        spec = AppSpec.model_validate(rel.spec) if rel else None
        return {
            "name": row.name,
            "team": team,
            "state": row.state.value,
            "release": row.current_version,
            "target_release": row.target_version,
            "operation": row.operation_id,
            "services": {
                n: {"image": svc.image, "replicas": scale.get(n, 1), "port": svc.http_port}
                for n, svc in (spec.services.items() if spec else [])
            },
            "web": spec.web if spec else None,
            "domains": domains,
            "waiting": self._ctx.view.observed.waiting.get(name, []),
            "blocked": row.blocked if row.state == AppState.DELETING else None,
            "deleting": being_deleted(row) if row.state == AppState.DELETING else None,
        }

    def instances(self, name: str) -> list[Instance]:
        with self._sessions() as s:
            find_app(s, name, deleting=True)
        return [i for i in self._ctx.backend.list_instances(self._ctx.platform_id) if i.app == name]

    def ready(self, inst: Instance) -> bool:
        return self._ctx.tracker.ready(inst)

    def logs(
        self,
        name: str,
        service: str | None,
        tail: int | None,
        follow: bool,
        stop: threading.Event,
        probes: bool = True,
    ) -> Iterator[str]:
        """The app's log lines; without ``probes``, none of the lines its health probes left."""
        insts = [i for i in self.instances(name) if service is None or i.service == service]
        if service is not None and not insts:
            with self._sessions() as s:
                row = find_app(s, name)
                scale = {f.service for f in row.formation}
            if service not in scale:
                raise no_service(name, service, scale)
        ids = [i.id for i in insts]
        if follow:
            stream = follow_app(
                lambda some, lines: self._ctx.backend.logs(some, tail=lines, follow=True, stop=stop),
                lambda: [i.id for i in self.instances(name) if service is None or i.service == service],
                ids,
                tail,
                stop,
            )
            return stream if probes else without_probes(stream)  # --tail counts before probe lines go
        if probes:
            return self._ctx.backend.logs(ids, tail=tail, follow=follow, stop=stop)
        if tail is None:
            return without_probes(self._ctx.backend.logs(ids, tail=tail, follow=follow, stop=stop))

        def read(window: int) -> Iterator[str]:
            return self._ctx.backend.logs(ids, tail=window, follow=False, stop=stop)

        return iter(tail_without_probes(read, tail))

    # -- changing a running app -----------------------------------------------------------------

    def scale(self, name: str, counts: dict[str, int], user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = find_app(s, name)
            rows = {f.service: f for f in app.formation}
            spec = target_spec(s, app)
            for svc, n in counts.items():
                if svc not in rows:
                    raise no_service(name, svc, rows)
                if not 0 <= n <= MAX_REPLICAS:
                    raise InvalidSpec(f"replicas for {svc} must be between 0 and {MAX_REPLICAS}", field=svc)
                if spec is not None:
                    one_replica_with_host_port(spec.services[svc], n, svc)
            for svc, n in counts.items():
                rows[svc].replicas = n
            op = self._follow(s, app, "scale", user)
        what = " ".join(f"{svc}={n}" for svc, n in counts.items())
        self._ctx.change(name, "scaled", f"scale {what} by {user}", user, op, replicas=counts)
        self._ctx.wake()
        return op

    def _follow(self, s: Session, app: AppRow, kind: str, user: str) -> OperationRow:
        """The operation a client follows for this change: the rollout in flight, or a new one."""
        if app.operation_id:
            current = s.get(OperationRow, app.operation_id)
            if current is not None and not current.status.finished:
                return current
        op = self._ops.new(s, app=app.name, kind=kind, user=user)
        op.deadline = self._ctx.deadline()
        app.operation_id = op.id
        return op

    def migrate(self, user: str) -> list[OperationRow]:
        """Move every app still running as containers onto Swarm: a rollout of its current release
        as services (same release, same domains); its containers go once the services are ready."""
        ops: list[OperationRow] = []
        with self._sessions.begin() as s:
            if self._ctx.mode(s) != BackendMode.SWARM:
                raise Conflict(
                    "the platform is not a cluster yet: add a host (mypaas host add) or run "
                    "mypaas cluster init"
                )
            for app in s.scalars(
                select(AppRow).where(AppRow.backend == BackendMode.DOCKER, AppRow.state == AppState.RUNNING)
            ):
                if app.target_version is None:
                    continue
                op = self._ops.new(s, app=app.name, kind="migrate", user=user)
                supersede(self._ops, s, app, op)
                op.deadline = self._ctx.deadline()
                op.release = app.target_version
                app.backend = BackendMode.SWARM
                app.target_generation = max(app.target_generation, app.current_generation) + 1
                ops.append(op)
        for op in ops:
            self._ctx.change(op.app, "migrate", f"moved to Swarm by {user}", user, op)
        self._ctx.wake()
        return ops

    def set_state(self, name: str, action: str, user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = find_app(s, name)
            if action == "restart":
                if app.target_version is None:
                    raise Conflict(f"app {name} has no release yet: deploy it first", field="app")
                op = self._ops.new(s, app=name, kind="restart", user=user)
                supersede(self._ops, s, app, op)
                op.deadline = self._ctx.deadline()
                op.release = app.target_version
                app.target_generation = max(app.target_generation, app.current_generation) + 1
                app.state = AppState.RUNNING
            else:
                app.state = AppState.STOPPED if action == "stop" else AppState.RUNNING
                op = self._ops.new(s, app=name, kind=action, user=user)
                supersede(self._ops, s, app, op)
                op.deadline = self._ctx.deadline()
        self._ctx.change(name, action, f"{action} by {user}", user, op)
        self._ctx.wake()
        return op

    def delete(self, name: str, user: str, *, volumes: bool = False, force: bool = False) -> OperationRow:
        """Remove the app: its named volumes only with ``volumes`` (kept, a later deploy of the same
        name mounts them again); ``force`` finishes a removal that is blocked (see Outcomes.blocked)."""
        with self._sessions.begin() as s:
            app = find_app(s, name, deleting=True)
            if app.state == AppState.DELETING and not force:
                raise Conflict(being_deleted(app) + ("" if app.blocked else " already"), field="app")
            app.state = AppState.DELETING
            app.remove_volumes = volumes = app.remove_volumes or volumes  # a --volumes asked before holds
            app.remove_force = force
            op = self._ops.new(s, app=name, kind="remove", user=user)
            supersede(self._ops, s, app, op)
            previews = self._remove_previews(s, app, user)
        for preview, preview_op in previews:
            self._ctx.change(
                preview, "remove", f"removal with {name} by {user}", user, preview_op, volumes=True
            )
        what = "forced removal" if force else "removal"
        kept = "with its volumes" if volumes else "volumes kept"
        self._ctx.change(name, "remove", f"{what} by {user} ({kept})", user, op, volumes=volumes, force=force)
        self._ctx.wake()
        return op

    def _remove_previews(self, s: Session, app: AppRow, user: str) -> list[tuple[str, OperationRow]]:
        """The app's preview apps go with it, volumes included (as Heroku's review apps go with their
        pipeline and Coolify's preview deployments with their application)."""
        out = []
        for preview in s.scalars(
            select(AppRow)
            .join(PreviewRow, PreviewRow.app_id == AppRow.id)
            .where(PreviewRow.parent_id == app.id)
        ):
            if preview.state != AppState.DELETING:
                preview.state, preview.remove_volumes = AppState.DELETING, True
                op = self._ops.new(s, app=preview.name, kind="remove", user=user)
                supersede(self._ops, s, preview, op)
                out.append((preview.name, op))
        return out

    # -- domains --------------------------------------------------------------------------------

    def domains(self, name: str) -> list[str]:
        with self._sessions() as s:
            return sorted(d.domain for d in find_app(s, name).domains)

    def add_domain(self, name: str, domain: str) -> str:
        domain = check_domain(domain)
        if domain == self._ctx.base_domain or domain.endswith(f".{self._ctx.base_domain}"):
            raise InvalidSpec(
                f"{domain} is under the platform's base domain {self._ctx.base_domain}: "
                f"every app already has APP.{self._ctx.base_domain}",
                field="domain",
            )
        with self._sessions.begin() as s:
            app = find_app(s, name)
            taken = s.get(DomainRow, domain)
            if taken is not None:
                owner = s.get(AppRow, taken.app_id)
                raise Conflict(
                    f"domain {domain} already belongs to app {owner.name if owner else '?'}", field="domain"
                )
            s.add(DomainRow(domain=domain, app_id=app.id))
        self._ctx.wake()
        return domain

    def https_redirect(self, name: str) -> bool:
        """Whether HTTP requests for the app's domains with a trusted certificate go to HTTPS."""
        with self._sessions() as s:
            return not find_app(s, name).plain_http

    def set_https_redirect(self, name: str, redirect: bool) -> None:
        """Redirect HTTP to HTTPS where a trusted certificate is there (True, the default), or keep
        plain HTTP for the app (False)."""
        with self._sessions.begin() as s:
            find_app(s, name).plain_http = not redirect
        self._ctx.wake()

    def remove_domain(self, name: str, domain: str) -> None:
        domain = check_domain(domain)
        with self._sessions.begin() as s:
            app = find_app(s, name)
            row = s.get(DomainRow, domain)
            if row is None or row.app_id != app.id:
                raise NotFound(f"app {name} has no domain {domain}", field="domain")
            s.delete(row)
            s.execute(delete(CertRow).where(CertRow.domain == domain))  # the user's own certificate too
        self._ctx.wake()
