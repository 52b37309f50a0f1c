"""The reconcile planner: a pure function from one app's desired state and its instances to steps.

It decides, never acts: the reconcile loop carries the plan out. Rolling deploys are start-first:
instances of the target revision are created next to the old ones, and the old ones are drained only
once every service of the target is ready. Services publishing a host port roll stop-first instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mypaas.domain import AppSpec, Instance, InstanceState, ServiceSpec

Revision = tuple[int, int]  # (release version, generation)


@dataclass(frozen=True)
class DesiredApp:
    name: str
    state: str  # running | stopped | deleting
    spec: AppSpec | None  # the target release's spec
    config: dict[str, str]
    target: Revision | None
    current: Revision | None
    scale: dict[str, int]
    operation_id: str | None = None
    deadline: float | None = None
    backend: str = "docker"  # docker: containers planned here; swarm: services the engine rolls out

    @property
    def rolling(self) -> bool:
        return self.target != self.current


@dataclass
class Plan:
    create: list[tuple[str, int]] = field(default_factory=list)  # (service, how many)
    remove: list[Instance] = field(default_factory=list)  # drained first when routed
    converged: bool = False  # desired state reached: the operation in flight is done
    swapping: bool = False  # a rollout whose target is not all ready: traffic stays on the current revision
    replaced: list[Instance] = field(default_factory=list)  # kept failing their health check
    abandon: bool = False  # the rollout missed its deadline: fall back to the current revision
    overdue: bool = False  # another operation (scale, start) missed its deadline: report it, keep trying
    waiting: list[str] = field(default_factory=list)  # why it is not converged (for ps and logs)
    # services backends (Swarm) only:
    ensure: list[str] = field(default_factory=list)  # services to create or update (the engine rolls out)
    drop_services: list[str] = field(default_factory=list)  # engine ids of services to remove


@dataclass(frozen=True)
class ObservedService:
    """What the planner needs of one engine service (see composer.base.ServiceState)."""

    id: str
    service: str
    revision: Revision
    replicas: int
    spec_key: str
    update_state: str | None = None
    update_message: str = ""
    previous: Revision | None = None


_SETTLED = (None, "completed", "rollback_completed")


def revision(inst: Instance) -> Revision:
    return (inst.release, inst.generation)


def _counts(svc: ServiceSpec, inst: Instance) -> bool:
    """Does this instance count toward the service's replicas?

    A container still only *created* when the loop lists it was never started: the manager died
    between creating and starting it (the loop creates and starts within one pass). It is replaced."""
    if inst.state == InstanceState.CREATED:
        return False
    if inst.state != InstanceState.EXITED:
        return True
    return svc.restart in ("no", "on-failure") and inst.exit_code == 0  # a finished one-shot task


def plan_app(
    app: DesiredApp,
    instances: list[Instance],
    ready: Callable[[Instance], bool],
    now: float,
    failed: Callable[[Instance], bool] = lambda _inst: False,
) -> Plan:
    """``failed`` marks running instances that keep failing their health check: they are replaced."""
    plan = Plan()
    if app.state != "running" or app.spec is None or app.target is None:
        plan.remove = list(instances)
        plan.converged = not instances
        return plan
    spec = app.spec
    mine = [i for i in instances if revision(i) == app.target and i.service in spec.services]
    others = [i for i in instances if i not in mine]
    plan.replaced = [i for i in mine if failed(i)]
    plan.remove.extend(plan.replaced)
    mine = [i for i in mine if i not in plan.replaced]
    all_ready = True
    for name in spec.start_order():
        svc = spec.services[name]
        want = app.scale.get(name, 1)
        ok = _plan_service(plan, app, svc, want, mine, others, ready)
        all_ready = all_ready and ok
    late = app.deadline is not None and now > app.deadline
    if app.rolling and not all_ready:
        plan.abandon = late
        plan.swapping = True
        return plan
    plan.overdue = late and not all_ready and app.operation_id is not None
    # Target ready everywhere (or nothing rolling): everything else goes, old releases and strays.
    plan.remove.extend(i for i in others if i not in plan.remove)
    plan.converged = all_ready and not others and not plan.create
    return plan


def _plan_service(
    plan: Plan,
    app: DesiredApp,
    svc: ServiceSpec,
    want: int,
    mine: list[Instance],
    others: list[Instance],
    ready: Callable[[Instance], bool],
) -> bool:
    """Add this service's steps to ``plan``; return whether it is fully ready at the target."""
    own = [i for i in mine if i.service == svc.name]
    live = [i for i in own if _counts(svc, i)]
    plan.remove.extend(i for i in own if not _counts(svc, i))  # crashed or stopped: replaced below
    if not _dependencies_met(app, svc, mine, ready):
        plan.waiting.append(f"{svc.name}: waiting for {', '.join(svc.depends_on)}")
        return want == 0
    if svc.published:
        old = [i for i in others if i.service == svc.name and i.state != InstanceState.EXITED]
        if old:  # a host port can be bound once: stop the old instance first
            plan.remove.extend(old)
            plan.waiting.append(f"{svc.name}: stopping the old instance to free its host port")
            return False
    if len(live) < want:
        plan.create.append((svc.name, want - len(live)))
    elif len(live) > want:
        extra = sorted(live, key=lambda i: (ready(i), -i.created))[: len(live) - want]
        plan.remove.extend(extra)
    n_ready = sum(1 for i in live if ready(i) or i.state == InstanceState.EXITED)
    if n_ready < want:
        plan.waiting.append(f"{svc.name}: {n_ready}/{want} ready")
        return False
    return True


def _dependencies_met(
    app: DesiredApp, svc: ServiceSpec, mine: list[Instance], ready: Callable[[Instance], bool]
) -> bool:
    for dep, condition in svc.depends_on.items():
        deps = [i for i in mine if i.service == dep]
        if app.scale.get(dep, 1) == 0:
            continue
        if condition == "service_healthy" and not any(ready(i) for i in deps):
            return False
        if condition == "service_completed_successfully" and not any(
            i.state == InstanceState.EXITED and i.exit_code == 0 for i in deps
        ):
            return False
        if condition == "service_started" and not any(i.state != InstanceState.EXITED for i in deps):
            return False
    return True


def plan_services(
    app: DesiredApp,
    services: list[ObservedService],
    instances: list[Instance],
    keys: dict[str, str],
    ready: Callable[[Instance], bool],
    now: float,
) -> Plan:
    """Plan an app whose services the engine runs (Swarm). Each revision of a service is one engine
    service: a rollout creates the target's services next to the current ones (start-first), the
    router keeps the current revision until every target service has all its replicas ready (by the
    monitor's probes and the healthcheck), then swaps in one push and the old services go. A target
    that is not ready by the deadline is abandoned (rolled back): its services go, the current stay.

    ``keys`` holds the spec key each target service must report (see ServiceBackend.service_key);
    a changed key at the same revision is updated in place by the engine's own rolling update.
    Instances that are not tasks (containers from before the move to Swarm) go once the target is
    ready."""
    plan = Plan()
    containers = [i for i in instances if i.node is None]
    tasks = [i for i in instances if i.node is not None]
    if app.state != "running" or app.spec is None or app.target is None:
        plan.drop_services = [s.id for s in services]
        plan.remove = containers
        plan.converged = not services and not instances
        return plan
    spec = app.spec
    target = {s.service: s for s in services if s.revision == app.target and s.service in spec.services}
    others = [s for s in services if s.id not in {t.id for t in target.values()}]
    all_ready = True
    for name in spec.services:
        want = app.scale.get(name, 1)
        svc = target.get(name)
        if (
            svc is not None
            and svc.spec_key != keys.get(name)
            and (svc.update_state or "").startswith("rollback")
        ):
            # the engine rolled an in-place update back: say so rather than push it again and again
            all_ready = False
            plan.waiting.append(f"{name}: update rolled back by the engine: {svc.update_message}")
            continue
        old = [s for s in others if s.service == name]
        if spec.services[name].published and old:
            # a fixed host port is bound once per host: the old revision goes first (stop-first)
            plan.drop_services.extend(s.id for s in old)
            all_ready = False
            plan.waiting.append(f"{name}: stopping the old revision to free its host port")
            continue
        if svc is None or svc.spec_key != keys.get(name) or svc.replicas != want:
            plan.ensure.append(name)
            all_ready = False
            plan.waiting.append(f"{name}: {'creating' if svc is None else 'updating'}")
            continue
        n_ready = sum(
            1
            for t in tasks
            if t.service == name
            and revision(t) == app.target
            and (ready(t) or (t.state == InstanceState.EXITED and _counts(spec.services[name], t)))
        )
        if n_ready < want or svc.update_state not in _SETTLED:
            all_ready = False
            state = f" ({svc.update_state})" if svc.update_state not in _SETTLED else ""
            plan.waiting.append(f"{name}: {n_ready}/{want} ready{state}")
    late = app.deadline is not None and now > app.deadline
    if app.rolling and not all_ready:
        plan.swapping = True
        plan.abandon = late
        return plan
    plan.overdue = late and not all_ready and app.operation_id is not None
    if all_ready:
        plan.drop_services = [s.id for s in others]
        plan.remove = containers
    else:
        plan.drop_services = list(dict.fromkeys(plan.drop_services))
    plan.converged = all_ready and not others and not containers
    return plan
