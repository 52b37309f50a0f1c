"""The reconcile planners' shared types, and the planner of apps run as containers (the docker backend):
a pure function from one app's desired state and its instances to steps (plan_services.py plans apps
run as Swarm services).

It decides, never acts: the reconcile loop carries the plan out. Rolling deploys are start-first:
instances of the target revision are created next to the old ones, and the old ones are drained only
once every service of the target is ready. Services publishing a host port (or asking for it in
deploy.update_config) roll stop-first instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mypaas.domain import AppSpec, Instance, ServiceSpec
from mypaas.states import AppState, BackendMode, InstanceState, UpdateState

Revision = tuple[int, int]  # (release version, generation)


@dataclass(frozen=True)
class DesiredApp:
    name: str
    state: AppState
    spec: AppSpec | None  # the target release's spec
    config: dict[str, str]
    target: Revision | None
    current: Revision | None
    scale: dict[str, int]
    operation_id: str | None = None
    deadline: float | None = None
    backend: BackendMode = BackendMode.DOCKER  # docker: containers planned here; swarm: services
    remove_volumes: bool = False  # a removal (state deleting) takes the app's named volumes too
    remove_force: bool = False  # a removal cuts foreign containers off, and gives up on what is left
    plain_http: bool = False  # the router keeps plain HTTP for it (no redirect to HTTPS)

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
    update_state: UpdateState | None = None
    update_message: str = ""
    previous: Revision | None = None


def revision(inst: Instance) -> Revision:
    return (inst.release, inst.generation)


def counts(svc: ServiceSpec, inst: Instance) -> bool:
    """Does this instance count toward the service's replicas?

    A container still only *created* when the loop lists it was never started: the manager died
    between creating and starting it (the loop creates and starts within one pass). It is replaced."""
    if inst.state == InstanceState.CREATED:
        return False
    if inst.state != InstanceState.EXITED:
        return True
    return svc.restart in ("no", "on-failure") and inst.exit_code == 0  # a finished one-shot task


def holding(plan: Plan, app: DesiredApp, all_ready: bool, now: float) -> bool:
    """Settle the deadline's part of ``plan``. A rollout whose target is not all ready holds: traffic
    stays on the current revision, and past the deadline the rollout is abandoned (returns True:
    nothing else changes). Otherwise an operation past its deadline is overdue."""
    late = app.deadline is not None and now > app.deadline
    if app.rolling and not all_ready:
        plan.swapping = True
        plan.abandon = late
        return True
    plan.overdue = late and not all_ready and app.operation_id is not None
    return False


def plan_app(
    app: DesiredApp,
    instances: list[Instance],
    ready: Callable[[Instance], bool],
    now: float,
    failed: Callable[[Instance], bool] = lambda _inst: False,
) -> Plan:
    """``failed`` marks running instances that keep failing their health check: they are replaced."""
    plan = Plan()
    if app.state != AppState.RUNNING or app.spec is None or app.target is None:
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
        want = 1 if svc.mode == "global" else app.scale.get(name, 1)  # global: one per host, one host
        ok = _plan_service(plan, app, svc, want, mine, others, ready)
        all_ready = all_ready and ok
    if holding(plan, app, all_ready, now):
        return plan
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
    live = [i for i in own if counts(svc, i)]
    plan.remove.extend(i for i in own if not counts(svc, i))  # crashed or stopped: replaced below
    if not _dependencies_met(app, svc, mine, ready):
        plan.waiting.append(f"{svc.name}: waiting for {', '.join(svc.depends_on)}")
        return want == 0
    if svc.stop_first:
        old = [i for i in others if i.service == svc.name and i.state != InstanceState.EXITED]
        if old:  # a host port can be bound once (or update_config says stop-first): the old one goes first
            plan.remove.extend(old)
            plan.waiting.append(f"{svc.name}: stopping the old instance first (stop-first)")
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
