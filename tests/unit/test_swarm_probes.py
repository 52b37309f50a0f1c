"""Issue 13, slice B: a probe on a port of its own on a Swarm task checks the container, not its node.

A Swarm task is routed at its node's address and the port Swarm published for it; a TCP probe on another
port (``x-mypaas-probe: {tcp: 22}``) used to connect to the node at that port, so the host's sshd made any
app "ready" and probes could scan the hosts' ports. Here the node (127.0.0.1) listens on the probed port,
the task's own address (127.0.0.2) does not: the task is not ready."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from mypaas.composer.base import LABEL_APP, LABEL_PORT, LABEL_SERVICE
from mypaas.composer.swarm_tasks import task_instance
from mypaas.domain import Instance, ProbeSpec
from mypaas.monitor.health import HealthTracker, probe_address


@pytest.fixture
def node_port() -> Iterator[int]:
    """A port the node (127.0.0.1) listens on, as a host's sshd does."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def task(ip: str, published: int) -> Instance:
    """A running task of a routed service, as the engine lists it, through the swarm composer."""
    raw: dict[str, Any] = {
        "ID": "t" * 25,
        "NodeID": "node1",
        "Slot": 1,
        "Status": {
            "State": "running",
            "Timestamp": "2026-12-05T06:00:00Z",
            "PortStatus": {"Ports": [{"TargetPort": 80, "PublishedPort": published}]},
        },
        "Spec": {"ContainerSpec": {"Labels": {LABEL_APP: "a", LABEL_SERVICE: "db", LABEL_PORT: "80"}}},
        "NetworksAttachments": [{"Addresses": [f"{ip}/24"]}],
    }
    found = task_instance(raw, "a_db", {"node1": ("127.0.0.1", "host1")})
    assert found is not None
    return found


def test_a_tcp_probe_on_a_swarm_task_checks_the_task_not_its_node(node_port: int) -> None:
    inst = task("127.0.0.2", published=30080)
    spec = ProbeSpec(kind="tcp", port=node_port)
    assert inst.address == "127.0.0.1:30080" and inst.node == "node1"
    assert probe_address(inst, spec) == f"127.0.0.2:{node_port}"

    tracker = HealthTracker(min_running_s=0, on_change=lambda: None)
    tracker.observe([inst], lambda _i: spec)
    tracker.check_all()
    assert not tracker.ready(inst)
    assert tracker.last_error(inst) == f"TCP {node_port} -> connection refused"

    http = ProbeSpec(kind="http", path="/", port=node_port)  # the same hole, over HTTP
    assert probe_address(inst, http) == f"127.0.0.2:{node_port}"


def test_a_task_that_listens_on_the_probed_port_is_ready(node_port: int) -> None:
    inst = task("127.0.0.1", published=30080)  # the container's own address does listen
    tracker = HealthTracker(min_running_s=0, on_change=lambda: None)
    tracker.observe([inst], lambda _i: ProbeSpec(kind="tcp", port=node_port))
    tracker.check_all()
    assert tracker.ready(inst)


def test_the_routed_port_and_the_docker_backend_keep_their_address() -> None:
    inst = task("127.0.0.2", published=30080)
    assert probe_address(inst, ProbeSpec(kind="tcp")) == "127.0.0.1:30080"  # the routed port: published
    assert probe_address(inst, None) == "127.0.0.1:30080"
    local = inst.model_copy(update={"node": None, "address": "172.17.0.5:80", "ip": "172.17.0.5"})
    assert probe_address(local, ProbeSpec(kind="tcp", port=5432)) == "172.17.0.5:80"
    without_ip = inst.model_copy(update={"ip": None})
    assert probe_address(without_ip, ProbeSpec(kind="tcp", port=5432)) is None
