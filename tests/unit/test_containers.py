"""Reading what the engine reports (composer/containers.py): container summaries and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from mypaas.composer.containers import (
    container_host_ports,
    container_instance,
    container_report,
    inspected_instance,
    unix_time,
)
from mypaas.domain import HealthResult
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


def test_a_container_restarting_in_place_reports_its_exits() -> None:
    inst = container_instance(summary("restarting", "Restarting (3) 2 seconds ago"))
    assert (inst.state, inst.exit_code) == (InstanceState.RESTARTING, 3)
    restarting = {"Status": "restarting", "Running": True, "Restarting": True, "ExitCode": 3}
    started = {"StartedAt": "2026-12-05T00:27:58.113866767Z"}
    report = container_report({"State": {**restarting, **started}, "RestartCount": 5})
    assert (report.exits, report.exit_code) == (6, 3)
    running = container_report({"State": {"Running": True, "ExitCode": 3, **started}, "RestartCount": 5})
    assert (running.exits, running.exit_code) == (5, None)  # the engine reset it when it started again
    fresh = container_report({"State": {"Running": True, "ExitCode": 0, **started}, "RestartCount": 0})
    assert (fresh.exits, fresh.exit_code) == (0, None)
    exited = container_report({"State": {"Running": False, "ExitCode": 1, **started}, "RestartCount": 0})
    assert (exited.exits, exited.exit_code) == (1, 1)


def test_a_container_report_carries_its_health_check_runs() -> None:
    log = [{"ExitCode": -1, "Output": "exec: wget: not found"}, {"ExitCode": 0, "Output": "ok\n"}]
    state = {
        "Running": True,
        "StartedAt": "2026-12-05T00:27:58Z",
        "Health": {"Status": "healthy", "Log": log},
    }
    report = container_report({"State": state})
    assert report.health == (HealthResult(-1, "exec: wget: not found"), HealthResult(0, "ok\n"))
