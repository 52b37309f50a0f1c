"""How the reconcile loop runs the apps of each backend kind. One interface (``AppKind``): ``plan``
decides with that kind's pure planner, ``apply`` carries the plan's engine steps out. Steps raise typed
failures (errors.py); the loop owns what follows (give up, report once, try again later).

- ``ContainerApps`` (the docker backend): the loop plans every container; it creates the target's
  instances (removals are the loop's, for every kind).
- ``ServiceApps`` (the swarm backend): each revision of a service is one engine service that the engine
  places, restarts and rolls out; the loop creates, updates and removes those services.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from mypaas.composer.base import (
    Backend,
    InstanceRequest,
    SecretFile,
    ServiceBackend,
    ServiceRequest,
    ServiceState,
)
from mypaas.domain import AppSpec, Instance, InstanceReport, ProbeSpec, ServiceSpec
from mypaas.errors import MyPaasError
from mypaas.manager.reconcile.errors import PermanentFailure, TemporaryFailure, step
from mypaas.manager.reconcile.plan import DesiredApp, ObservedService, Plan, plan_app
from mypaas.manager.reconcile.plan_services import plan_services
from mypaas.manager.reconcile.view import LoopView
from mypaas.states import AppState, UpdateState

# (app, service, image id) -> the registry reference every host pulls
Publish = Callable[[str, str, str], str]
# -> (registry address, user, password) the hosts' engines pull with; None: no registry
RegistryAuth = Callable[[], tuple[str, str, str] | None]
# (app, its target spec, a service) -> the secrets and configs the service mounts, with their values
SecretFiles = Callable[[str, AppSpec, ServiceSpec], tuple[SecretFile, ...]]
# (service, instance id, what the engine says of it): an instance that failed and is gone
Failure = tuple[str, str, InstanceReport]


class Readiness(Protocol):
    """The monitor's verdicts (monitor/health.py HealthTracker)."""

    def ready(self, inst: Instance) -> bool: ...

    def failed(self, inst: Instance) -> bool: ...

    def started(self, inst: Instance, probe: ProbeSpec | None) -> None:
        """An instance just made: its first verdict need not wait for the next listing."""
        ...


class AppKind(Protocol):
    def begin(self, apps: set[str]) -> None:
        """A pass starts over ``apps`` (every app in the desired state)."""
        ...

    def plan(self, app: DesiredApp, instances: list[Instance], now: float) -> Plan:
        """Decide the app's steps; raise PermanentFailure when its target cannot run at all."""
        ...

    def apply(self, app: DesiredApp, plan: Plan) -> bool:
        """Carry the plan's engine steps out; True when another pass should follow at once."""
        ...

    def failures(self, app: DesiredApp) -> list[Failure]:
        """Instances of the app's target that failed and are gone from the listing (Swarm's failed
        tasks, replaced by new ones); the listing shows the others."""
        ...


def instance_env(svc: ServiceSpec, config: dict[str, str]) -> dict[str, str]:
    """An instance's environment: the service's, then the app's config vars, then PORT if unset."""
    env = dict(svc.environment)
    env.update(config)
    if svc.http_port and "PORT" not in env:
        env["PORT"] = str(svc.http_port)
    return env


def _request_fields(
    platform: str, app: DesiredApp, svc: ServiceSpec, secret_files: SecretFiles | None
) -> dict[str, Any]:
    """What a request for one of the target's instances (or services) says, whichever the kind."""
    assert app.spec is not None and app.target is not None  # planned apps have a target to run
    files = secret_files(app.name, app.spec, svc) if secret_files and (svc.secrets or svc.configs) else ()
    return {
        "platform": platform,
        "app": app.name,
        "service": svc,
        "release": app.target[0],
        "generation": app.target[1],
        "environment": instance_env(svc, app.config),
        "networks": tuple(svc.networks),
        "volumes": tuple(app.spec.volumes),
        "secret_files": files,
    }


class ContainerApps:
    def __init__(
        self,
        *,
        backend: Backend,
        platform: str,
        readiness: Readiness,
        view: LoopView,
        secret_files: SecretFiles | None = None,
    ) -> None:
        self._backend = backend
        self._platform = platform
        self._readiness = readiness
        self._view = view
        self._secret_files = secret_files
        self._creating = ThreadPoolExecutor(max_workers=4, thread_name_prefix="create")

    def begin(self, apps: set[str]) -> None:
        return None

    def plan(self, app: DesiredApp, instances: list[Instance], now: float) -> Plan:
        return plan_app(app, instances, self._readiness.ready, now, self._readiness.failed)

    def apply(self, app: DesiredApp, plan: Plan) -> bool:
        if not plan.create or app.spec is None or app.target is None:
            return False
        spec = app.spec
        with step():  # a secret's value gone from the store fails the rollout (InvalidSpec)
            requests = [
                self._request(app, spec.services[service])
                for service, count in plan.create
                # a host port is freed when the old instance is gone (which wakes the loop)
                if not (spec.services[service].stop_first and self._view.removing_any(app.name, service))
                for _ in range(count)
            ]
            for net in [None, *spec.networks]:
                self._backend.ensure_network(self._platform, app.name, net)
            for vol in spec.volumes:
                self._backend.ensure_volume(self._platform, app.name, vol)
            made = [(req, self._creating.submit(self._backend.create_instance, req)) for req in requests]
            for req, fut in made:
                self._readiness.started(fut.result(), req.service.probe)
        return True

    def failures(self, app: DesiredApp) -> list[Failure]:
        return []  # an exited container stays listed until the loop removes it

    def _request(self, app: DesiredApp, svc: ServiceSpec) -> InstanceRequest:
        fields = _request_fields(self._platform, app, svc, self._secret_files)
        name = f"{app.name}-{svc.name}-v{fields['release']}-{secrets.token_hex(3)}"
        return InstanceRequest(name=name, **fields)


class ServiceApps:
    def __init__(
        self,
        *,
        backend: ServiceBackend,
        platform: str,
        readiness: Readiness,
        publish: Publish | None,
        registry_auth: RegistryAuth,
        secret_files: SecretFiles | None = None,
    ) -> None:
        self._backend = backend
        self._secret_files = secret_files
        self._platform = platform
        self._readiness = readiness
        self._publish = publish
        self._registry_auth = registry_auth
        self._services: list[ServiceState] = []
        self._requests: dict[str, dict[str, ServiceRequest]] = {}  # app -> this pass's requests
        self._blocked: dict[str, TemporaryFailure] = {}  # app -> why its requests could not be made

    def begin(self, apps: set[str]) -> None:
        """List the engine's services once per pass; remove those of apps removed meanwhile (while the
        manager was down, say)."""
        self._services = self._backend.list_services(self._platform)
        for svc in self._services:
            if svc.app not in apps:
                self._backend.remove_service(svc.id)
        self._requests, self._blocked = {}, {}

    def plan(self, app: DesiredApp, instances: list[Instance], now: float) -> Plan:
        observed = [_observed(s) for s in self._services if s.app == app.name]
        requests: dict[str, ServiceRequest] = {}
        keys: dict[str, str] = {}
        if app.state == AppState.RUNNING and app.spec is not None and app.target is not None:
            try:  # no image to run: PermanentFailure; the registry down: keys unknown, steps wait
                with step():
                    requests = {n: self._request(app, svc) for n, svc in app.spec.services.items()}
                    keys = {n: self._backend.service_key(req) for n, req in requests.items()}
            except TemporaryFailure as exc:
                self._blocked[app.name], requests, keys = exc, {}, {}
        self._requests[app.name] = requests
        return plan_services(app, observed, instances, keys, self._readiness.ready, now)

    def apply(self, app: DesiredApp, plan: Plan) -> bool:
        if app.name in self._blocked:
            raise self._blocked[app.name]
        with step():
            if plan.ensure and app.spec is not None:
                for net in [None, *app.spec.networks]:
                    self._backend.ensure_overlay_network(self._platform, app.name, net)
                auth = self._registry_auth()
                if auth is not None:
                    self._backend.registry_login(*auth)
                for name in plan.ensure:
                    self._backend.ensure_service(self._requests[app.name][name])
            for service_id in plan.drop_services:
                self._backend.remove_service(service_id)
        return bool(plan.ensure or plan.drop_services)

    def failures(self, app: DesiredApp) -> list[Failure]:
        """The failed tasks of the target's services (asked only while it rolls out)."""
        out: list[Failure] = []
        for svc in self._services:
            if svc.app != app.name or (svc.release, svc.generation) != app.target:
                continue
            try:
                failed = self._backend.failed_tasks(svc.id)
            except MyPaasError:  # the engine did not answer: the next pass asks again
                continue
            out.extend((svc.service, task_id, report) for task_id, report in failed.items())
        return out

    def _request(self, app: DesiredApp, svc: ServiceSpec) -> ServiceRequest:
        fields = _request_fields(self._platform, app, svc, self._secret_files)
        image = self._image_ref(app.name, svc)
        return ServiceRequest(replicas=app.scale.get(svc.name, 1), image=image, **fields)

    def _image_ref(self, app: str, svc: ServiceSpec) -> str:
        """Every host runs exactly the deployed image: the registry's reference by digest."""
        if not svc.image_id:
            raise PermanentFailure(f"service {svc.name}: no image pinned")
        if self._publish is None:
            return svc.image_id  # no registry: only this host can run it
        return self._publish(app, svc.name, svc.image_id)


def _observed(s: ServiceState) -> ObservedService:
    return ObservedService(
        id=s.id,
        service=s.service,
        revision=(s.release, s.generation),
        replicas=s.replicas,
        spec_key=s.spec_key,
        update_state=UpdateState(s.update_state) if s.update_state else None,
        update_message=s.update_message,
        previous=s.previous,
    )
