"""App services: what the API and CLI can ask of the manager. Each call validates, then records
desired state (and a release or an operation) in one transaction, then wakes the reconcile loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.build import build_services
from mypaas.composer.base import Backend
from mypaas.domain import (
    AppSpec,
    Instance,
    ReleaseStatus,
    ServiceSpec,
    check_domain,
    check_env_key,
    check_name,
    port_from_image,
)
from mypaas.errors import Conflict, InvalidSpec, NotFound
from mypaas.manager.operations import TERMINAL, Operations
from mypaas.manager.reconcile.loop import Reconciler
from mypaas.manager.state.models import AppRow, DomainRow, FormationRow, Meta, OperationRow, ReleaseRow

MAX_REPLICAS = 100


@dataclass(frozen=True)
class DeployRequest:
    spec: AppSpec
    contexts: dict[str, bytes]  # build context name -> gzipped tar
    user: str
    description: str


class Apps:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: Backend,
        reconciler: Reconciler,
        operations: Operations,
        deploy_timeout_s: float,
        base_domain: str = "localhost",
        make_base: Callable[[Callable[[str], None]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._backend = backend
        self._reconciler = reconciler
        self._ops = operations
        self._timeout = deploy_timeout_s
        self._base_domain = base_domain
        self._make_base = make_base
        self._deploy_lock = threading.Lock()

    # -- reading --------------------------------------------------------------------------------

    def _app(self, s: Session, name: str) -> AppRow:
        row = s.scalar(select(AppRow).where(AppRow.name == name))
        if row is None or row.state == "deleting":
            raise NotFound(f"no app named {name!r}", field="app")
        return row

    def summaries(self) -> list[dict[str, Any]]:
        observed = self._reconciler.observed.instances
        with self._sessions() as s:
            rows = s.execute(
                select(
                    AppRow.name,
                    AppRow.state,
                    AppRow.current_version,
                    AppRow.target_version,
                    AppRow.operation_id,
                    AppRow.updated_at,
                ).order_by(AppRow.name)
            ).all()
        out = []
        for name, state, current, target, op_id, updated in rows:
            insts = observed.get(name, [])
            out.append(
                {
                    "name": name,
                    "state": state,
                    "release": current,
                    "target_release": target,
                    "instances": len(insts),
                    "ready": sum(1 for i in insts if self._reconciler.tracker.ready(i)),
                    "operation": op_id,
                    "updated_at": updated,
                }
            )
        return out

    def get(self, name: str) -> dict[str, Any]:
        with self._sessions() as s:
            row = self._app(s, name)
            rel = self._release(s, row, row.target_version) if row.target_version else None
            scale = {f.service: f.replicas for f in row.formation}
            domains = sorted(d.domain for d in row.domains)
        spec = AppSpec.model_validate(rel.spec) if rel else None
        return {
            "name": row.name,
            "state": row.state,
            "release": row.current_version,
            "target_release": row.target_version,
            "operation": row.operation_id,
            "services": {
                n: {"image": svc.image, "replicas": scale.get(n, 1), "port": svc.http_port}
                for n, svc in (spec.services.items() if spec else [])
            },
            "web": spec.web if spec else None,
            "domains": domains,
            "waiting": self._reconciler.observed.waiting.get(name, []),
        }

    def instances(self, name: str) -> list[Instance]:
        with self._sessions() as s:
            self._app(s, name)
        return [i for i in self._backend.list_instances(self._reconciler.platform) if i.app == name]

    def ready(self, inst: Instance) -> bool:
        return self._reconciler.tracker.ready(inst)

    def releases(self, name: str) -> list[dict[str, Any]]:
        with self._sessions() as s:
            row = self._app(s, name)
            return [_release_dict(r) for r in reversed(row.releases)]

    def _release(self, s: Session, app: AppRow, version: int | None) -> ReleaseRow:
        rel = s.scalar(select(ReleaseRow).where(ReleaseRow.app_id == app.id, ReleaseRow.version == version))
        if rel is None:
            raise NotFound(f"app {app.name} has no release v{version}", field="release")
        return rel

    def logs(
        self, name: str, service: str | None, tail: int | None, follow: bool, stop: threading.Event
    ) -> Iterator[str]:
        insts = [i for i in self.instances(name) if service is None or i.service == service]
        if service is not None and not insts:
            with self._sessions() as s:
                row = self._app(s, name)
                scale = {f.service for f in row.formation}
            if service not in scale:
                raise NotFound(f"app {name} has no service {service!r}", field="service")
        return self._backend.logs([i.id for i in insts], tail=tail, follow=follow, stop=stop)

    # -- deploying ------------------------------------------------------------------------------

    def deploy(self, name: str, req: DeployRequest) -> OperationRow:
        """Validate, then either record the release at once or build first in the background."""
        check_name(name)
        spec = self._pin_images(req.spec)
        with self._deploy_lock:
            self._check_ports(name, spec)
            needs_build = any(svc.build is not None for svc in spec.services.values())
            with self._sessions.begin() as s:
                app = s.scalar(select(AppRow).where(AppRow.name == name))
                if app is not None and app.state == "deleting":
                    raise Conflict(f"app {name} is being removed; try again in a moment", field="app")
                if app is None:
                    app = AppRow(name=name, state="running")
                    s.add(app)
                    s.flush()
                op = self._ops.new(
                    s, app=name, kind="deploy", user=req.user, status="building" if needs_build else "running"
                )
                if needs_build:
                    self._supersede(s, app, op)  # a later deploy supersedes this build, not the reverse
                else:
                    self._record_release(s, app, spec, None, op, req.user, req.description)
        self._event(name, "deploy_accepted", f"deploy by {req.user}: {req.description}", req.user, op)
        if needs_build:
            threading.Thread(
                target=self._build_then_release, args=(name, op.id, req, spec), daemon=True
            ).start()
        else:
            self._reconciler.wake()
        return op

    def _event(self, app: str, kind: str, message: str, user: str, op: OperationRow, **data: Any) -> None:
        """Record a user's change in the app's event log (queued: it never blocks)."""
        data.update(user=user, operation=op.id)
        if op.release is not None:
            data.setdefault("release", op.release)
        self._reconciler.events.record(app, kind, message, data)

    def _pin_images(self, spec: AppSpec) -> AppSpec:
        services = {}
        for name, svc in spec.services.items():
            if svc.build is not None or svc.image_id:
                services[name] = svc
                continue
            try:
                info = self._backend.image(svc.image or "")
            except (NotFound, InvalidSpec) as exc:
                raise InvalidSpec(exc.message, field=f"services.{name}.image") from exc
            update: dict[str, Any] = {"image_id": info.id}
            if not svc.ports and not svc.expose and len(spec.services) == 1:
                port = port_from_image(info.exposed_ports, name)
                update["expose"] = [port] if port else []
            services[name] = svc.model_copy(update=update)
        return spec.model_copy(update={"services": services})

    def _check_ports(self, name: str, spec: AppSpec) -> None:
        mine = {p: n for n, svc in spec.services.items() for p in svc.published}
        if not mine:
            return
        for n, svc in spec.services.items():
            _one_replica_with_host_port(svc, svc.replicas or 1, f"services.{n}.ports")
        with self._sessions() as s:
            others = s.execute(
                select(AppRow.name, ReleaseRow.spec)
                .join(
                    ReleaseRow,
                    (ReleaseRow.app_id == AppRow.id) & (ReleaseRow.version == AppRow.target_version),
                )
                .where(AppRow.name != name)
            ).all()
            own = s.execute(
                select(ReleaseRow.spec)
                .join(AppRow)
                .where(AppRow.name == name, ReleaseRow.version == AppRow.target_version)
            ).scalar()
        own_ports = set()
        if own:
            own_ports = {p for svc in AppSpec.model_validate(own).services.values() for p in svc.published}
        for other, ospec in others:
            taken = {p for svc in AppSpec.model_validate(ospec).services.values() for p in svc.published}
            for port in set(mine) & taken:
                raise Conflict(
                    f"host port {port} is already published by app {other}",
                    field=f"services.{mine[port]}.ports",
                )
        for port, svc_name in mine.items():
            if port not in own_ports and not self._backend.host_port_free(port):
                raise Conflict(
                    f"host port {port} is already in use on this host", field=f"services.{svc_name}.ports"
                )

    def _build_then_release(self, name: str, op_id: str, req: DeployRequest, spec: AppSpec) -> None:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        try:
            maker = self._make_base
            make_base = (lambda: maker(emit)) if maker is not None else None
            built = build_services(self._backend, name, op_id, spec, req.contexts, emit, make_base)
            with self._deploy_lock, self._sessions.begin() as s:
                app = self._app(s, name)
                op = s.get(OperationRow, op_id)
                if op is None or op.status != "building" or app.operation_id != op_id:
                    return  # superseded by a later deploy while it built
                op.status = "running"
                self._record_release(s, app, built, None, op, req.user, req.description)
        except Exception as exc:  # every failure ends the operation, whatever raised it
            message = getattr(exc, "message", None) or f"build failed: {exc}"
            self._fail_build(name, op_id, message)
        self._reconciler.wake()
        self._ops.notify()

    def _fail_build(self, name: str, op_id: str, message: str) -> None:
        self._reconciler.events.record(name, "build_failed", message[:2000], {"operation": op_id})
        with self._sessions.begin() as s:
            self._ops.finish(s, op_id, ok=False, message=message)
            app = s.scalar(select(AppRow).where(AppRow.name == name))
            if app is not None and app.target_version is None:
                app.state = "deleting"  # a first deploy that failed leaves nothing behind

    def _record_release(
        self,
        s: Session,
        app: AppRow,
        spec: AppSpec,
        config: dict[str, str] | None,
        op: OperationRow,
        user: str,
        description: str,
    ) -> ReleaseRow:
        """A new numbered release becomes the target; the operation follows its rollout."""
        last = s.scalar(select(func.max(ReleaseRow.version)).where(ReleaseRow.app_id == app.id)) or 0
        if config is None:
            prev = s.scalar(select(ReleaseRow).where(ReleaseRow.app_id == app.id, ReleaseRow.version == last))
            config = dict(prev.config) if prev else {}
        rel = ReleaseRow(
            app_id=app.id,
            version=last + 1,
            spec=spec.model_dump(mode="json"),
            config=config,
            description=description,
            created_by=user,
            status="pending",
        )
        s.add(rel)
        if app.target_version is not None and app.target_version != app.current_version:
            s.execute(
                update(ReleaseRow)
                .where(ReleaseRow.app_id == app.id, ReleaseRow.version == app.target_version)
                .values(status=ReleaseStatus.CANCELLED)
            )
        self._supersede(s, app, op)
        app.target_version = rel.version
        app.backend = self._mode(s)  # an app moves to Swarm with its first release after the switch
        app.state = "running"
        op.release = rel.version
        op.deadline = time.time() + self._timeout
        self._set_formation(s, app, spec)
        return rel

    def _supersede(self, s: Session, app: AppRow, op: OperationRow) -> None:
        if app.operation_id and app.operation_id != op.id:
            self._ops.finish(s, app.operation_id, ok=False, message=f"superseded by operation {op.id}")
        app.operation_id = op.id

    def _set_formation(self, s: Session, app: AppRow, spec: AppSpec) -> None:
        rows = {f.service: f for f in app.formation}
        for name, svc in spec.services.items():
            if name in rows:
                if svc.replicas is not None:
                    rows[name].replicas = svc.replicas
            else:
                app.formation.append(
                    FormationRow(service=name, replicas=1 if svc.replicas is None else svc.replicas)
                )
        for name, row in rows.items():
            if name not in spec.services:
                s.delete(row)

    # -- changing a running app -----------------------------------------------------------------

    def rollback(self, name: str, version: int | None, user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = self._app(s, name)
            if version is None:
                older = [
                    r
                    for r in app.releases
                    if r.status in ("active", "superseded") and r.version != app.current_version
                ]
                if not older:
                    raise NotFound(f"app {name} has no earlier release to roll back to", field="release")
                version = older[-1].version
            rel = self._release(s, app, version)
            spec = AppSpec.model_validate(rel.spec)
            self._images_still_there(spec)
            op = self._ops.new(s, app=name, kind="rollback", user=user)
            self._record_release(s, app, spec, dict(rel.config), op, user, f"Rollback to v{version}")
        self._event(name, "rollback", f"rollback to v{version} by {user}", user, op, to=version)
        self._reconciler.wake()
        return op

    def _images_still_there(self, spec: AppSpec) -> None:
        for name, svc in spec.services.items():
            try:
                self._backend.image(svc.image_id or "")
            except NotFound as exc:
                raise Conflict(
                    f"the image of service {name} in that release is gone from the engine", field="release"
                ) from exc

    def config(self, name: str) -> dict[str, str]:
        with self._sessions() as s:
            app = self._app(s, name)
            if app.target_version is None:
                return {}
            return dict(self._release(s, app, app.target_version).config)

    def set_config(self, name: str, changes: dict[str, str], unset: list[str], user: str) -> OperationRow:
        for key in [*changes, *unset]:
            check_env_key(key)
        with self._sessions.begin() as s:
            app = self._app(s, name)
            if app.target_version is None:
                raise Conflict(f"app {name} has no release yet: deploy it first", field="app")
            rel = self._release(s, app, app.target_version)
            missing = [k for k in unset if k not in rel.config]
            if missing:
                raise NotFound(f"app {name} has no config var {missing[0]}", field="config")
            config = {k: v for k, v in rel.config.items() if k not in unset} | changes
            op = self._ops.new(s, app=name, kind="config", user=user)
            what = ", ".join([*(f"set {k}" for k in changes), *(f"unset {k}" for k in unset)])
            self._record_release(s, app, AppSpec.model_validate(rel.spec), config, op, user, what)
        self._event(name, "config_changed", f"{what} by {user}", user, op, set=list(changes), unset=unset)
        self._reconciler.wake()
        return op

    def scale(self, name: str, counts: dict[str, int], user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = self._app(s, name)
            rows = {f.service: f for f in app.formation}
            spec = (
                AppSpec.model_validate(self._release(s, app, app.target_version).spec)
                if app.target_version
                else None
            )
            for svc, n in counts.items():
                if svc not in rows:
                    raise NotFound(f"app {name} has no service {svc!r}", field="service")
                if not 0 <= n <= MAX_REPLICAS:
                    raise InvalidSpec(f"replicas for {svc} must be between 0 and {MAX_REPLICAS}", field=svc)
                if spec is not None:
                    _one_replica_with_host_port(spec.services[svc], n, svc)
            for svc, n in counts.items():
                rows[svc].replicas = n
            op = self._follow(s, app, "scale", user)
        what = " ".join(f"{svc}={n}" for svc, n in counts.items())
        self._event(name, "scaled", f"scale {what} by {user}", user, op, replicas=counts)
        self._reconciler.wake()
        return op

    def _follow(self, s: Session, app: AppRow, kind: str, user: str) -> OperationRow:
        """The operation a client follows for this change: the rollout in flight, or a new one."""
        if app.operation_id:
            current = s.get(OperationRow, app.operation_id)
            if current is not None and current.status not in TERMINAL:
                return current
        op = self._ops.new(s, app=app.name, kind=kind, user=user)
        op.deadline = time.time() + self._timeout
        app.operation_id = op.id
        return op

    def _mode(self, s: Session) -> str:
        """The backend new releases run on: "swarm" once the platform is a cluster, else "docker"."""
        if not self._backend.capabilities.services:
            return "docker"
        row = s.get(Meta, "backend")
        return row.value if row is not None else "docker"

    def migrate(self, user: str) -> list[OperationRow]:
        """Move every app still running as containers onto Swarm: a rollout of its current release
        as services (same release, same domains); its containers go once the services are ready."""
        ops: list[OperationRow] = []
        with self._sessions.begin() as s:
            if self._mode(s) != "swarm":
                raise Conflict(
                    "the platform is not a cluster yet: add a host (mypaas host add) or run "
                    "mypaas cluster init"
                )
            for app in s.scalars(select(AppRow).where(AppRow.backend == "docker", AppRow.state == "running")):
                if app.target_version is None:
                    continue
                op = self._ops.new(s, app=app.name, kind="migrate", user=user)
                self._supersede(s, app, op)
                op.deadline = time.time() + self._timeout
                op.release = app.target_version
                app.backend = "swarm"
                app.target_generation = max(app.target_generation, app.current_generation) + 1
                ops.append(op)
        for op in ops:
            self._event(op.app, "migrate", f"moved to Swarm by {user}", user, op)
        self._reconciler.wake()
        return ops

    def set_state(self, name: str, action: str, user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = self._app(s, name)
            if action == "restart":
                if app.target_version is None:
                    raise Conflict(f"app {name} has no release yet: deploy it first", field="app")
                op = self._ops.new(s, app=name, kind="restart", user=user)
                self._supersede(s, app, op)
                op.deadline = time.time() + self._timeout
                op.release = app.target_version
                app.target_generation = max(app.target_generation, app.current_generation) + 1
                app.state = "running"
            else:
                app.state = "stopped" if action == "stop" else "running"
                op = self._ops.new(s, app=name, kind=action, user=user)
                self._supersede(s, app, op)
                op.deadline = time.time() + self._timeout
        self._event(name, action, f"{action} by {user}", user, op)
        self._reconciler.wake()
        return op

    def delete(self, name: str, user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = self._app(s, name)
            app.state = "deleting"
            op = self._ops.new(s, app=name, kind="remove", user=user)
            self._supersede(s, app, op)
        self._event(name, "remove", f"removal by {user}", user, op)
        self._reconciler.wake()
        return op

    # -- domains --------------------------------------------------------------------------------

    def domains(self, name: str) -> list[str]:
        with self._sessions() as s:
            return sorted(d.domain for d in self._app(s, name).domains)

    def add_domain(self, name: str, domain: str) -> str:
        domain = check_domain(domain)
        if domain == self._base_domain or domain.endswith(f".{self._base_domain}"):
            raise InvalidSpec(
                f"{domain} is under the platform's base domain {self._base_domain}: "
                f"every app already has APP.{self._base_domain}",
                field="domain",
            )
        with self._sessions.begin() as s:
            app = self._app(s, name)
            taken = s.get(DomainRow, domain)
            if taken is not None:
                owner = s.get(AppRow, taken.app_id)
                raise Conflict(
                    f"domain {domain} already belongs to app {owner.name if owner else '?'}", field="domain"
                )
            s.add(DomainRow(domain=domain, app_id=app.id))
        self._reconciler.wake()
        return domain

    def remove_domain(self, name: str, domain: str) -> None:
        domain = check_domain(domain)
        with self._sessions.begin() as s:
            app = self._app(s, name)
            row = s.get(DomainRow, domain)
            if row is None or row.app_id != app.id:
                raise NotFound(f"app {name} has no domain {domain}", field="domain")
            s.delete(row)
        self._reconciler.wake()


def _one_replica_with_host_port(svc: ServiceSpec, replicas: int, field: str) -> None:
    if svc.published and replicas > 1:
        raise InvalidSpec(
            f"service {svc.name} publishes a host port, so it can run only 1 replica", field=field
        )


def _release_dict(r: ReleaseRow) -> dict[str, Any]:
    spec = AppSpec.model_validate(r.spec)
    return {
        "version": r.version,
        "status": r.status,
        "description": r.description,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "images": {
            n: {"image": svc.image, "id": svc.image_id, "registry": (r.images or {}).get(n)}
            for n, svc in spec.services.items()
        },
        "config": dict(r.config),
    }
