"""The reconcile planner: start-first rollouts, scaling, replacement, stop-first for host ports."""

from __future__ import annotations

from mypaas.container_options import UpdatePolicy
from mypaas.domain import AppSpec, Instance, PortSpec, ServiceSpec
from mypaas.manager.reconcile.plan import DesiredApp, plan_app
from mypaas.states import InstanceState


def spec(**services: ServiceSpec) -> AppSpec:
    return AppSpec(
        services=services or {"web": ServiceSpec(name="web", image="x", image_id="sha256:1", expose=[80])}
    )


def inst(
    n: int,
    release: int = 1,
    service: str = "web",
    state: InstanceState = InstanceState.STARTING,
    **kw: object,
) -> Instance:
    return Instance(
        id=f"i{n}",
        name=f"n{n}",
        app="a",
        service=service,
        release=release,
        state=state,
        created=float(n),
        **kw,
    )  # type: ignore[arg-type]


def app(
    target: int = 1,
    current: int | None = 1,
    scale: int = 1,
    state: str = "running",
    deadline: float | None = None,
    the_spec: AppSpec | None = None,
) -> DesiredApp:
    return DesiredApp(
        name="a",
        state=state,
        spec=the_spec or spec(),
        config={},
        target=(target, 0),
        current=(current, 0) if current else None,
        scale={"web": scale},
        deadline=deadline,
    )


def always(_: Instance) -> bool:
    return True


def never(_: Instance) -> bool:
    return False


def test_creates_missing_replicas() -> None:
    plan = plan_app(app(scale=3), [inst(1)], always, 0)
    assert plan.create == [("web", 2)] and not plan.remove and not plan.converged


def test_steady_state_is_converged() -> None:
    plan = plan_app(app(), [inst(1)], always, 0)
    assert not plan.create and not plan.remove and plan.converged


def test_scale_down_removes_unready_and_newest_first() -> None:
    ready = {"i1", "i2"}
    plan = plan_app(app(scale=1), [inst(1), inst(2), inst(3)], lambda i: i.id in ready, 0)
    assert [i.id for i in plan.remove] == ["i3", "i2"]


def test_rollout_keeps_old_until_new_is_ready() -> None:
    old, new = inst(1, release=1), inst(2, release=2)
    waiting = plan_app(app(target=2, current=1), [old, new], lambda i: i.release == 1, 0)
    assert waiting.remove == [] and not waiting.converged and not waiting.abandon
    done = plan_app(app(target=2, current=1), [old, new], always, 0)
    assert done.remove == [old] and not done.converged  # converged once the old one is gone
    assert plan_app(app(target=2, current=1), [new], always, 0).converged


def test_rollout_past_deadline_is_abandoned() -> None:
    plan = plan_app(
        app(target=2, current=1, deadline=10), [inst(1), inst(2, release=2)], lambda i: i.release == 1, 11
    )
    assert plan.abandon and plan.remove == []


def test_exited_instance_is_replaced() -> None:
    dead = inst(1, state=InstanceState.EXITED, exit_code=137)
    plan = plan_app(app(), [dead], always, 0)
    assert plan.remove == [dead] and plan.create == [("web", 1)]


def test_stopped_app_removes_everything() -> None:
    plan = plan_app(app(state="stopped"), [inst(1), inst(2)], always, 0)
    assert len(plan.remove) == 2 and not plan.converged
    assert plan_app(app(state="stopped"), [], always, 0).converged


def test_host_port_rolls_stop_first() -> None:
    svc = ServiceSpec(name="web", image="x", image_id="sha256:1", ports=[PortSpec(container=80, host=8080)])
    the_spec = spec(web=svc)
    old = inst(1, release=1)
    plan = plan_app(app(target=2, current=1, the_spec=the_spec), [old], always, 0)
    assert plan.remove == [old] and plan.create == []
    plan = plan_app(app(target=2, current=1, the_spec=the_spec), [], always, 0)
    assert plan.create == [("web", 1)]


def test_depends_on_healthy_waits() -> None:
    db = ServiceSpec(name="db", image="x", image_id="sha256:2")
    web = ServiceSpec(
        name="web", image="x", image_id="sha256:1", expose=[80], depends_on={"db": "service_healthy"}
    )
    the_spec = spec(db=db, web=web)
    desired = DesiredApp(
        name="a",
        state="running",
        spec=the_spec,
        config={},
        target=(1, 0),
        current=None,
        scale={"db": 1, "web": 1},
    )
    plan = plan_app(desired, [], never, 0)
    assert plan.create == [("db", 1)]
    plan = plan_app(desired, [inst(1, service="db")], never, 0)
    assert plan.create == []
    plan = plan_app(desired, [inst(1, service="db")], always, 0)
    assert plan.create == [("web", 1)]


def test_strays_of_other_services_are_removed_when_steady() -> None:
    stray = inst(5, service="gone")
    plan = plan_app(app(), [inst(1), stray], always, 0)
    assert plan.remove == [stray]


def test_a_container_created_but_never_started_is_replaced() -> None:
    orphan = inst(1, state=InstanceState.CREATED)
    plan = plan_app(app(), [orphan], always, 0)
    assert plan.remove == [orphan] and plan.create == [("web", 1)]


def test_update_config_stop_first_rolls_stop_first() -> None:
    svc = ServiceSpec(
        name="web", image="x", image_id="sha256:1", expose=[80], update=UpdatePolicy(order="stop-first")
    )
    old = inst(1, release=1)
    plan = plan_app(app(target=2, current=1, the_spec=spec(web=svc)), [old], always, 0)
    assert plan.remove == [old] and plan.create == []


def test_a_global_service_runs_one_instance_on_the_docker_backend() -> None:
    svc = ServiceSpec(name="web", image="x", image_id="sha256:1", expose=[80], mode="global")
    plan = plan_app(app(scale=3, the_spec=spec(web=svc)), [], always, 0)
    assert plan.create == [("web", 1)]
