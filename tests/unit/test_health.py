"""Readiness verdicts: configured probes, unhealthy instances leaving the router, replacement back-off."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mypaas.domain import Instance, ProbeSpec
from mypaas.errors import InvalidSpec
from mypaas.monitor.health import REPLACE_AFTER_S, HealthTracker, check_probe, http_error, probe_error
from mypaas.spec.compose import parse_compose
from mypaas.states import InstanceState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def inst(n: int = 1) -> Instance:
    return Instance(
        id=f"i{n}",
        name=f"n{n}",
        app="a",
        service="web",
        release=1,
        state=InstanceState.STARTING,
        address=f"10.0.0.{n}:80",
        ip=f"10.0.0.{n}",
    )


def test_failing_instance_leaves_and_is_replaced_with_backoff() -> None:
    clock, alive = Clock(), {"up": True}
    tracker = HealthTracker(
        min_running_s=0, on_change=lambda: None, probe=lambda _a: alive["up"], clock=clock
    )
    i = inst()
    tracker.observe([i])
    tracker.check_all()
    assert tracker.ready(i) and not tracker.failed(i)
    alive["up"] = False
    tracker.check_all()
    assert tracker.ready(i)  # one failure is not enough (retries=2)
    tracker.check_all()
    assert not tracker.ready(i)  # out of the router now
    assert not tracker.failed(i)
    clock.now += REPLACE_AFTER_S
    assert tracker.failed(i)
    tracker.replaced(i)
    # its replacement fails too: this service's next replacement waits twice as long
    alive["up"] = True
    j = inst(2)
    tracker.observe([j])
    tracker.check_all()
    alive["up"] = False
    for _ in range(2):
        tracker.check_all()
    clock.now += REPLACE_AFTER_S
    assert not tracker.failed(j)
    clock.now += REPLACE_AFTER_S
    assert tracker.failed(j)


def test_a_routed_swarm_task_is_not_ready_before_its_address_is_known() -> None:
    """Swarm reports a task running before the port it published for it: ready then, it would end
    a rollout with no route to any instance (503 "no healthy instance")."""
    clock = Clock()
    tracker = HealthTracker(min_running_s=1, on_change=lambda: None, probe=lambda _a: True, clock=clock)
    waiting = inst().model_copy(update={"address": None, "routed": True})
    checked = waiting.model_copy(update={"state": InstanceState.HEALTHY})
    tracker.observe([waiting])
    clock.now += 60
    assert not tracker.ready(waiting) and not tracker.ready(checked)
    worker = waiting.model_copy(update={"routed": False})  # no routed port: running long enough is ready
    tracker.observe([worker])
    assert tracker.ready(worker)
    known = inst().model_copy(update={"routed": True})
    tracker.observe([known])
    tracker.check_all()
    assert tracker.ready(known)


def test_an_instance_just_started_is_probed_before_any_listing_shows_it() -> None:
    """The loop hands over the instance it made: its first verdict does not wait for a listing; the
    next listing keeps it (no second probe from zero) and one without it forgets it."""
    probed: list[str] = []
    changes: list[int] = []
    tracker = HealthTracker(
        min_running_s=0,
        on_change=lambda: changes.append(1),
        probe=lambda address: probed.append(address) or True,
        clock=Clock(),
    )
    i = inst()
    assert not tracker.ready(i)
    tracker.started(i, None)
    tracker.check_all()
    assert probed == ["10.0.0.1:80"] and tracker.ready(i) and changes == [1]
    tracker.observe([i])
    assert tracker.ready(i)
    tracker.observe([])
    assert not tracker.ready(i)
    exited = inst(2).model_copy(update={"state": InstanceState.EXITED})
    tracker.started(exited, None)
    assert tracker.unverified() == 0  # an instance that does not run is not probed


def test_a_started_instance_is_probed_with_its_service_probe() -> None:
    tracker = HealthTracker(min_running_s=0, on_change=lambda: None, probe=lambda _a: True, clock=Clock())
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    i = inst().model_copy(update={"address": "127.0.0.1:80", "ip": "127.0.0.1"})
    tracker.started(i, ProbeSpec(kind="tcp", port=closed, timeout_s=0.5))
    tracker.check_all()
    assert not tracker.ready(i)  # the service's own probe ran, not the default one (always True here)
    assert str(tracker.last_error(i)).startswith(f"TCP {closed} -> ")


def test_never_ready_instances_are_not_failed() -> None:
    clock = Clock()
    tracker = HealthTracker(min_running_s=0, on_change=lambda: None, probe=lambda _a: False, clock=clock)
    i = inst()
    tracker.observe([i])
    for _ in range(5):
        tracker.check_all()
    clock.now += 1000
    assert not tracker.failed(i)  # a rollout's deadline handles those, not replacement


@pytest.fixture
def server() -> tuple[str, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "127.0.0.1", httpd.server_address[1]
    httpd.shutdown()


def test_http_and_tcp_probes(server: tuple[str, int]) -> None:
    host, port = server
    address = f"{host}:{port}"
    assert check_probe(ProbeSpec(kind="http", path="/healthz", status=200), address)
    assert not check_probe(ProbeSpec(kind="http", path="/other", status=200), address)
    assert check_probe(ProbeSpec(kind="http", path="/other"), address)  # 404 < 500: alive
    assert check_probe(ProbeSpec(kind="tcp"), address)
    assert not check_probe(ProbeSpec(kind="tcp", port=1), address)


def test_a_failed_probe_says_why(server: tuple[str, int]) -> None:
    host, port = server
    address = f"{host}:{port}"
    assert probe_error(ProbeSpec(kind="http", path="/healthz", status=200), address) is None
    wrong = probe_error(ProbeSpec(kind="http", path="/other", status=200), address)
    assert wrong == "GET /other -> HTTP 404 (expected 200)"
    assert probe_error(ProbeSpec(kind="tcp", port=1), address) == "TCP 1 -> connection refused"
    assert http_error(f"{host}:1") == "GET / -> connection refused"


def test_the_tracker_keeps_the_last_probe_error(server: tuple[str, int]) -> None:
    host, port = server
    tracker = HealthTracker(min_running_s=0, on_change=lambda: None)  # the default HTTP probe
    up = inst(1).model_copy(update={"id": "up", "address": f"{host}:{port}"})
    down = inst(2).model_copy(update={"id": "down", "address": f"{host}:1"})
    spec = ProbeSpec(kind="http", path="/other", status=200)
    tracker.observe([up, down], lambda i: spec if i.id == "up" else None)
    assert tracker.last_error(down) is None  # no probe ran yet
    tracker.check_all()
    assert tracker.last_error(up) == "GET /other -> HTTP 404 (expected 200)"
    assert tracker.last_error(down) == "GET / -> connection refused"


def test_compose_probe_key() -> None:
    spec = parse_compose("services:\n  db:\n    image: x\n    x-mypaas-probe: {tcp: 5432, retries: 3}\n")
    assert spec.services["db"].probe == ProbeSpec(kind="tcp", port=5432, retries=3)
    with pytest.raises(InvalidSpec) as exc:
        parse_compose("services:\n  w:\n    image: x\n    x-mypaas-probe: {http: health}\n")
    assert exc.value.field == "services.w.x-mypaas-probe.http"
    with pytest.raises(InvalidSpec) as exc:
        parse_compose("services:\n  w:\n    image: x\n    x-mypaas-probe: {http: /h, tcp: 1}\n")
    assert exc.value.field == "services.w.x-mypaas-probe"
