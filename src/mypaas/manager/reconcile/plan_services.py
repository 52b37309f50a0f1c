"""The planner of apps whose services the engine runs (the swarm backend): a pure function from one
app's desired state, its engine services and their tasks to steps. It decides, never acts."""

from __future__ import annotations

from collections.abc import Callable

from mypaas.domain import Instance
from mypaas.manager.reconcile.plan import DesiredApp, ObservedService, Plan, counts, holding, revision
from mypaas.states import AppState, InstanceState, UpdateState

_SETTLED = (None, UpdateState.COMPLETED, UpdateState.ROLLBACK_COMPLETED)  # no update in flight


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
    if app.state != AppState.RUNNING or app.spec is None or app.target is None:
        plan.drop_services = [s.id for s in services]
        plan.remove = containers
        plan.converged = not services and not instances
        return plan
    spec = app.spec
    target = {s.service: s for s in services if s.revision == app.target and s.service in spec.services}
    others = [s for s in services if s.id not in {t.id for t in target.values()}]
    all_ready = True
    for name in spec.services:
        old = [s for s in others if s.service == name]
        all_ready &= _plan_service(plan, app, name, target.get(name), old, tasks, keys.get(name), ready)
    if holding(plan, app, all_ready, now):
        return plan
    if all_ready:
        plan.drop_services = [s.id for s in others]
        plan.remove = containers
    else:
        plan.drop_services = list(dict.fromkeys(plan.drop_services))
    plan.converged = all_ready and not others and not containers
    return plan


def _plan_service(
    plan: Plan,
    app: DesiredApp,
    name: str,
    svc: ObservedService | None,
    old: list[ObservedService],
    tasks: list[Instance],
    key: str | None,
    ready: Callable[[Instance], bool],
) -> bool:
    """Add one service's steps to ``plan``: ``svc`` is its engine service at the target revision (if
    any), ``old`` those of other revisions, ``key`` the spec key it must report. Returns whether the
    service is fully ready at the target."""
    assert app.spec is not None
    spec = app.spec.services[name]
    want = app.scale.get(name, 1)
    if svc is not None and svc.spec_key != key and _rolled_back(svc):
        # the engine rolled an in-place update back: say so rather than push it again and again
        plan.waiting.append(f"{name}: update rolled back by the engine: {svc.update_message}")
        return False
    if spec.stop_first and old:
        # a fixed host port is bound once per host: the old revision goes first (stop-first)
        plan.drop_services.extend(s.id for s in old)
        plan.waiting.append(f"{name}: stopping the old revision first (stop-first)")
        return False
    scaled = spec.mode == "global" or (svc is not None and svc.replicas == want)
    if svc is None or svc.spec_key != key or not scaled:
        plan.ensure.append(name)
        plan.waiting.append(f"{name}: {'creating' if svc is None else 'updating'}")
        return False
    own = [t for t in tasks if t.service == name and revision(t) == app.target]
    if spec.mode == "global":  # one task per host the engine may place it on: all of those it runs
        want = max(1, len(own))
    n_ready = sum(1 for t in own if ready(t) or (t.state == InstanceState.EXITED and counts(spec, t)))
    if n_ready < want or svc.update_state not in _SETTLED:
        state = f" ({svc.update_state})" if svc.update_state not in _SETTLED else ""
        plan.waiting.append(f"{name}: {n_ready}/{want} ready{state}")
        return False
    return True


def _rolled_back(svc: ObservedService) -> bool:
    return svc.update_state is not None and UpdateState(svc.update_state).rolling_back
