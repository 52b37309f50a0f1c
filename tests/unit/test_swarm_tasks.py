"""Reading what Swarm reports (composer/swarm_tasks.py): tasks, services and nodes, as the engine's
API gives them."""

from __future__ import annotations

from typing import Any

from mypaas.composer.swarm_tasks import (
    node_table,
    service_host_ports,
    service_state,
    task_instance,
    task_report,
)
from mypaas.states import InstanceState

NODES = node_table(
    [
        {"ID": "n1", "Status": {"Addr": "10.0.0.11"}, "Description": {"Hostname": "h1"}},
        # a manager reports 0.0.0.0 in its status: its address is the manager one, without the port
        {
            "ID": "n2",
            "Status": {"Addr": "0.0.0.0"},
            "ManagerStatus": {"Addr": "10.0.0.12:2377"},
            "Description": {},
        },
    ]
)


def task(state: str, *, node: str = "n1", healthcheck: bool = False, **status: Any) -> dict[str, Any]:
    labels = {"mypaas.app": "shop", "mypaas.service": "web", "mypaas.release": "3", "mypaas.port": "80"}
    return {
        "ID": "t0123456789",
        "Slot": 2,
        "NodeID": node,
        "CreatedAt": "2024-05-01T10:00:00.5Z",
        "Spec": {
            "ContainerSpec": {
                "Labels": labels,
                "Healthcheck": {"Test": ["CMD", "true"]} if healthcheck else {},
            }
        },
        "Status": {"State": state, "Timestamp": "2024-05-01T10:00:01Z", **status},
        "NetworksAttachments": [{"Addresses": ["10.1.0.7/24"]}],
    }


def test_nodes_are_known_by_address_and_host_name() -> None:
    assert NODES == {"n1": ("10.0.0.11", "h1"), "n2": ("10.0.0.12", "n2")}


def test_a_running_task_is_reached_at_its_node_and_published_port() -> None:
    ports = {
        "Ports": [{"TargetPort": 80, "PublishedPort": 30001}, {"TargetPort": 80, "PublishedPort": 30002}]
    }
    inst = task_instance(task("running", PortStatus=ports), "shop_web_3_0", NODES)
    assert inst is not None
    assert inst.name == "shop_web_3_0.2.t01234" and (inst.app, inst.service, inst.release) == (
        "shop",
        "web",
        3,
    )
    assert inst.address == "10.0.0.11:30001" and inst.ip == "10.1.0.7"
    assert inst.state == InstanceState.STARTING and inst.node == "n1" and inst.host == "h1"
    assert inst.status_text == "running on h1"
    checked = task_instance(task("running", healthcheck=True, PortStatus=ports), "s", NODES)
    assert checked is not None and checked.state == InstanceState.HEALTHY
    assert inst.routed and checked.routed


def test_a_running_task_without_its_published_port_yet_has_no_address() -> None:
    inst = task_instance(task("running"), "shop_web_3_0", NODES)  # Swarm has not reported the port
    assert inst is not None and inst.address is None and inst.routed


def test_task_states_map_to_instance_states() -> None:
    pending = task_instance(task("pending"), "s", NODES)
    assert pending is not None and pending.state == InstanceState.CREATED and pending.address is None
    preparing = task_instance(task("preparing"), "s", NODES)
    assert preparing is not None and preparing.state == InstanceState.STARTING
    done = task_instance(task("complete", ContainerStatus={"ExitCode": 0}), "s", NODES)
    assert done is not None and done.state == InstanceState.EXITED and done.exit_code == 0
    assert task_instance(task("failed"), "s", NODES) is None
    assert task_instance(task("shutdown"), "s", NODES) is None


def test_a_service_reports_its_revision_replicas_and_rollout() -> None:
    row = {
        "ID": "s1",
        "Spec": {
            "Name": "shop_web_3_1",
            "Labels": {
                "mypaas.app": "shop",
                "mypaas.service": "web",
                "mypaas.release": "3",
                "mypaas.generation": "1",
                "mypaas.spec": "abc",
            },
            "Mode": {"Replicated": {"Replicas": 4}},
        },
        "PreviousSpec": {"Labels": {"mypaas.release": "3", "mypaas.generation": "0"}},
        "UpdateStatus": {"State": "rollback_completed", "Message": "update rolled back"},
    }
    state = service_state(row)
    assert (state.id, state.name, state.app, state.service) == ("s1", "shop_web_3_1", "shop", "web")
    assert (state.release, state.generation, state.replicas, state.spec_key) == (3, 1, 4, "abc")
    assert state.update_state == "rollback_completed" and state.update_message == "update rolled back"
    assert state.previous == (3, 0)
    fresh = service_state({"ID": "s2", "Spec": {"Name": "x"}})
    assert fresh.update_state is None and fresh.previous is None and fresh.replicas == 0


def test_the_host_ports_a_service_publishes() -> None:
    row = {
        "Spec": {
            "EndpointSpec": {
                "Ports": [
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 9090, "PublishMode": "host"},
                    {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"},  # any port, per host
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"},
                ]
            }
        },
        "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 30443}]},
    }
    assert service_host_ports(row) == {9090, 30443}
    assert service_host_ports({"Spec": {}}) == set()


def test_a_failed_task_reports_the_engine_s_word() -> None:
    status = {"State": "failed", "Err": "task: non-zero exit (3)", "ContainerStatus": {"ExitCode": 3}}
    report = task_report({"ID": "t1", "Status": status})
    assert (report.exits, report.exit_code, report.message) == (1, 3, "failed: task: non-zero exit (3)")
    running = task_report({"ID": "t2", "Status": {"State": "running", "Message": "started"}})
    assert (running.exits, running.exit_code, running.message) == (0, None, "")
    status = {
        "State": "pending",
        "Message": "pending task scheduling",
        "Err": "no suitable node (1 node ...)",
    }
    pending = task_report({"ID": "t3", "Status": status})
    assert pending.message == "pending: no suitable node (1 node ...)"
