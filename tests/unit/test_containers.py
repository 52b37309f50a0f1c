"""Reading what the engine reports (composer/containers.py): container summaries and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from mypaas.composer.containers import container_host_ports, container_instance, inspected_instance, unix_time
from mypaas.states import InstanceState


def summary(state: str, status: str, **labels: str) -> dict[str, object]:
    return {
        "Id": "c" * 64,
        "Names": ["/shop-web-v3-abc123"],
        "Labels": {"mypaas.app": "shop", "mypaas.service": "web", "mypaas.release": "3", **labels},
        "State": state,
        "Status": status,
        "Created": 1_700_000_000,
        "NetworkSettings": {
            "Networks": {"bridge": {"IPAddress": ""}, "mypaas_shop": {"IPAddress": "172.18.0.5"}}
        },
    }


def test_engine_timestamps_become_unix_time() -> None:
    assert (
        unix_time("2024-05-01T10:00:00.123456789Z")
        == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC).timestamp()
    )
    assert unix_time("2024-05-01T12:00:00+02:00") == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    assert unix_time(1_700_000_000) == 1_700_000_000.0
    assert unix_time("0001-01-01T00:00:00Z") == 0.0  # the engine's "never"
    assert unix_time(None) == 0.0 and unix_time("yesterday") == 0.0


def test_a_container_summary_becomes_an_instance() -> None:
    inst = container_instance(summary("running", "Up 3 seconds (healthy)", **{"mypaas.port": "8080"}))
    assert (inst.name, inst.app, inst.service, inst.release) == ("shop-web-v3-abc123", "shop", "web", 3)
    assert inst.state == InstanceState.HEALTHY and inst.has_healthcheck
    assert inst.address == "172.18.0.5:8080" and inst.created == 1_700_000_000.0
    plain = container_instance(summary("running", "Up 3 seconds"))
    assert plain.state == InstanceState.STARTING and not plain.has_healthcheck and plain.address is None
    gone = container_instance(summary("exited", "Exited (3) 2 seconds ago", **{"mypaas.port": "80"}))
    assert gone.state == InstanceState.EXITED and gone.exit_code == 3 and gone.address is None


def test_an_inspected_container_becomes_an_instance_with_its_start() -> None:
    info = {
        "Id": "d" * 64,
        "Name": "/shop-web-v3-def456",
        "Config": {"Labels": {"mypaas.app": "shop", "mypaas.service": "web", "mypaas.port": "80"}},
        "State": {"Status": "running", "Running": True, "StartedAt": "2024-05-01T10:00:00Z"},
        "Created": "2024-05-01T09:59:59Z",
        "RestartCount": 2,
        "NetworkSettings": {
            "Networks": {"other": {"IPAddress": "10.0.0.9"}, "mypaas_shop": {"IPAddress": "10.0.0.5"}}
        },
    }
    inst = inspected_instance(info, "mypaas_shop")
    assert inst.name == "shop-web-v3-def456" and inst.address == "10.0.0.5:80"
    assert inst.state == InstanceState.STARTING and inst.restarts == 2
    assert inst.started == datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()


def test_the_host_ports_a_container_holds() -> None:
    ports = [
        {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "0.0.0.0"},
        {"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp", "IP": "::"},
        {"PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"PrivatePort": 81, "Type": "tcp"},  # exposed only
    ]
    assert container_host_ports({"Ports": ports}) == {8080}
    assert container_host_ports({}) == set()
