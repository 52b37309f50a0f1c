"""The services (Swarm) planner: one engine service per revision, start-first, swap when all ready."""

from __future__ import annotations

import pytest

from mypaas.domain import AppSpec, Instance, PortSpec, ServiceSpec
from mypaas.manager.reconcile.plan import DesiredApp, ObservedService, Revision, revision
from mypaas.manager.reconcile.plan_services import plan_services
from mypaas.states import InstanceState

OLD: Revision = (1, 0)
NEW: Revision = (2, 0)


def svc_spec(name: str, **kw: object) -> ServiceSpec:
    return ServiceSpec(name=name, image="x", image_id=f"sha256:{name}", **kw)


def spec(*names: str) -> AppSpec:
    names = names or ("web",)
    return AppSpec(services={n: svc_spec(n, expose=[80]) if n == "web" else svc_spec(n) for n in names})


def app(
    target: Revision | None = NEW,
    current: Revision | None = NEW,
    scale: dict[str, int] | None = None,
    state: str = "running",
    deadline: float | None = None,
    operation_id: str | None = None,
    the_spec: AppSpec | None = None,
) -> DesiredApp:
    return DesiredApp(
        name="a",
        state=state,
        spec=the_spec or spec(),
        config={},
        target=target,
        current=current,
        scale=scale if scale is not None else {"web": 1},
        operation_id=operation_id,
        deadline=deadline,
        backend="swarm",
    )


def keys(*names: str) -> dict[str, str]:
    """The spec key each target service must report."""
    return {n: f"key-{n}" for n in names or ("web",)}


def service(
    name: str = "web",
    rev: Revision = NEW,
    replicas: int = 1,
    key: str | None = None,
    update_state: str | None = None,
    update_message: str = "",
) -> ObservedService:
    return ObservedService(
        id=f"{name}@{rev[0]}.{rev[1]}",
        service=name,
        revision=rev,
        replicas=replicas,
        spec_key=key if key is not None else f"key-{name}",
        update_state=update_state,
        update_message=update_message,
    )


def task(
    n: int,
    service: str = "web",
    rev: Revision = NEW,
    state: InstanceState = InstanceState.STARTING,
    node: str | None = "node1",
    **kw: object,
) -> Instance:
    """A Swarm task (``node`` set) or, with ``node=None``, a container from before the move to Swarm."""
    return Instance(
        id=f"t{n}",
        name=f"n{n}",
        app="a",
        service=service,
        release=rev[0],
        generation=rev[1],
        state=state,
        created=float(n),
        node=node,
        **kw,
    )


def container(n: int, service: str = "web", rev: Revision = OLD) -> Instance:
    return task(n, service=service, rev=rev, node=None)


def always(_: Instance) -> bool:
    return True


def never(_: Instance) -> bool:
    return False


# -- first deploy and steady state -----------------------------------------------------------------


def test_first_deploy_ensures_every_service() -> None:
    desired = app(current=None, the_spec=spec("web", "worker"), scale={"web": 2, "worker": 1})
    plan = plan_services(desired, [], [], keys("web", "worker"), always, 0)
    assert plan.ensure == ["web", "worker"]
    assert plan.waiting == ["web: creating", "worker: creating"]
    assert plan.swapping is True and plan.converged is False
    assert plan.drop_services == [] and plan.remove == [] and plan.create == []
    assert plan.abandon is False and plan.overdue is False


def test_services_created_but_tasks_not_ready_wait() -> None:
    desired = app(current=None, scale={"web": 2})
    tasks = [task(1), task(2)]
    plan = plan_services(desired, [service(replicas=2)], tasks, keys(), never, 0)
    assert plan.ensure == []
    assert plan.waiting == ["web: 0/2 ready"]
    assert plan.swapping is True and plan.converged is False
    assert plan.drop_services == [] and plan.remove == []


def test_unready_tasks_of_the_target_do_not_count() -> None:
    desired = app(current=None, scale={"web": 2})
    tasks = [task(1), task(2)]
    plan = plan_services(desired, [service(replicas=2)], tasks, keys(), lambda t: t.id == "t1", 0)
    assert plan.waiting == ["web: 1/2 ready"]
    assert plan.swapping is True and plan.converged is False


def test_tasks_of_other_revisions_or_services_do_not_count() -> None:
    desired = app(current=None, the_spec=spec("web", "worker"), scale={"web": 1, "worker": 1})
    services = [service("web"), service("worker")]
    tasks = [task(1, rev=OLD), task(2, service="worker"), task(3, rev=(2, 1))]
    plan = plan_services(desired, services, tasks, keys("web", "worker"), always, 0)
    assert plan.waiting == ["web: 0/1 ready"]
    assert plan.converged is False and plan.swapping is True


def test_first_deploy_all_ready_is_converged() -> None:
    desired = app(current=None, scale={"web": 2})
    plan = plan_services(desired, [service(replicas=2)], [task(1), task(2)], keys(), always, 0)
    assert plan.converged is True and plan.swapping is False
    assert plan.waiting == [] and plan.ensure == [] and plan.drop_services == [] and plan.remove == []


def test_steady_state_all_ready_is_converged() -> None:
    desired = app(the_spec=spec("web", "worker"), scale={"web": 2, "worker": 1})
    services = [service("web", replicas=2), service("worker")]
    tasks = [task(1), task(2), task(3, service="worker")]
    plan = plan_services(desired, services, tasks, keys("web", "worker"), always, 0)
    assert plan.converged is True
    assert plan.swapping is False and plan.abandon is False and plan.overdue is False
    assert plan.ensure == [] and plan.drop_services == [] and plan.remove == [] and plan.waiting == []


def test_more_ready_tasks_than_wanted_still_converged() -> None:
    """During an engine scale-down a few extra tasks may linger: that is the engine's job."""
    plan = plan_services(app(), [service()], [task(1), task(2)], keys(), always, 0)
    assert plan.converged is True and plan.ensure == []


def test_a_service_missing_from_scale_wants_one_replica() -> None:
    desired = app(scale={})
    plan = plan_services(desired, [service(replicas=2)], [task(1), task(2)], keys(), always, 0)
    assert plan.ensure == ["web"] and plan.waiting == ["web: updating"]
    assert plan.converged is False


def test_a_service_scaled_to_zero_needs_no_task() -> None:
    desired = app(the_spec=spec("web", "worker"), scale={"web": 1, "worker": 0})
    services = [service("web"), service("worker", replicas=0)]
    plan = plan_services(desired, services, [task(1)], keys("web", "worker"), always, 0)
    assert plan.converged is True and plan.ensure == [] and plan.waiting == []


# -- rollouts ----------------------------------------------------------------------------------------


def test_rollout_keeps_old_services_until_target_is_ready() -> None:
    desired = app(target=NEW, current=OLD, scale={"web": 2})
    services = [service(rev=OLD, replicas=2), service(rev=NEW, replicas=2)]
    tasks = [task(1, rev=OLD), task(2, rev=OLD), task(3), task(4)]
    plan = plan_services(desired, services, tasks, keys(), lambda t: revision(t) == OLD, 0)
    assert plan.drop_services == [] and plan.remove == [] and plan.ensure == []
    assert plan.swapping is True and plan.converged is False and plan.abandon is False
    assert plan.waiting == ["web: 0/2 ready"]


def test_rollout_target_partly_ready_still_swapping() -> None:
    desired = app(target=NEW, current=OLD, scale={"web": 2})
    services = [service(rev=OLD, replicas=2), service(rev=NEW, replicas=2)]
    tasks = [task(1, rev=OLD), task(2, rev=OLD), task(3), task(4)]
    plan = plan_services(desired, services, tasks, keys(), lambda t: t.id != "t4", 0)
    assert plan.drop_services == [] and plan.swapping is True
    assert plan.waiting == ["web: 1/2 ready"]


def test_rollout_needs_every_target_service_ready() -> None:
    desired = app(target=NEW, current=OLD, the_spec=spec("web", "worker"), scale={"web": 1, "worker": 1})
    services = [service("web", rev=OLD), service("worker", rev=OLD), service("web"), service("worker")]
    tasks = [task(1), task(2, service="worker")]
    plan = plan_services(desired, services, tasks, keys("web", "worker"), lambda t: t.service == "web", 0)
    assert plan.drop_services == [] and plan.swapping is True and plan.converged is False
    assert plan.waiting == ["worker: 0/1 ready"]


def test_rollout_target_ready_drops_old_services() -> None:
    desired = app(target=NEW, current=OLD, the_spec=spec("web", "worker"), scale={"web": 2, "worker": 1})
    services = [
        service("web", rev=OLD, replicas=2),
        service("worker", rev=OLD),
        service("web", replicas=2),
        service("worker"),
    ]
    tasks = [task(1, rev=OLD), task(2), task(3), task(4, service="worker")]
    plan = plan_services(desired, services, tasks, keys("web", "worker"), always, 0)
    assert plan.drop_services == ["web@1.0", "worker@1.0"]
    assert plan.swapping is False and plan.converged is False  # converged once they are gone
    assert plan.ensure == [] and plan.remove == [] and plan.waiting == []
    after = plan_services(desired, services[2:], tasks[1:], keys("web", "worker"), always, 0)
    assert after.converged is True and after.drop_services == []


def test_rollout_ensures_missing_target_service_and_keeps_old() -> None:
    desired = app(target=NEW, current=OLD)
    plan = plan_services(desired, [service(rev=OLD)], [task(1, rev=OLD)], keys(), always, 0)
    assert plan.ensure == ["web"] and plan.waiting == ["web: creating"]
    assert plan.drop_services == [] and plan.swapping is True and plan.converged is False


def test_leftover_services_of_another_revision_dropped_when_steady_and_ready() -> None:
    """E.g. the services of an abandoned target: the current revision is ready, they go."""
    desired = app(target=OLD, current=OLD)
    services = [service(rev=OLD), service(rev=NEW)]
    plan = plan_services(desired, services, [task(1, rev=OLD), task(2)], keys(), always, 0)
    assert plan.drop_services == ["web@2.0"] and plan.swapping is False and plan.converged is False


def test_leftover_services_kept_while_current_not_ready() -> None:
    desired = app(target=OLD, current=OLD)
    services = [service(rev=OLD), service(rev=NEW)]
    plan = plan_services(desired, services, [task(1, rev=OLD), task(2)], keys(), never, 0)
    assert plan.drop_services == [] and plan.swapping is False and plan.converged is False
    assert plan.waiting == ["web: 0/1 ready"]


# -- in-place updates (same revision) ---------------------------------------------------------------


def test_replica_change_at_same_revision_is_ensured() -> None:
    desired = app(scale={"web": 3})
    plan = plan_services(desired, [service(replicas=1)], [task(1)], keys(), always, 0)
    assert plan.ensure == ["web"] and plan.waiting == ["web: updating"]
    assert plan.converged is False and plan.swapping is False and plan.drop_services == []


def test_key_change_at_same_revision_is_ensured() -> None:
    plan = plan_services(app(), [service(key="key-stale")], [task(1)], keys(), always, 0)
    assert plan.ensure == ["web"] and plan.waiting == ["web: updating"]
    assert plan.converged is False and plan.swapping is False


def test_only_the_mismatched_service_is_ensured() -> None:
    desired = app(the_spec=spec("web", "worker"), scale={"web": 1, "worker": 1})
    services = [service("web"), service("worker", key="key-stale")]
    tasks = [task(1), task(2, service="worker")]
    plan = plan_services(desired, services, tasks, keys("web", "worker"), always, 0)
    assert plan.ensure == ["worker"] and plan.waiting == ["worker: updating"]
    assert plan.converged is False


@pytest.mark.parametrize("update_state", ["rollback_completed", "rollback_started", "rollback_paused"])
def test_rolled_back_in_place_update_is_not_pushed_again(update_state: str) -> None:
    observed = service(key="key-old", update_state=update_state, update_message="task exited with 1")
    plan = plan_services(app(), [observed], [task(1)], keys(), always, 0)
    assert plan.ensure == []
    assert plan.waiting == ["web: update rolled back by the engine: task exited with 1"]
    assert "rolled back" in plan.waiting[0]
    assert plan.converged is False and plan.drop_services == []


def test_rolled_back_update_even_with_other_replicas_is_not_pushed_again() -> None:
    observed = service(key="key-old", replicas=1, update_state="rollback_completed")
    plan = plan_services(app(scale={"web": 3}), [observed], [task(1)], keys(), always, 0)
    assert plan.ensure == [] and plan.converged is False
    assert plan.waiting == ["web: update rolled back by the engine: "]


def test_rolled_back_update_past_deadline_is_overdue() -> None:
    observed = service(key="key-old", update_state="rollback_completed")
    desired = app(deadline=10, operation_id="op1")
    plan = plan_services(desired, [observed], [task(1)], keys(), always, 11)
    assert plan.overdue is True and plan.abandon is False and plan.ensure == []


def test_rollback_completed_with_the_wanted_key_is_settled() -> None:
    """The key matches again (the engine holds what we want): a finished rollback is no obstacle."""
    observed = service(update_state="rollback_completed")
    plan = plan_services(app(), [observed], [task(1)], keys(), always, 0)
    assert plan.converged is True and plan.ensure == [] and plan.waiting == []


def test_a_non_rollback_update_state_with_a_changed_key_is_ensured() -> None:
    observed = service(key="key-old", update_state="completed")
    plan = plan_services(app(), [observed], [task(1)], keys(), always, 0)
    assert plan.ensure == ["web"] and plan.waiting == ["web: updating"]


@pytest.mark.parametrize("update_state", ["updating", "paused", "rollback_started"])
def test_an_unsettled_engine_update_is_not_converged(update_state: str) -> None:
    desired = app(scale={"web": 2})
    observed = service(replicas=2, update_state=update_state)
    plan = plan_services(desired, [observed], [task(1), task(2)], keys(), always, 0)
    assert plan.converged is False and plan.ensure == []
    assert plan.waiting == [f"web: 2/2 ready ({update_state})"]


def test_an_updating_target_keeps_old_services_and_containers() -> None:
    desired = app()
    services = [service(update_state="updating"), service(rev=OLD)]
    plan = plan_services(desired, services, [task(1), container(2)], keys(), always, 0)
    assert plan.drop_services == [] and plan.remove == [] and plan.converged is False


@pytest.mark.parametrize("update_state", [None, "completed", "rollback_completed"])
def test_settled_update_states_converge(update_state: str | None) -> None:
    observed = service(update_state=update_state)
    plan = plan_services(app(), [observed], [task(1)], keys(), always, 0)
    assert plan.converged is True and plan.waiting == []


# -- deadlines ----------------------------------------------------------------------------------------


def test_rollout_past_deadline_is_abandoned() -> None:
    desired = app(target=NEW, current=OLD, deadline=10, operation_id="op1")
    services = [service(rev=OLD), service(rev=NEW)]
    tasks = [task(1, rev=OLD), task(2)]
    plan = plan_services(desired, services, tasks, keys(), lambda t: revision(t) == OLD, 11)
    assert plan.abandon is True and plan.swapping is True
    assert plan.overdue is False and plan.converged is False
    assert plan.drop_services == [] and plan.remove == []


def test_rollout_at_the_deadline_is_not_yet_abandoned() -> None:
    desired = app(target=NEW, current=OLD, deadline=10)
    services = [service(rev=OLD), service(rev=NEW)]
    plan = plan_services(desired, services, [task(1)], keys(), never, 10)
    assert plan.abandon is False and plan.swapping is True


def test_ready_rollout_past_deadline_is_not_abandoned() -> None:
    desired = app(target=NEW, current=OLD, deadline=10, operation_id="op1")
    services = [service(rev=OLD), service(rev=NEW)]
    plan = plan_services(desired, services, [task(1, rev=OLD), task(2)], keys(), always, 11)
    assert plan.abandon is False and plan.overdue is False and plan.swapping is False
    assert plan.drop_services == ["web@1.0"]


def test_first_deploy_past_deadline_is_abandoned() -> None:
    plan = plan_services(app(current=None, deadline=10), [], [], keys(), always, 11)
    assert plan.abandon is True and plan.ensure == ["web"]


def test_scale_past_deadline_is_overdue_not_abandoned() -> None:
    desired = app(scale={"web": 2}, deadline=10, operation_id="op1")
    plan = plan_services(
        desired, [service(replicas=2)], [task(1), task(2)], keys(), lambda t: t.id == "t1", 11
    )
    assert plan.overdue is True and plan.abandon is False and plan.swapping is False
    assert plan.converged is False and plan.waiting == ["web: 1/2 ready"]


def test_late_without_operation_is_not_overdue() -> None:
    desired = app(scale={"web": 2}, deadline=10)
    plan = plan_services(desired, [service(replicas=2)], [task(1)], keys(), never, 11)
    assert plan.overdue is False and plan.abandon is False and plan.converged is False


def test_scale_before_deadline_is_not_overdue() -> None:
    desired = app(scale={"web": 2}, deadline=10, operation_id="op1")
    plan = plan_services(desired, [service(replicas=2)], [task(1)], keys(), never, 9)
    assert plan.overdue is False and plan.converged is False


def test_ready_past_deadline_is_not_overdue() -> None:
    desired = app(deadline=10, operation_id="op1")
    plan = plan_services(desired, [service()], [task(1)], keys(), always, 11)
    assert plan.overdue is False and plan.converged is True


# -- stopped / deleting -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["stopped", "deleting"])
def test_stopped_app_drops_every_service_and_removes_containers(state: str) -> None:
    services = [service(rev=OLD), service(rev=NEW), service("worker")]
    old_container = container(1)
    tasks = [task(2), task(3, service="worker")]
    plan = plan_services(app(state=state), services, [old_container, *tasks], keys(), always, 0)
    assert plan.drop_services == ["web@1.0", "web@2.0", "worker@2.0"]
    assert plan.remove == [old_container]  # tasks go with their services
    assert plan.ensure == [] and plan.converged is False and plan.swapping is False


def test_stopped_app_converged_only_when_nothing_is_left() -> None:
    stopped = app(state="stopped")
    assert plan_services(stopped, [], [], keys(), always, 0).converged is True
    assert plan_services(stopped, [service()], [], keys(), always, 0).converged is False
    lingering = plan_services(stopped, [], [task(1)], keys(), always, 0)
    assert lingering.converged is False and lingering.remove == [] and lingering.drop_services == []
    leftover = plan_services(stopped, [], [container(2)], keys(), always, 0)
    assert leftover.converged is False and [i.id for i in leftover.remove] == ["t2"]


def test_no_target_drops_everything() -> None:
    plan = plan_services(app(target=None, current=None), [service()], [task(1)], {}, always, 0)
    assert plan.drop_services == ["web@2.0"] and plan.converged is False and plan.ensure == []


# -- services removed from the spec, strays -----------------------------------------------------------


def test_service_removed_from_spec_dropped_once_target_ready() -> None:
    desired = app(the_spec=spec("web"))
    services = [service("web"), service("worker")]  # worker: target revision, no longer in the spec
    tasks = [task(1), task(2, service="worker")]
    waiting = plan_services(desired, services, tasks, keys(), never, 0)
    assert waiting.drop_services == [] and waiting.converged is False and waiting.ensure == []
    ready = plan_services(desired, services, tasks, keys(), always, 0)
    assert ready.drop_services == ["worker@2.0"] and ready.converged is False
    assert ready.ensure == [] and ready.waiting == []
    assert plan_services(desired, services[:1], tasks[:1], keys(), always, 0).converged is True


def test_service_removed_from_spec_in_a_rollout_goes_with_the_old_revision() -> None:
    desired = app(target=NEW, current=OLD, the_spec=spec("web"))
    services = [service("web", rev=OLD), service("worker", rev=OLD), service("web")]
    tasks = [task(1, rev=OLD), task(2, service="worker", rev=OLD), task(3)]
    waiting = plan_services(desired, services, tasks, keys(), lambda t: revision(t) == OLD, 0)
    assert waiting.drop_services == [] and waiting.swapping is True
    ready = plan_services(desired, services, tasks, keys(), always, 0)
    assert ready.drop_services == ["web@1.0", "worker@1.0"] and ready.swapping is False


# -- migration from containers (pre-Swarm) ------------------------------------------------------------


def test_pre_swarm_containers_removed_only_once_target_is_ready() -> None:
    desired = app(target=OLD, current=OLD, scale={"web": 2})
    old = [container(1), container(2)]
    # the containers run the same revision and are ready, yet they are not tasks: they do not count
    creating = plan_services(desired, [], old, keys(), always, 0)
    assert creating.ensure == ["web"] and creating.remove == [] and creating.converged is False
    services = [service(rev=OLD, replicas=2)]
    tasks = [task(3, rev=OLD), task(4, rev=OLD)]
    waiting = plan_services(desired, services, [*old, *tasks], keys(), lambda t: t.node is None, 0)
    assert waiting.remove == [] and waiting.waiting == ["web: 0/2 ready"] and waiting.converged is False
    ready = plan_services(desired, services, [*old, *tasks], keys(), always, 0)
    assert ready.remove == old and ready.drop_services == [] and ready.converged is False
    done = plan_services(desired, services, tasks, keys(), always, 0)
    assert done.converged is True and done.remove == []


def test_pre_swarm_containers_kept_during_a_rollout_until_target_ready() -> None:
    desired = app(target=NEW, current=OLD)
    old = container(1)
    waiting = plan_services(desired, [service()], [old, task(2)], keys(), never, 0)
    assert waiting.remove == [] and waiting.swapping is True
    ready = plan_services(desired, [service()], [old, task(2)], keys(), always, 0)
    assert ready.remove == [old] and ready.swapping is False and ready.converged is False


def test_tasks_are_never_removed_one_by_one() -> None:
    """The engine owns tasks: even stray ones go with their service, never through ``remove``."""
    desired = app()
    stray = task(9, service="gone", rev=OLD)
    plan = plan_services(desired, [service()], [task(1), stray], keys(), always, 0)
    assert plan.remove == [] and plan.converged is True


# -- suspected bugs -------------------------------------------------------------------------------


def test_finished_one_shot_task_counts_as_ready() -> None:
    the_spec = AppSpec(
        services={"web": svc_spec("web", expose=[80]), "migrate": svc_spec("migrate", restart="no")}
    )
    desired = app(target=NEW, current=OLD, the_spec=the_spec, scale={"web": 1, "migrate": 1})
    services = [service("web", rev=OLD), service("web"), service("migrate")]
    done = task(2, service="migrate", state=InstanceState.EXITED, exit_code=0)
    tasks = [task(1, rev=OLD), task(3), done]
    plan = plan_services(desired, services, tasks, keys("web", "migrate"), lambda t: t.service == "web", 0)
    assert plan.waiting == []
    assert plan.swapping is False and plan.drop_services == ["web@1.0"]


def test_host_port_service_rolls_stop_first() -> None:
    web = svc_spec("web", ports=[PortSpec(container=80, host=8080)])
    desired = app(target=NEW, current=OLD, the_spec=AppSpec(services={"web": web}))
    services = [service(rev=OLD), service(rev=NEW)]
    tasks = [task(1, rev=OLD), task(2, state=InstanceState.CREATED)]  # pending: port in use
    plan = plan_services(desired, services, tasks, keys(), lambda t: revision(t) == OLD, 0)
    assert plan.drop_services == ["web@1.0"]


def test_a_global_service_is_ready_when_each_of_its_tasks_is() -> None:
    the_spec = AppSpec(services={"web": svc_spec("web", expose=[80], mode="global")})
    desired = app(current=None, the_spec=the_spec, scale={"web": 1})
    tasks = [task(1, node="n1"), task(2, node="n2"), task(3, node="n3")]
    # Swarm reports no replica count for a global service: the service is not updated for it
    plan = plan_services(desired, [service(replicas=0)], tasks, keys(), lambda t: t.id != "t3", 0)
    assert plan.ensure == [] and plan.waiting == ["web: 2/3 ready"]
    plan = plan_services(desired, [service(replicas=0)], tasks, keys(), always, 0)
    assert plan.ensure == [] and plan.converged
