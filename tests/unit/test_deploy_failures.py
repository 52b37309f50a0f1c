"""Deploys that fail say why, and fast: crash loops given up early, a rollout's progress, the health
check's output and the probe's last error in the failure message, log lines de-duplicated."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from mypaas.composer.base import InstanceRequest
from mypaas.composer.fake import FakeBackend, FakeSwarmBackend
from mypaas.domain import HealthCheck, HealthResult, Instance, InstanceReport
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.reconcile.failures import (
    CRASH_LOOP_EXITS,
    UNRUNNABLE_RUNS,
    dedup_lines,
    health_text,
    unrunnable_text,
)
from mypaas.manager.releases import DeployRequest
from mypaas.manager.state.meta import BACKEND_KEY
from mypaas.manager.state.models import Meta
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from mypaas.spec.compose import single_image_spec
from mypaas.states import BackendMode, InstanceState

OCI = (  # as the engine (Docker 2x, runc) words a health check whose command is not in the image
    "OCI runtime exec failed: exec failed: unable to start container process: "
    'exec: "wget": executable file not found in $PATH: unknown'
)
NO_SH = (
    "OCI runtime exec failed: exec failed: unable to start container process: "
    'exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown'
)
WGET = 'exec: "wget": executable file not found in $PATH'
REFUSED = "wget: can't connect to remote host (127.0.0.1): Connection refused"


class World:
    """A platform over the fake backend whose probes never pass; its clock moved by the test."""

    def __init__(
        self,
        home: Path,
        *,
        probe_by_http: bool = False,
        swarm: bool = False,
        backend: FakeBackend | None = None,
    ) -> None:
        self.backend = backend or (FakeSwarmBackend() if swarm else FakeBackend())
        self.backend.add_image("web:1")
        self.backend.add_image("web:2")
        self.now = time.time()
        settings = Settings(
            home=home, deploy_timeout_s=30, min_running_s=0, drain_s=0, registry_enabled=False
        )
        given = Components(
            backend=self.backend,
            services=self.backend if isinstance(self.backend, FakeSwarmBackend) else None,
            router=FakeRouter(),
            probe=None if probe_by_http else (lambda _address: False),
            clock=lambda: self.now,
        )
        self.platform: Platform = build_platform(settings, given)
        if swarm:
            with self.platform.sessions.begin() as s:
                s.add(Meta(key=BACKEND_KEY, value=BackendMode.SWARM.value))

    def deploy(
        self,
        app: str,
        ref: str,
        *,
        restart: str = "unless-stopped",
        healthcheck: bool = False,
        replicas: int | None = None,
    ) -> str:
        spec = single_image_spec(ref, port=80)
        update: dict[str, object] = {"restart": restart, "replicas": replicas}
        if healthcheck:
            update["healthcheck"] = HealthCheck(test=["CMD", "wget", "-q", "-O-", "http://localhost/"])
        spec = spec.model_copy(update={"services": {"web": spec.services["web"].model_copy(update=update)}})
        req = DeployRequest(spec=spec, contexts={}, user="t", description="Deploy")
        return self.platform.releases.deploy(app, req).id

    def passes(self, n: int = 1) -> None:
        for _ in range(n):
            self.platform.reconciler.pass_once()
            self.platform.reconciler.join_removals()

    def only(self) -> str:
        [iid] = self.backend.instances
        return iid

    def restarting(self, iid: str, restarts: int, code: int = 3) -> None:
        """The engine restarting the container in place after its ``restarts + 1``-th exit."""
        inst = self.backend.instances[iid]
        update = {"state": InstanceState.RESTARTING, "exit_code": code, "restarts": restarts}
        self.backend.instances[iid] = inst.model_copy(update=update)

    def op(self, op_id: str) -> tuple[str, str, str]:
        op = self.platform.operations.get(op_id)
        return op.status, op.message, op.log

    def waiting(self, app: str) -> list[str]:
        return self.platform.reconciler.observed.waiting.get(app, [])


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# -- message building ------------------------------------------------------------------------------


def test_repeated_log_lines_are_shown_once_with_a_count() -> None:
    text = "starting\nboom\n" * 10 + "\nlast words\n"
    assert dedup_lines(text) == "starting (\u00d710)\nboom (\u00d710)\nlast words"


def test_the_health_check_text_is_its_last_failed_run() -> None:
    runs = (
        HealthResult(0, "ok\n"),
        HealthResult(-1, OCI + "\n"),
        HealthResult(127, "  sh: wget:\n not found "),
    )
    assert health_text(InstanceReport(health=runs)) == "health check failing (exit 127): sh: wget: not found"
    assert health_text(InstanceReport(health=(*runs, HealthResult(0, "")))) is None  # passing again
    assert (
        health_text(InstanceReport(health=(HealthResult(1, ""),)))
        == "health check failing (exit 1): no output"
    )
    assert health_text(InstanceReport()) is None


# -- crash loops -----------------------------------------------------------------------------------


def test_a_crash_loop_in_place_fails_the_rollout_at_once(world: World) -> None:
    op = world.deploy("shop", "web:1")
    world.passes()  # creates the instance
    iid = world.only()
    world.backend.logs_by_id[iid] = ["starting", "boom"] * 3
    world.restarting(iid, restarts=0)
    world.passes()
    assert world.waiting("shop") == ["web: 0/1 ready, restarted 1\u00d7 (exit 3)"]
    world.restarting(iid, restarts=1)
    world.passes()
    status, _, log = world.op(op)
    assert status == "running"
    assert log.splitlines() == [
        "web: 0/1 ready, restarted 1\u00d7 (exit 3)",
        "web: 0/1 ready, restarted 2\u00d7 (exit 3)",
    ]

    world.restarting(iid, restarts=CRASH_LOOP_EXITS - 1)  # well before the deadline (the clock stands)
    world.passes()

    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.splitlines() == [
        "v1 failed: web: exited 3 times (exit 3); nothing was running before, so the app is removed",
        "--- last log lines ---",
        f"[{world.backend.instances[iid].name}]",
        "starting (\u00d73)",
        "boom (\u00d73)",
    ]
    world.passes(2)
    assert world.backend.instances == {}  # the first deploy failed: nothing is left


def test_instances_replaced_as_they_exit_count_together(world: World) -> None:
    world.deploy("shop", "web:1")
    world.passes()
    world.backend.set_state(world.only(), InstanceState.HEALTHY)  # its health check passes
    world.passes()
    op = world.deploy("shop", "web:2", restart="no")  # v1 runs; v2 exits each time
    world.passes()
    for _ in range(CRASH_LOOP_EXITS):
        [new] = [i for i in world.backend.instances.values() if i.release == 2]
        world.backend.set_state(new.id, InstanceState.EXITED, exit_code=3)
        world.passes()  # counts the exit; the loop replaces the instance

    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.startswith("v2 failed: web: exited 3 times (exit 3); v1 keeps serving")
    world.passes(2)
    assert {i.release for i in world.backend.instances.values()} == {1}


def test_exits_of_different_codes_wait_for_the_deadline(world: World) -> None:
    op = world.deploy("shop", "web:1")
    world.passes()
    iid = world.only()
    for restarts, code in enumerate((3, 1, 3, 1)):
        world.restarting(iid, restarts, code)
        world.passes()
    assert world.op(op)[0] == "running"
    assert world.waiting("shop") == ["web: 0/1 ready, restarted 4\u00d7 (exit 1, exit 3)"]


def test_swarm_tasks_that_keep_failing_fail_the_rollout_at_once(tmp_path: Path) -> None:
    world = World(tmp_path, swarm=True)
    backend = world.backend
    assert isinstance(backend, FakeSwarmBackend)
    op = world.deploy("shop", "web:1")
    world.passes()  # creates the service; Swarm starts its task
    for n in range(CRASH_LOOP_EXITS):
        task = world.only()
        backend.fail_task(task, 3, logs=["boom"])  # Swarm keeps it as failed, starts another
        world.passes()
        if n == 0:
            assert world.waiting("shop") == ["web: 0/1 ready, restarted 1\u00d7 (exit 3)"]

    status, message, log = world.op(op)
    assert status == "failed"
    assert log.splitlines()[-1] == "web: 0/1 ready, restarted 3\u00d7 (exit 3)"
    assert message.splitlines() == [
        "v1 failed: web: exited 3 times (exit 3); nothing was running before, so the app is removed",
        "--- last log lines ---",
        f"[task {task[:12]}]",
        "boom",
    ]
    world.passes(2)
    assert backend.services == {} and backend.instances == {}


# -- health checks that cannot run -----------------------------------------------------------------


def test_the_reason_a_health_check_cannot_run_is_the_engines() -> None:
    def reason(*runs: HealthResult) -> str | None:
        return unrunnable_text(InstanceReport(health=runs))

    assert reason(*[HealthResult(-1, OCI + "\n")] * UNRUNNABLE_RUNS) == WGET
    assert (
        reason(*[HealthResult(-1, NO_SH)] * 3) == 'exec: "/bin/sh": stat /bin/sh: no such file or directory'
    )
    assert reason(*[HealthResult(126, "sh: /check: No such file or directory")] * 3) == (
        "sh: /check: No such file or directory"
    )
    assert reason(*[HealthResult(-1, OCI)] * (UNRUNNABLE_RUNS - 1)) is None  # not 3 runs yet
    assert reason(HealthResult(-1, OCI), HealthResult(1, REFUSED), HealthResult(-1, OCI)) is None
    assert reason(*[HealthResult(1, REFUSED)] * 3) is None  # it runs, and fails: it may pass yet
    assert reason(*[HealthResult(1, "no such file or directory")] * 3) is None  # its own output
    assert unrunnable_text(None) is None


def test_a_health_check_that_cannot_run_fails_the_rollout_at_once(world: World) -> None:
    op = world.deploy("shop", "web:1", healthcheck=True)
    world.passes()
    iid = world.only()
    world.backend.set_state(iid, InstanceState.STARTING)
    world.backend.logs_by_id[iid] = []  # the container printed nothing
    world.backend.reports[iid] = InstanceReport(health=(HealthResult(-1, OCI),) * (UNRUNNABLE_RUNS - 1))
    world.passes()
    assert world.op(op)[0] == "running"

    world.backend.reports[iid] = InstanceReport(health=(HealthResult(-1, OCI),) * UNRUNNABLE_RUNS)
    world.passes()  # well before the deadline (the clock stands)

    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.splitlines() == [
        f"v1 failed: web: health check cannot run: {WGET}; nothing was running before, so the app is removed"
    ]
    world.passes(2)
    assert world.backend.instances == {}


def test_a_health_check_that_cannot_run_on_some_instances_only_waits(world: World) -> None:
    op = world.deploy("shop", "web:1", healthcheck=True, replicas=2)
    world.passes()
    first, second = world.backend.instances
    for iid in (first, second):
        world.backend.set_state(iid, InstanceState.STARTING)
    world.backend.reports[first] = InstanceReport(health=(HealthResult(-1, OCI),) * UNRUNNABLE_RUNS)
    world.backend.reports[second] = InstanceReport(health=(HealthResult(1, REFUSED),) * UNRUNNABLE_RUNS)
    world.passes()
    assert world.op(op)[0] == "running"  # the other instance's check runs: it may pass yet

    world.backend.reports[second] = InstanceReport(health=(HealthResult(-1, NO_SH),) * UNRUNNABLE_RUNS)
    world.passes()
    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.startswith("v1 failed: web: health check cannot run: exec: ")


# -- the failure message at the deadline -----------------------------------------------------------


def test_a_rollout_past_its_deadline_shows_the_health_check_output(world: World) -> None:
    op = world.deploy("shop", "web:1")
    world.passes()
    iid = world.only()
    world.backend.set_state(iid, InstanceState.UNHEALTHY)
    world.backend.reports[iid] = InstanceReport(health=(HealthResult(1, REFUSED),) * 5)  # it runs
    world.backend.logs_by_id[iid] = []  # the container printed nothing
    world.passes()
    assert world.op(op)[0] == "running"  # a check that runs may pass yet: it waits for the deadline
    world.now += 31
    world.passes()

    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.splitlines() == [
        "v1 did not become healthy in time; nothing was running before, so the app is removed",
        f"web: health check failing (exit 1): {REFUSED}",
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RefusingBackend(FakeBackend):
    """Its instances are reached at a loopback port nothing listens on (the monitor's real HTTP probe
    is refused there), from the moment they are made."""

    def create_instance(self, req: InstanceRequest) -> Instance:
        made = super().create_instance(req)
        refused = made.model_copy(update={"address": f"127.0.0.1:{closed_port()}"})
        self.instances[made.id] = refused
        return refused


def test_a_rollout_past_its_deadline_shows_the_probe_error(tmp_path: Path) -> None:
    world = World(tmp_path, probe_by_http=True, backend=RefusingBackend())
    op = world.deploy("shop", "web:1")
    world.passes()  # the monitor starts probing the instance it made
    world.platform.reconciler.tracker.check_all()
    world.now += 31
    world.passes()

    status, message, _ = world.op(op)
    assert status == "failed"
    assert message.splitlines()[1:] == ["web: GET / -> connection refused"]
