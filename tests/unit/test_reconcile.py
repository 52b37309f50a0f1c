"""The reconcile loop on the fake backend and a real SQLite store: rollouts, failures, restarts."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mypaas.composer.base import ImageInfo
from mypaas.composer.fake import FakeBackend
from mypaas.errors import BackendError, InvalidSpec, NotFound
from mypaas.manager.platform import Components, build_platform
from mypaas.manager.releases import DeployRequest
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from mypaas.spec.compose import single_image_spec
from mypaas.states import InstanceState


class World:
    def __init__(self, home: Path, backend: FakeBackend | None = None) -> None:
        self.backend = backend or FakeBackend()
        self.router = FakeRouter()
        self.healthy: set[str] = set()  # addresses whose HTTP probe succeeds
        settings = Settings(
            home=home, deploy_timeout_s=30, min_running_s=0, drain_s=0, registry_enabled=False
        )
        self.now = time.time()
        given = Components(backend=self.backend, router=self.router, probe=self.probe, clock=lambda: self.now)
        self.platform = build_platform(settings, given)

    def probe(self, address: str) -> bool:
        return address in self.healthy

    def settle(self, passes: int = 6) -> None:
        """Run passes, marking every instance healthy, as probes would."""
        rec = self.platform.reconciler
        for _ in range(passes):
            rec.pass_once()
            for inst in self.backend.instances.values():
                if inst.address and inst.state == InstanceState.STARTING:
                    self.healthy.add(inst.address)
            self.probe_all()
            rec.join_removals()

    def probe_all(self) -> None:
        self.platform.reconciler.tracker.check_all()

    def deploy(self, app: str, ref: str) -> str:
        req = DeployRequest(spec=single_image_spec(ref, port=80), contexts={}, user="t", description="Deploy")
        return self.platform.releases.deploy(app, req).id

    def op(self, op_id: str) -> str:
        return self.platform.operations.get(op_id).status


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    w.backend.add_image("web:1")
    w.backend.add_image("web:2")
    yield w


def test_deploy_converges_and_routes(world: World) -> None:
    op = world.deploy("shop", "web:1")
    world.settle()
    assert world.op(op) == "succeeded"
    [inst] = world.backend.instances.values()
    assert world.router.upstreams("shop") == (inst.address,)
    assert next(r.hosts for r in world.router.routes if r.app == "shop") == ("shop.localhost",)


def test_a_deploy_succeeds_only_once_the_router_serves_it(world: World) -> None:
    op = world.deploy("shop", "web:1")
    rec = world.platform.reconciler
    rec.pass_once()  # creates the instance
    world.healthy.add(next(iter(world.backend.instances.values())).address or "")
    rec.pass_once()  # the probes see it
    world.probe_all()  # ready now: the next pass completes the rollout, if it can route it
    world.router.stop()
    with pytest.raises(BackendError):
        rec.pass_once()  # the router refuses the routes
    assert world.op(op) == "running"
    world.router.ensure_running()
    rec.pass_once()
    assert world.op(op) == "succeeded"
    assert world.router.upstreams("shop") != ()


def test_rolling_deploy_replaces_old_release(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    old = set(world.backend.instances)
    op = world.deploy("shop", "web:2")
    world.settle()
    assert world.op(op) == "succeeded"
    assert not old & set(world.backend.instances)
    assert {i.release for i in world.backend.instances.values()} == {2}
    statuses = [r["status"] for r in world.platform.releases.releases("shop")]
    assert statuses == ["active", "superseded"]


def test_unhealthy_release_is_abandoned(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    op = world.deploy("shop", "web:2")
    rec = world.platform.reconciler
    rec.pass_once()  # creates the v2 instance, which never passes its probe
    world.now += 31
    rec.pass_once()
    assert world.op(op) == "failed"
    assert "v1 keeps serving" in world.platform.operations.get(op).message
    world.settle()
    assert {i.release for i in world.backend.instances.values()} == {1}
    assert [r["status"] for r in world.platform.releases.releases("shop")] == ["failed", "active"]


def test_deadlines_run_on_the_loops_clock_not_the_wall_clock(world: World) -> None:
    # The loop compares deadlines with its own clock; a deadline set from the wall clock was never
    # reached here (a machine slow enough to take a second between World() and the deploy did the same).
    world.now -= 3600
    world.deploy("shop", "web:1")
    world.settle()
    op = world.deploy("shop", "web:2")
    rec = world.platform.reconciler
    rec.pass_once()
    world.now += 31
    rec.pass_once()
    assert world.op(op) == "failed"
    assert "v1 keeps serving" in world.platform.operations.get(op).message


def test_a_new_manager_adopts_running_instances(world: World, tmp_path: Path) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    before = set(world.backend.instances)
    again = World(tmp_path, backend=world.backend)  # same state store, same engine
    again.healthy = set(world.healthy)
    again.settle()
    assert set(world.backend.instances) == before  # nothing recreated
    assert again.router.upstreams("shop")


def test_crashed_instance_is_replaced(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    [iid] = world.backend.instances
    world.backend.set_state(iid, InstanceState.EXITED, exit_code=137)
    world.settle()
    [new] = world.backend.instances
    assert new != iid and world.router.upstreams("shop")


def test_delete_removes_everything(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    op = world.platform.apps.delete("shop", "t").id
    world.settle()
    assert world.op(op) == "succeeded"
    assert not world.backend.instances and not world.backend.networks
    with pytest.raises(NotFound):
        world.platform.apps.get("shop")


def test_bad_input_leaves_nothing(world: World) -> None:
    with pytest.raises(InvalidSpec) as exc:
        world.deploy("Bad_Name", "web:1")
    assert exc.value.field == "app"
    with pytest.raises(InvalidSpec) as exc:
        world.deploy("shop", "missing:1")
    assert exc.value.field == "services.web.image"
    assert world.platform.apps.summaries() == []


def test_stop_during_a_rollout_does_not_promote_the_release(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    op = world.deploy("shop", "web:2")
    world.platform.reconciler.pass_once()  # v2 instance created, not ready yet
    world.platform.apps.set_state("shop", "stop", "t")
    world.settle()
    assert world.op(op) == "failed"  # superseded by the stop
    statuses = {r["version"]: r["status"] for r in world.platform.releases.releases("shop")}
    assert statuses == {1: "active", 2: "pending"}  # v2 rolls out at the next start
    assert world.platform.apps.get("shop")["release"] == 1


def test_a_scale_that_never_gets_ready_fails_its_operation(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    op = world.platform.apps.scale("shop", {"web": 2}, "t").id
    rec = world.platform.reconciler
    world.healthy.clear()  # the new replica never answers
    rec.pass_once()
    world.now += 31
    rec.pass_once()
    assert world.op(op) == "failed"
    assert "not ready in time" in world.platform.operations.get(op).message


def test_rollback_skips_releases_that_never_served(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    world.deploy("shop", "web:2")  # replaced before it served
    world.deploy("shop", "web:1")
    world.settle()
    op = world.platform.releases.rollback("shop", None, "t")
    assert op.release == 4
    releases = {r["version"]: r for r in world.platform.releases.releases("shop")}
    assert releases[2]["status"] == "cancelled"
    assert releases[4]["description"] == "Rollback to v1"


class GatedBuilds(FakeBackend):
    """A fake engine whose builds wait until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def build_image(self, context: bytes, **kw: Any) -> ImageInfo:
        self.gate.wait(5)
        return super().build_image(context, **kw)


def _context() -> bytes:
    """A gzipped tar holding a Dockerfile (build contexts are checked as archives)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("Dockerfile"), io.BytesIO(b""))
    return out.getvalue()


def test_a_later_deploy_wins_over_a_slow_build(tmp_path: Path) -> None:
    gated = GatedBuilds()
    world = World(tmp_path, backend=gated)
    world.backend.add_image("web:2")
    from mypaas.domain import AppSpec, BuildSpec, ServiceSpec

    spec = AppSpec(services={"web": ServiceSpec(name="web", build=BuildSpec(context="app"), expose=[80])})
    build_op = world.platform.releases.deploy(
        "shop", DeployRequest(spec=spec, contexts={"app": _context()}, user="t", description="build")
    )
    image_op = world.deploy("shop", "web:2")
    gated.gate.set()
    world.settle()
    assert world.op(image_op) == "succeeded"
    assert world.op(build_op.id) == "failed"
    assert [r["description"] for r in world.platform.releases.releases("shop")] == ["Deploy"]


def test_domains_under_the_base_domain_are_refused(world: World) -> None:
    world.deploy("shop", "web:1")
    with pytest.raises(InvalidSpec) as exc:
        world.platform.apps.add_domain("shop", "other.localhost")
    assert exc.value.field == "domain"
