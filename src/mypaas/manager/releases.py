"""Deploys and releases: what makes a new numbered release of an app — a deploy (validated, its images
pinned, built first in the background when it has build contexts), a rollback to an older release, a
change of config vars. Each records desired state in one transaction, then wakes the reconcile loop,
which rolls the release out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mypaas.build import build_services
from mypaas.build.contexts import check_contexts
from mypaas.build.project_files import add_project_files, read_project_files
from mypaas.container_options import check_platform, check_swarm
from mypaas.domain import AppSpec, ServiceSpec, check_env_key, check_name, port_from_image
from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound
from mypaas.manager.changes import Changes, spec_changes
from mypaas.manager.describe import describe_deploy
from mypaas.manager.formation import kept_notes, set_formation
from mypaas.manager.records import (
    AppContext,
    find_app,
    find_release,
    new_app,
    refuse_deleting,
    release_dict,
    supersede,
    target_spec,
)
from mypaas.manager.state.desired import drop_failed_first_deploy
from mypaas.manager.state.models import AppRow, OperationRow, ReleaseRow
from mypaas.manager.vault import Vault
from mypaas.states import AppState, BackendMode, OperationStatus, ReleaseStatus
from mypaas.uploads import Blob, discard

# makes the Debian base image a source build needs, when the engine lacks it; emits its progress
MakeBase = Callable[[Callable[[str], None]], None]


class DeployHook(Protocol):
    """What a deploy of a preview app does in the deploy's transaction (manager/previews.py): link the
    app to the app it previews before its secrets are sealed, and give each release its config vars."""

    def adopt(self, s: Session, app: AppRow) -> None: ...

    def config(self, s: Session, app: AppRow) -> dict[str, str]: ...


@dataclass(frozen=True)
class DeployRequest:
    spec: AppSpec
    # part name -> gzipped tar (build contexts, project files): files under $MYPAAS_HOME/uploads the
    # deploy removes once it no longer needs them (at once, or when its build ends)
    contexts: Mapping[str, Blob]
    user: str
    description: str
    warnings: tuple[str, ...] = ()  # what MyPaas maps differently than the file says (shown with the deploy)
    # the values of the compose file's secrets and configs the CLI read (file, environment), by
    # "secrets.NAME" / "configs.NAME"; stored encrypted, the release refers to them by digest
    secret_values: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    team: str | None = None  # the team a new app goes to (None: the default team)
    hook: DeployHook | None = None  # a preview app's deploy


def one_replica_with_host_port(svc: ServiceSpec, replicas: int, field: str) -> None:
    """Refuse a replica count the service cannot run: more than one with a host port, any for a
    service that runs one instance per host."""
    if svc.mode == "global":
        raise InvalidSpec(
            f"service {svc.name} runs one instance per host (deploy.mode: global): it is not scaled",
            field=field,
        )
    if svc.published and replicas > 1:
        raise InvalidSpec(
            f"service {svc.name} publishes a host port, so it can run only 1 replica", field=field
        )


class Releases:
    def __init__(self, ctx: AppContext, *, vault: Vault, make_base: MakeBase | None = None) -> None:
        self._ctx = ctx
        self._sessions = ctx.sessions
        self._ops = ctx.operations
        self._vault = vault
        self._make_base = make_base

    # -- reading --------------------------------------------------------------------------------

    def releases(self, name: str) -> list[dict[str, Any]]:
        with self._sessions() as s:
            row = find_app(s, name)
            return [release_dict(r) for r in reversed(row.releases)]

    def config(self, name: str) -> dict[str, str]:
        with self._sessions() as s:
            app = find_app(s, name)
            if app.target_version is None:
                return {}
            return dict(find_release(s, app, app.target_version).config)

    # -- deploying ------------------------------------------------------------------------------

    def deploy(self, name: str, req: DeployRequest) -> OperationRow:
        """Validate, then either record the release at once or build first in the background."""
        check_name(name)
        spec = self._pin_images(req.spec)
        self._check_external_volumes(spec)
        files = read_project_files(spec, req.contexts)  # checked now: a bad upload fails the request
        check_contexts(spec, req.contexts)  # so are build contexts (a tar bomb: refused before any build)
        spec = files.spec
        needs_build = any(svc.build is not None or svc.project_files for svc in spec.services.values())
        with self._ctx.deploy_lock:
            self._check_ports(name, spec)
            with self._sessions.begin() as s:
                if self._ctx.mode(s) == BackendMode.SWARM:  # what a Swarm service cannot run: refused now
                    for n, svc in spec.services.items():
                        check_swarm(svc, f"services.{n}")
                app = s.scalar(select(AppRow).where(AppRow.name == name))
                refuse_deleting(app)
                if app is None:
                    app = new_app(s, name, req.team)
                if req.hook is not None:
                    req.hook.adopt(s, app)
                spec = self._vault.seal(s, app, spec, req.secret_values)
                status = OperationStatus.BUILDING if needs_build else OperationStatus.RUNNING
                op = self._ops.new(s, app=name, kind="deploy", user=req.user, status=status)
                config = req.hook.config(s, app) if req.hook is not None else None
                unchanged = not needs_build and self._running_unchanged(s, app, spec, op, config)
                what = req.description or (
                    "build" if needs_build else describe_deploy(target_spec(s, app), spec, name)
                )
                if needs_build:
                    supersede(self._ops, s, app, op)  # a later deploy supersedes this build, not the reverse
                elif not unchanged:
                    self._record(s, app, spec, config, op, req.user, what)
        if req.warnings:
            self._ops.append_log(op.id, "".join(f"warning: {w}\n" for w in req.warnings))
        if unchanged:
            discard(req.contexts)  # nothing builds from them
            self._ctx.change(name, "deploy_unchanged", f"deploy by {req.user}: {op.message}", req.user, op)
            self._ops.notify()
            return op
        self._ctx.change(name, "deploy_accepted", f"deploy by {req.user}: {what}", req.user, op)
        if needs_build:
            threading.Thread(
                target=self._build_then_release, args=(name, op.id, req, spec, files.layers), daemon=True
            ).start()
        else:
            discard(req.contexts)  # nothing builds from them
            self._ctx.wake()
        return op

    def dry_run(self, name: str, req: DeployRequest) -> tuple[AppSpec, Changes]:
        """What ``deploy`` would record, checked as it checks it (images on the engine, host ports), and
        what it would change against the app's target release. Makes nothing: no pull, no build, no row."""
        check_name(name)
        spec = read_project_files(req.spec, req.contexts).spec  # the files checked and summed up
        spec = self._pin_images(spec)
        self._check_ports(name, spec)
        with self._sessions() as s:
            app = s.scalar(select(AppRow).where(AppRow.name == name))
            refuse_deleting(app)
            if app is None or app.target_version is None:
                return spec, spec_changes(None, spec, None)
            current = AppSpec.model_validate(find_release(s, app, app.target_version).spec)
            return spec, spec_changes(current, spec, app.target_version)

    def _running_unchanged(
        self, s: Session, app: AppRow, spec: AppSpec, op: OperationRow, config: dict[str, str] | None
    ) -> bool:
        """Is ``spec`` (and ``config``, when given) exactly the release the app runs, rolled out? Then
        ``op`` ends at once ("nothing changed: v3 is running"): no new release, nothing restarts. A count
        scaled since stays, as a new release would keep it (the file's replicas did not change)."""
        version = app.current_version
        if version is None or not _runs_target(app):
            return False
        running = find_release(s, app, version)
        if _comparable(running.spec, app.name) != _comparable(spec.model_dump(mode="json"), app.name):
            return False
        if config is not None and config != running.config:
            return False
        op.release = version  # the file's replicas are the running release's: the counts stay
        notes = kept_notes(s, app, spec)
        if notes:
            op.log = (op.log or "") + "".join(f"{note}\n" for note in notes)
        self._ops.finish(s, op.id, ok=True, message=f"nothing changed: v{version} is running")
        building = s.get(OperationRow, app.operation_id) if app.operation_id else None
        if building is not None and building.status == OperationStatus.BUILDING:
            supersede(self._ops, s, app, op)  # a later deploy wins over a build in flight, as ever
        if app.operation_id == op.id:  # a build's operation, the app's since it was accepted: done
            app.operation_id = None
        return True

    def _pin_images(self, spec: AppSpec) -> AppSpec:
        services = {}
        for name, svc in spec.services.items():
            if svc.build is not None or svc.image_id:
                services[name] = svc
                continue
            try:
                info = self._ctx.backend.image(svc.image or "")
            except (NotFound, InvalidSpec) as exc:
                raise InvalidSpec(exc.message, field=f"services.{name}.image") from exc
            check_platform(svc, info.platform)
            if not info.has_command and not (svc.command or svc.entrypoint):
                raise InvalidSpec(
                    f"image {svc.image} has no command: give one with mypaas image import -c 'CMD …' "
                    "or the compose file's command:",
                    field=f"services.{name}.command",
                )
            changes: dict[str, Any] = {"image_id": info.id}
            if not svc.ports and not svc.expose and len(spec.services) == 1:
                port = port_from_image(info.exposed_ports, name)
                changes["expose"] = [port] if port else []
            services[name] = svc.model_copy(update=changes)
        return spec.model_copy(update={"services": services})

    def _check_ports(self, name: str, spec: AppSpec) -> None:
        mine = {p: n for n, svc in spec.services.items() for p in svc.published}
        if not mine:
            return
        for n, svc in spec.services.items():
            if svc.mode != "global":
                one_replica_with_host_port(svc, svc.replicas or 1, f"services.{n}.ports")
        published = self._published_ports()
        own_ports = published.pop(name, set())
        for other, taken in published.items():
            for port in set(mine) & taken:
                raise Conflict(
                    f"host port {port} is already published by app {other}",
                    field=f"services.{mine[port]}.ports",
                )
        for port, svc_name in mine.items():
            if port not in own_ports and not self._ctx.backend.host_port_free(port):
                raise Conflict(
                    f"host port {port} is already in use on this host", field=f"services.{svc_name}.ports"
                )

    def _published_ports(self) -> dict[str, set[int]]:
        """Every app's host ports, by its target release."""
        with self._sessions() as s:
            rows = s.execute(
                select(AppRow.name, ReleaseRow.spec).join(
                    ReleaseRow,
                    (ReleaseRow.app_id == AppRow.id) & (ReleaseRow.version == AppRow.target_version),
                )
            ).all()
        return {
            app: {p for svc in AppSpec.model_validate(spec).services.values() for p in svc.published}
            for app, spec in rows
        }

    def _check_external_volumes(self, spec: AppSpec) -> None:
        for volume in spec.external_volumes:
            if not self._ctx.backend.volume_exists(volume):
                raise InvalidSpec(
                    f"external volume {volume!r} does not exist on the platform (an admin makes it: "
                    f"docker volume create {volume})",
                    field="volumes",
                )

    def _build_then_release(
        self, name: str, op_id: str, req: DeployRequest, spec: AppSpec, layers: dict[str, bytes]
    ) -> None:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        try:
            maker = self._make_base
            make_base = (lambda: maker(emit)) if maker is not None else None
            built = build_services(
                self._ctx.backend,
                name,
                op_id,
                spec,
                req.contexts,
                emit,
                make_base,
                egress=self._ctx.build_egress,
            )
            for svc in built.services.values():
                if svc.platform is not None:  # what the engine built is for its own platform
                    check_platform(svc, self._ctx.backend.image(svc.image_id or "").platform)
            built = add_project_files(self._ctx.backend, name, built, layers, emit)
            with self._ctx.deploy_lock, self._sessions.begin() as s:
                app = find_app(s, name)
                op = s.get(OperationRow, op_id)
                if op is None or op.status != OperationStatus.BUILDING or app.operation_id != op_id:
                    return  # superseded by a later deploy while it built
                config = req.hook.config(s, app) if req.hook is not None else None
                if self._running_unchanged(s, app, built, op, config):
                    self._ctx.change(name, "deploy_unchanged", f"deploy: {op.message}", req.user, op)
                else:
                    op.status = OperationStatus.RUNNING
                    what = req.description or describe_deploy(target_spec(s, app), built, name)
                    self._record(s, app, built, config, op, req.user, what)
        except Exception as exc:  # every failure ends the operation, whatever raised it
            message = exc.message if isinstance(exc, MyPaasError) else f"build failed: {exc}"
            self._fail_build(name, op_id, message)
        finally:
            discard(req.contexts)  # the uploaded parts: built from, or the build failed
        self._ctx.wake()
        self._ops.notify()

    def _fail_build(self, name: str, op_id: str, message: str) -> None:
        self._ctx.events.record(name, "build_failed", message[:2000], {"operation": op_id})
        with self._sessions.begin() as s:
            self._ops.finish(s, op_id, ok=False, message=message)
            app = s.scalar(select(AppRow).where(AppRow.name == name))
            if app is not None:
                drop_failed_first_deploy(app, target_failed=False)

    def _record(
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
            status=ReleaseStatus.PENDING,
        )
        s.add(rel)
        before = target_spec(s, app)
        if app.target_version is not None and app.target_version != app.current_version:
            s.execute(
                update(ReleaseRow)
                .where(ReleaseRow.app_id == app.id, ReleaseRow.version == app.target_version)
                .values(status=ReleaseStatus.CANCELLED)
            )
        supersede(self._ops, s, app, op)
        app.target_version = rel.version
        app.backend = self._ctx.mode(s)  # an app moves to Swarm with its first release after the switch
        app.state = AppState.RUNNING
        op.release = rel.version
        op.deadline = self._ctx.deadline()
        notes = set_formation(s, app, before, spec, rollback=op.kind == "rollback")
        if notes:  # what the deploy shows of the replica counts (see formation.py)
            op.log = (op.log or "") + "".join(f"{note}\n" for note in notes)
        return rel

    # -- releases from releases -------------------------------------------------------------------

    def rollback(self, name: str, version: int | None, user: str) -> OperationRow:
        with self._sessions.begin() as s:
            app = find_app(s, name)
            if version is None:
                older = [
                    r
                    for r in app.releases
                    if r.status in (ReleaseStatus.ACTIVE, ReleaseStatus.SUPERSEDED)
                    and r.version != app.current_version
                ]
                if not older:
                    raise NotFound(f"app {name} has no earlier release to roll back to", field="release")
                version = older[-1].version
            rel = find_release(s, app, version)
            spec = AppSpec.model_validate(rel.spec)
            self._images_still_there(spec)
            op = self._ops.new(s, app=name, kind="rollback", user=user)
            self._record(s, app, spec, dict(rel.config), op, user, f"Rollback to v{version}")
        self._ctx.change(name, "rollback", f"rollback to v{version} by {user}", user, op, to=version)
        self._ctx.wake()
        return op

    def _images_still_there(self, spec: AppSpec) -> None:
        for name, svc in spec.services.items():
            try:
                self._ctx.backend.image(svc.image_id or "")
            except NotFound as exc:
                raise Conflict(
                    f"the image of service {name} in that release is gone from the engine", field="release"
                ) from exc

    def record_change(
        self, s: Session, app: AppRow, spec: AppSpec, config: dict[str, str], kind: str, user: str, what: str
    ) -> OperationRow:
        """A new release of ``app``'s target with ``spec`` and ``config`` changed (a secret set, say),
        in the caller's transaction; answers the operation that follows its rollout."""
        op = self._ops.new(s, app=app.name, kind=kind, user=user)
        self._record(s, app, spec, config, op, user, what)
        return op

    def set_config(self, name: str, changes: dict[str, str], unset: list[str], user: str) -> OperationRow:
        for key in [*changes, *unset]:
            check_env_key(key)
        with self._sessions.begin() as s:
            app = find_app(s, name)
            if app.target_version is None:
                raise Conflict(f"app {name} has no release yet: deploy it first", field="app")
            rel = find_release(s, app, app.target_version)
            missing = [k for k in unset if k not in rel.config]
            if missing:
                raise NotFound(f"app {name} has no config var {missing[0]}", field="config")
            config = {k: v for k, v in rel.config.items() if k not in unset} | changes
            op = self._ops.new(s, app=name, kind="config", user=user)
            if config == rel.config and _runs_target(app):  # as a deploy of what runs: no release
                op.release = app.current_version
                self._ops.finish(s, op.id, ok=True, message=f"nothing changed: v{op.release} is running")
                unchanged = True
            else:
                unchanged = False
                what = ", ".join([*(f"set {k}" for k in changes), *(f"unset {k}" for k in unset)])
                self._record(s, app, AppSpec.model_validate(rel.spec), config, op, user, what)
        if unchanged:
            self._ops.notify()
            return op
        self._ctx.change(
            name, "config_changed", f"{what} by {user}", user, op, set=list(changes), unset=unset
        )
        self._ctx.wake()
        return op


def _runs_target(app: AppRow) -> bool:
    """Does ``app`` run its target release, rolled out (not stopped, no rollout in flight)?"""
    return app.state == AppState.RUNNING and app.current_version == app.target_version


def _comparable(spec: dict[str, Any], app: str) -> dict[str, Any]:
    """A stored spec without the tags of the images MyPaas built (named after each build's operation):
    a build that gave the same image (its ``image_id``) is the same release."""
    services = {
        name: {k: v for k, v in svc.items() if k != "image" or not str(v).startswith(f"mypaas-{app}/")}
        for name, svc in spec.get("services", {}).items()
    }
    return {**spec, "services": services}
