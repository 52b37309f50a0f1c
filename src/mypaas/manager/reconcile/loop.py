"""The reconcile loop: compares desired state with the instances the backend reports, and converges.

Woken by API changes, engine events and readiness changes, with a periodic resync. Every step is
idempotent and nothing is kept only in memory: killing the manager loses no desired state.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import (
    Backend,
    InstanceRequest,
    ServiceBackend,
    ServiceRequest,
    ServiceState,
)
from mypaas.domain import Instance, ProbeSpec, ReleaseStatus, ServiceSpec
from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.manager.operations import Operations
from mypaas.manager.reconcile.plan import DesiredApp, ObservedService, Plan, plan_app, plan_services
from mypaas.manager.state.desired import load_desired
from mypaas.manager.state.models import AppRow, OperationRow, ReleaseRow
from mypaas.monitor.events import EventSink, NoEvents
from mypaas.monitor.health import HealthTracker, http_probe
from mypaas.router.base import Router
from mypaas.router.config import Route
from mypaas.settings import Settings

log = logging.getLogger("mypaas.reconcile")

WARM_UP_S = 5.0


@dataclass
class Observed:
    """What the last pass saw; read by the API for listings without asking the engine."""

    instances: dict[str, list[Instance]] = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    at: float = 0.0
    error: str | None = None


def _probe_specs(desired: dict[str, DesiredApp]) -> Callable[[Instance], ProbeSpec | None]:
    """Each instance's probe, from its app's target spec (a new release's probe applies at once)."""
    specs = {
        (app.name, name): svc.probe
        for app in desired.values()
        if app.spec is not None
        for name, svc in app.spec.services.items()
    }
    return lambda inst: specs.get((inst.app, inst.service))


def instance_env(svc: ServiceSpec, config: dict[str, str]) -> dict[str, str]:
    """An instance's environment: the service's, then the app's config vars, then PORT if unset."""
    env = dict(svc.environment)
    env.update(config)
    if svc.http_port and "PORT" not in env:
        env["PORT"] = str(svc.http_port)
    return env


# (app, service, image id) -> the registry reference every host pulls
Publisher = Callable[[str, str, int, str], str]


class Reconciler:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: Backend,
        router: Router | None,
        operations: Operations,
        platform_id: str,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self._sessions = sessions
        self._backend = backend
        self._router = router
        self._ops = operations
        self.platform = platform_id
        self._base_domain = settings.base_domain
        self._drain_s = settings.drain_s
        self._grace_s = settings.stop_grace_s
        self._resync_s = settings.resync_s
        self._clock = clock
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one pass at a time
        self._routed: set[str] = set()  # instance ids in the router's last config
        self._removing: dict[str, Instance] = {}  # being drained and stopped in the background
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="remove")
        self._creating = ThreadPoolExecutor(max_workers=4, thread_name_prefix="create")
        self.tracker = HealthTracker(
            min_running_s=settings.min_running_s, on_change=self.wake, probe=probe or http_probe
        )
        self.observed = Observed()
        self._born = time.monotonic()
        self.on_active: Callable[[str, int], None] | None = None  # a release finished rolling out
        self.on_observed: Callable[[list[Instance]], None] | None = None  # each pass's list (the monitor)
        self.events: EventSink = NoEvents()
        self.publisher: Publisher | None = None  # images for services backends (Swarm), by digest
        self.registry_auth: Callable[[], tuple[str, str, str] | None] = lambda: None  # addr, user, pw
        self._published: dict[tuple[str, str, str], str] = {}
        self._errors: dict[str, str] = {}  # app -> the last error reported

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Reconcile until ``stop`` is set; a failing pass is logged and retried with backoff."""
        backoff = 0.5
        while not stop.is_set():
            self._wake.clear()
            try:
                again = self.pass_once()
                backoff = 0.5
                self.observed.error = None
            except MyPaasError as exc:
                log.warning("reconcile pass failed: %s", exc.message)
                self.observed.error = exc.message
                again = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception as exc:  # a bug must not kill the loop; log it whole
                log.exception("reconcile pass crashed")
                self.observed.error = f"internal error: {exc}"
                again = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            if again:
                continue
            soon = self.tracker.next_deadline()
            self._wake.wait(min(self._resync_s, soon + 0.05) if soon is not None else self._resync_s)

    def pass_once(self) -> bool:
        """One pass over every app. Returns True when another pass should follow at once."""
        with self._lock:
            return self._pass()

    def _pass(self) -> bool:
        with self._sessions() as s:
            desired, domains = load_desired(s)
        listed = self._backend.list_instances(self.platform)
        services = self._services()
        self.tracker.observe(listed, _probe_specs(desired))
        instances = [i for i in listed if i.id not in self._removing]
        if self.on_observed is not None:
            self.on_observed(instances)
        by_app: dict[str, list[Instance]] = defaultdict(list)
        for inst in instances:
            by_app[inst.app].append(inst)
        now = self._clock()
        removals = [i for name, insts in by_app.items() if name not in desired for i in insts]
        again = False
        waiting: dict[str, list[str]] = {}
        holding: set[str] = set()  # apps mid-rollout: the router keeps the current revision
        for svc in services:
            if svc.app not in desired:  # an app removed while the manager was down
                self._services_backend().remove_service(svc.id)
        for app in desired.values():
            if app.backend == "swarm" and self._backend.capabilities.services:
                again |= self._reconcile_services(
                    app, services, by_app.get(app.name, []), now, removals, waiting, holding
                )
                continue
            again |= self._reconcile_containers(
                app, by_app.get(app.name, []), now, removals, waiting, holding
            )
        drain = self._push_routes(desired, domains, by_app, {i.id for i in removals}, holding)
        for inst in removals:
            self._removing[inst.id] = inst
            self._pool.submit(self._remove, inst, self._drain_s if inst.id in drain else 0.0)
        self.observed = Observed(
            instances=dict(by_app), waiting=waiting, routes=self.observed.routes, at=time.time()
        )
        return again

    def removing(self) -> set[str]:
        """Ids of the instances the loop is stopping (their exit is expected)."""
        return set(self._removing)

    def _reconcile_containers(
        self,
        app: DesiredApp,
        instances: list[Instance],
        now: float,
        removals: list[Instance],
        waiting: dict[str, list[str]],
        holding: set[str],
    ) -> bool:
        plan = plan_app(app, instances, self.tracker.ready, now, self.tracker.failed)
        for inst in plan.replaced:
            self.tracker.replaced(inst)
            self.events.record(
                app.name, "instance_replaced", f"{inst.name} kept failing its health check: replaced", {}
            )
        waiting[app.name] = plan.waiting
        if plan.swapping:
            holding.add(app.name)
        again = False
        try:  # one app's failure must not hold up the others
            again |= self._create(app, plan)
            removals.extend(plan.remove)
            again |= self._settle(app, plan)
        except MyPaasError as exc:
            log.warning("%s: %s", app.name, exc.message)
        return again

    # -- services backends (Swarm) --------------------------------------------------------------

    def _services_backend(self) -> ServiceBackend:
        assert self._backend.capabilities.services
        return self._backend  # type: ignore[return-value]  # checked by its capabilities

    def _services(self) -> list[ServiceState]:
        if not self._backend.capabilities.services:
            return []
        return self._services_backend().list_services(self.platform)

    def _reconcile_services(
        self,
        app: DesiredApp,
        services: list[ServiceState],
        instances: list[Instance],
        now: float,
        removals: list[Instance],
        waiting: dict[str, list[str]],
        holding: set[str],
    ) -> bool:
        backend = self._services_backend()
        mine = [s for s in services if s.app == app.name]
        observed = [
            ObservedService(
                id=s.id,
                service=s.service,
                revision=(s.release, s.generation),
                replicas=s.replicas,
                spec_key=s.spec_key,
                update_state=s.update_state,
                update_message=s.update_message,
                previous=s.previous,
            )
            for s in mine
        ]
        requests: dict[str, ServiceRequest] = {}
        error = None
        try:
            if app.state == "running" and app.spec is not None and app.target is not None:
                requests = {name: self._service_request(app, svc) for name, svc in app.spec.services.items()}
            keys = {name: backend.service_key(req) for name, req in requests.items()}
        except InvalidSpec as exc:  # no image to run: retrying cannot help
            self._abandon(app, reason=exc.message)
            return True
        except MyPaasError as exc:  # the registry is down, say: retried; the deadline still holds
            error, keys = exc.message, {}
        plan = plan_services(app, observed, instances, keys, self.tracker.ready, now)
        waiting[app.name] = plan.waiting
        if plan.swapping:
            holding.add(app.name)
        if error is None:
            try:
                self._apply_services(app, plan, requests)
            except InvalidSpec as exc:  # the engine refuses the spec itself
                self._abandon(app, reason=exc.message)
                return True
            except MyPaasError as exc:
                error = exc.message
        self._report(app, error)
        removals.extend(plan.remove)
        self._settle(app, plan)
        return bool(plan.ensure or plan.drop_services) and error is None

    def _apply_services(self, app: DesiredApp, plan: Plan, requests: dict[str, ServiceRequest]) -> None:
        backend = self._services_backend()
        if plan.ensure and app.spec is not None:
            for net in [None, *app.spec.networks]:
                backend.ensure_overlay_network(self.platform, app.name, net)
            auth = self.registry_auth()
            if auth is not None:
                backend.registry_login(*auth)
            for name in plan.ensure:
                backend.ensure_service(requests[name])
        for service_id in plan.drop_services:
            backend.remove_service(service_id)

    def _report(self, app: DesiredApp, error: str | None) -> None:
        """Log an app's error once (not on every pass), in the manager's log and its operation's."""
        if error is None or self._errors.get(app.name) == error:
            if error is None:
                self._errors.pop(app.name, None)
            return
        self._errors[app.name] = error
        log.warning("%s: %s", app.name, error)
        if app.operation_id:
            self._ops.append_log(app.operation_id, f"error: {error}\n")

    def _service_request(self, app: DesiredApp, svc: ServiceSpec) -> ServiceRequest:
        assert app.spec is not None and app.target is not None
        return ServiceRequest(
            platform=self.platform,
            app=app.name,
            service=svc,
            release=app.target[0],
            generation=app.target[1],
            replicas=app.scale.get(svc.name, 1),
            image=self._image_ref(app.name, svc),
            environment=instance_env(svc, app.config),
            networks=tuple(svc.networks),
            volumes=tuple(app.spec.volumes),
        )

    def _image_ref(self, app: str, svc: ServiceSpec) -> str:
        """Every host runs exactly the deployed image: the registry's reference by digest."""
        if not svc.image_id:
            raise InvalidSpec(f"service {svc.name}: no image pinned", field="image")
        if self.publisher is None:
            return svc.image_id  # no registry: only this host can run it
        key = (app, svc.name, svc.image_id)
        ref = self._published.get(key)
        if ref is None:
            ref = self._published[key] = self.publisher(app, svc.name, 0, svc.image_id)
        return ref

    # -- steps ----------------------------------------------------------------------------------

    def _create(self, app: DesiredApp, plan: Plan) -> bool:
        if not plan.create or app.spec is None or app.target is None:
            return False
        spec = app.spec
        try:
            for net in [None, *spec.networks]:
                self._backend.ensure_network(self.platform, app.name, net)
            for vol in spec.volumes:
                self._backend.ensure_volume(self.platform, app.name, vol)
            requests = [
                self._request(app, spec.services[service])
                for service, count in plan.create
                # a host port is freed when the old instance is gone (which wakes the loop)
                if not (spec.services[service].published and self._still_removing(app.name, service))
                for _ in range(count)
            ]
            for fut in [self._creating.submit(self._backend.create_instance, req) for req in requests]:
                fut.result()
        except InvalidSpec as exc:  # the engine refuses the spec itself: retrying cannot help
            self._abandon(app, reason=exc.message)
            return True
        except MyPaasError as exc:
            log.warning("%s: %s", app.name, exc.message)
            if app.operation_id:
                self._ops.append_log(app.operation_id, f"error: {exc.message}\n")
            return False  # retried on the next wake or resync, not in a tight loop
        return True

    def _still_removing(self, app: str, service: str) -> bool:
        return any(i.app == app and i.service == service for i in list(self._removing.values()))

    def _request(self, app: DesiredApp, svc: ServiceSpec) -> InstanceRequest:
        assert app.spec is not None and app.target is not None
        return InstanceRequest(
            platform=self.platform,
            app=app.name,
            service=svc,
            release=app.target[0],
            generation=app.target[1],
            name=f"{app.name}-{svc.name}-v{app.target[0]}-{secrets.token_hex(3)}",
            environment=instance_env(svc, app.config),
            networks=tuple(svc.networks),
            volumes=tuple(app.spec.volumes),
        )

    def _settle(self, app: DesiredApp, plan: Plan) -> bool:
        """Record the end of a rollout, a stop or a removal; abandon a rollout past its deadline."""
        if plan.abandon:
            self._abandon(app)
            return True
        if plan.overdue:
            self._overdue(app, plan)
            return False
        if not plan.converged:
            return False
        if app.state != "running" and any(i.app == app.name for i in list(self._removing.values())):
            return False  # a stop or removal is done once its instances are gone for good
        if app.state == "deleting":
            self._backend.remove_app_resources(self.platform, app.name)
            with self._sessions.begin() as s:
                row = s.query(AppRow).filter_by(name=app.name).one_or_none()
                if row is not None:
                    self._ops.finish(s, row.operation_id, ok=True, message=f"removed {app.name}")
                    s.delete(row)
            self._ops.notify()
            return False
        if app.rolling or app.operation_id:
            self._complete(app)
        return False

    def _complete(self, app: DesiredApp) -> None:
        activated: int | None = None
        with self._sessions.begin() as s:
            row = s.query(AppRow).filter_by(name=app.name).one_or_none()
            if row is None or (row.target_version, row.target_generation) != app.target:
                return  # desired state moved on meanwhile; the next pass handles it
            op = s.get(OperationRow, row.operation_id) if row.operation_id else None
            if op is not None and op.status == "building":
                return  # the build's release is not recorded yet
            if app.rolling and app.target is not None and row.state == "running":
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
        self._ops.notify()
        if activated is not None:
            self.events.record(
                app.name, "release_activated", f"v{activated} is active", {"release": activated}
            )
        if activated is not None and self.on_active is not None:
            self.on_active(app.name, activated)

    def _overdue(self, app: DesiredApp, plan: Plan) -> None:
        """A scale or start that is not ready by its deadline: fail its operation, keep converging."""
        with self._sessions.begin() as s:
            row = s.query(AppRow).filter_by(name=app.name).one_or_none()
            if row is None or row.operation_id != app.operation_id:
                return
            waiting = "; ".join(plan.waiting) or "not ready"
            self._ops.finish(
                s, row.operation_id, ok=False, message=f"{app.name} is not ready in time: {waiting}"
            )
            row.operation_id = None
        self._ops.notify()

    def _abandon(self, app: DesiredApp, reason: str | None = None) -> None:
        """The target never got ready in time (or the engine refused it): keep the current release
        serving, report why."""
        tail = "" if reason else self._failing_tail(app)
        with self._sessions.begin() as s:
            row = s.query(AppRow).filter_by(name=app.name).one_or_none()
            if row is None or (row.target_version, row.target_generation) != app.target:
                return
            version = row.target_version
            if row.target_version != row.current_version:
                s.execute(
                    update(ReleaseRow)
                    .where(ReleaseRow.app_id == row.id, ReleaseRow.version == version)
                    .values(status=ReleaseStatus.FAILED)
                )
            if row.current_version is None:
                row.state = "deleting"  # a first deploy that failed leaves nothing behind
                fallback = "nothing was running before, so the app is removed"
            else:
                row.target_version, row.target_generation = row.current_version, row.current_generation
                fallback = f"v{row.current_version} keeps serving"
            why = f"v{version} failed: {reason}" if reason else f"v{version} did not become healthy in time"
            message = f"{why}; {fallback}"
            if tail:
                message += "\n--- last log lines ---\n" + tail
            self._ops.finish(s, row.operation_id, ok=False, message=message)
            row.operation_id = None
        self._ops.notify()
        self.events.record(app.name, "rollout_abandoned", why + "; " + fallback, {"release": version})

    def _failing_tail(self, app: DesiredApp) -> str:
        insts = [
            i for i in self.observed.instances.get(app.name, []) if (i.release, i.generation) == app.target
        ]
        bad = [i for i in insts if not self.tracker.ready(i)] or insts
        for inst in bad:
            text = self._backend.tail(inst.id, 20).strip()
            if text:
                return f"[{inst.name}]\n{text}"
        return ""

    def _push_routes(
        self,
        desired: dict[str, DesiredApp],
        domains: dict[str, list[str]],
        by_app: dict[str, list[Instance]],
        leaving: set[str],
        holding: set[str],
    ) -> set[str]:
        """Push the routes of ready instances; return the leaving ones that were routed (to drain).

        During a rollout the current revision keeps the traffic until the whole target is ready; then
        one push swaps old for new. Every push reloads Caddy, so fewer pushes mean fewer chances of
        a connection caught by a reload."""
        routes: list[Route] = []
        routed: set[str] = set()
        for app in desired.values():
            web = app.spec.web if app.spec else None
            if web is None or app.state == "deleting":
                continue  # a stopped app keeps its route, answering 503 while it has no instance
            ups = [
                i
                for i in by_app.get(app.name, [])
                if i.service == web and i.address and i.id not in leaving and self.tracker.ready(i)
            ]
            if app.name in holding:
                serving = [i for i in ups if (i.release, i.generation) == app.current]
                ups = serving or ups  # nothing of the current revision ready: take what is
            routed.update(i.id for i in ups)
            hosts = (f"{app.name}.{self._base_domain}", *domains.get(app.name, []))
            routes.append(
                Route(app=app.name, hosts=hosts, upstreams=tuple(sorted(i.address or "" for i in ups)))
            )
        if self._router is not None and not self._warming_up():
            self._router.apply(routes)
        self.observed.routes = routes
        drain = self._routed & leaving
        self._routed = routed
        return drain

    def _warming_up(self) -> bool:
        """Just after a (re)start no instance is probed yet: pushing routes now would empty them.
        Caddy keeps serving its last config until the first verdicts are in (a few seconds at most)."""
        return self.tracker.unverified() > 0 and time.monotonic() - self._born < WARM_UP_S

    def _remove(self, inst: Instance, drain_s: float) -> None:
        """Drain (let requests already sent finish), stop and remove one instance; then wake the loop."""
        try:
            if drain_s:
                time.sleep(drain_s)
            self._backend.remove_instance(inst.id, self._grace_s)
        except MyPaasError as exc:
            log.warning("removing %s failed: %s", inst.name, exc.message)
        finally:
            self._removing.pop(inst.id, None)
            self.wake()
