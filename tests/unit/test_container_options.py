"""Unit tests for the container options as the engine takes them (composer/options.py): nothing is added
for a service that sets none (an upgrade rolls nothing out), and each option lands where the engine
reads it, on the docker backend and in a Swarm service spec."""

from __future__ import annotations

import pytest

from mypaas.composer.base import ServiceRequest
from mypaas.composer.options import (
    container_options,
    endpoint,
    exposed_ports,
    host_options,
    log_options,
    platform_constraints,
    port_bindings,
    restart_policy,
)
from mypaas.composer.swarm_spec import Rollout, published_ports, service_spec
from mypaas.container_options import (
    LogSpec,
    NetworkOptions,
    RestartPolicy,
    Ulimit,
    UpdatePolicy,
    check_platform,
    check_swarm,
)
from mypaas.domain import PortSpec, ServiceSpec
from mypaas.errors import InvalidSpec

PLAIN = ServiceSpec(name="web", image="a", image_id="sha256:" + "a" * 64, expose=[80])
FULL = PLAIN.model_copy(
    update={
        "aliases": ["shop-web"],
        "network_options": {"": NetworkOptions(aliases=["www"])},
        "hostname": "www",
        "user": "1000",
        "working_dir": "/srv",
        "init": False,
        "stop_signal": "SIGINT",
        "stop_grace_s": 30.0,
        "ulimits": [Ulimit(name="nofile", soft=1024, hard=2048)],
        "shm_size": 1 << 26,
        "extra_hosts": ["db:10.0.0.5"],
        "logging": LogSpec(driver="local", options={"max-size": "5m"}),
        "tty": True,
        "stdin_open": True,
        "sysctls": {"net.core.somaxconn": "1024"},
        "cap_add": ["NET_BIND_SERVICE"],
        "cap_drop": ["ALL"],
        "restart": "on-failure",
        "restart_policy": RestartPolicy(max_attempts=3, delay_s=2.0),
        "update": UpdatePolicy(order="stop-first", parallelism=2, delay_s=5.0, failure_action="pause"),
        "service_labels": {"team": "shop"},
    }
)


def request(svc: ServiceSpec) -> ServiceRequest:
    return ServiceRequest(
        platform="p1",
        app="shop",
        service=svc,
        release=1,
        generation=0,
        replicas=2,
        image="shop/web:1",
        environment={},
    )


def test_a_service_without_options_adds_nothing() -> None:
    assert container_options(PLAIN) == {} and host_options(PLAIN) == {}
    assert restart_policy(PLAIN) == {"Name": "unless-stopped"}
    assert log_options(PLAIN) == ("json-file", {"max-size": "10m", "max-file": "3"})
    assert endpoint(PLAIN, "") == {"aliases": ["web"]}


def test_docker_create_and_host_options() -> None:
    assert container_options(FULL) == {
        "hostname": "www",
        "user": "1000",
        "working_dir": "/srv",
        "stop_signal": "SIGINT",
        "stop_timeout": 30,
        "stdin_open": True,
        "tty": True,
    }
    host = host_options(FULL)
    assert host["cap_add"] == ["CAP_NET_BIND_SERVICE"] and host["cap_drop"] == ["ALL"]
    assert host["ulimits"][0]["Name"] == "nofile" and host["ulimits"][0]["Hard"] == 2048
    assert host["shm_size"] == 1 << 26 and host["extra_hosts"] == ["db:10.0.0.5"]
    assert restart_policy(FULL) == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert log_options(FULL) == ("local", {"max-size": "5m", "max-file": "3"})
    assert endpoint(FULL, "") == {"aliases": ["web", "shop-web", "www"]}
    assert endpoint(FULL, "back") == {"aliases": ["web", "shop-web"]}


def test_port_bindings_with_addresses_and_udp() -> None:
    svc = PLAIN.model_copy(
        update={
            "ports": [
                PortSpec(container=80, host=8080, host_ip="127.0.0.1"),
                PortSpec(container=53, host=53, protocol="udp"),
                PortSpec(container=80, host=8081, host_ip="::1"),
            ]
        }
    )
    assert port_bindings(svc) == {"80/tcp": [("127.0.0.1", 8080), ("::1", 8081)], "53/udp": 53}
    assert published_ports(svc) == [
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"},  # the routed port, not 8080
    ]


def test_the_swarm_service_spec_carries_the_options() -> None:
    body = service_spec(request(FULL), Rollout(ipvs=False), [], replicas=2, key="k")
    spec = body["task_template"]["ContainerSpec"]
    assert (spec["Hostname"], spec["User"], spec["Dir"], spec["StopSignal"]) == (
        "www",
        "1000",
        "/srv",
        "SIGINT",
    )
    assert spec["StopGracePeriod"] == 30 * 10**9 and spec["Init"] is False and spec["TTY"] is True
    assert spec["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert spec["Hosts"] == ["10.0.0.5 db"] and spec["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert spec["CapabilityAdd"] == ["CAP_NET_BIND_SERVICE"] and spec["CapabilityDrop"] == ["ALL"]
    assert any(m["Target"] == "/dev/shm" and m["Type"] == "tmpfs" for m in spec["Mounts"])
    task = body["task_template"]
    assert task["RestartPolicy"]["Condition"] == "on-failure" and task["RestartPolicy"]["MaxAttempts"] == 3
    assert task["LogDriver"] == {"Name": "local", "Options": {"max-size": "5m", "max-file": "3"}}
    assert task["Networks"][0]["Aliases"] == ["web", "shop-web", "www"]
    update = body["update_config"]
    assert (update["Order"], update["Parallelism"], update["FailureAction"]) == ("stop-first", 2, "pause")
    assert update["Delay"] == 5 * 10**9
    assert body["labels"]["team"] == "shop"


def test_a_global_service() -> None:
    svc = PLAIN.model_copy(update={"mode": "global"})
    assert service_spec(request(svc), Rollout(ipvs=False), [], replicas=2, key="")["mode"] == {"global": {}}


def test_what_swarm_cannot_run_is_refused() -> None:
    with pytest.raises(InvalidSpec) as info:
        check_swarm(PLAIN.model_copy(update={"network_mode": "none"}), "services.web")
    assert "network_mode none" in info.value.message
    check_swarm(FULL, "services.web")


def test_platform() -> None:
    svc = PLAIN.model_copy(update={"platform": "linux/amd64"})
    assert platform_constraints(svc) == ["node.platform.os==linux", "node.platform.arch==x86_64"]
    check_platform(svc, "linux/amd64")
    check_platform(svc, "")  # unknown: accepted
    with pytest.raises(InvalidSpec) as info:
        check_platform(svc, "linux/arm64/v8")
    assert info.value.field == "services.web.platform"


def test_exposed_ports_keep_tcp_as_it_was_and_pair_udp() -> None:
    svc = PLAIN.model_copy(
        update={"ports": [PortSpec(container=80, host=8080), PortSpec(container=53, host=53, protocol="udp")]}
    )
    assert exposed_ports(svc) == ["80/tcp", (53, "udp")]
    assert exposed_ports(PLAIN) is None
