"""The Swarm service spec (composer/swarm_spec.py) and its key. A running service whose key differs from
the one its request gives is rolled out again: the keys of requests below are pinned to what running
platforms have, so that an upgrade of MyPaas rolls out nothing."""

from __future__ import annotations

import dataclasses

import pytest

from mypaas.composer.base import ServiceRequest
from mypaas.composer.engine import service_name
from mypaas.composer.swarm_spec import Rollout, published_ports, service_key, service_spec
from mypaas.domain import HealthCheck, PortSpec, ServiceSpec, VolumeMount

FULL = ServiceSpec(
    name="web",
    image="shop/web",
    image_id="sha256:" + "a" * 64,
    command=["serve"],
    entrypoint=["/init"],
    environment={"A": "1"},
    ports=[PortSpec(container=8080, host=9090)],
    expose=[81],
    volumes=[
        VolumeMount(source="data", target="/data"),
        VolumeMount(source="/srv", target="/srv", bind=True, read_only=True),
    ],
    healthcheck=HealthCheck(test=["CMD", "true"]),
    cpus=0.5,
    memory=1 << 28,
    reserve_cpus=0.25,
    reserve_memory=1 << 27,
    restart="on-failure",
    labels={"x": "y"},
    networks=["front", "back"],
)
PLAIN = ServiceSpec(name="api", image="shop/api", image_id="sha256:" + "b" * 64, expose=[80])


def full_request() -> ServiceRequest:
    return ServiceRequest(
        platform="p1",
        app="shop",
        service=FULL,
        release=3,
        generation=1,
        replicas=2,
        image="reg:5000/shop/web@sha256:" + "a" * 64,
        environment={"PORT": "8080", "B": "2"},
        networks=("front", "back"),
        volumes=("data", "logs"),
        constraints=("node.role==worker",),
    )


def plain_request() -> ServiceRequest:
    return ServiceRequest(
        platform="p1",
        app="shop",
        service=PLAIN,
        release=1,
        generation=0,
        replicas=1,
        image="shop/api:1",
        environment={},
        volumes=("data",),
    )


@pytest.mark.parametrize(
    ("ipvs", "full", "plain"),
    [(False, "403344fd7199c58f", "c93a0d696a1c7d86"), (True, "61ee2c743668848c", "476a2261f751d8e6")],
)
def test_keys_are_what_running_platforms_have(ipvs: bool, full: str, plain: str) -> None:
    rollout = Rollout(ipvs=ipvs)
    assert service_key(full_request(), rollout, ["node.role==worker"]) == full
    assert service_key(plain_request(), rollout, []) == plain
    pinned_here = dataclasses.replace(full_request(), constraints=())
    if not ipvs:
        assert service_key(pinned_here, rollout, ["node.id==node1"]) == "0a3bb4a9d37626ff"


def test_the_key_ignores_the_replica_count_only() -> None:
    rollout = Rollout(ipvs=False)
    req = full_request()
    key = service_key(req, rollout, [])
    assert service_key(dataclasses.replace(req, replicas=7), rollout, []) == key
    assert service_key(dataclasses.replace(req, environment={"PORT": "1"}), rollout, []) != key
    assert service_key(req, Rollout(ipvs=False, update_delay_s=9), []) != key


def test_the_spec_names_networks_mounts_and_ports_as_the_engine_has_them() -> None:
    body = service_spec(full_request(), Rollout(ipvs=False), ["node.id==n1"], replicas=2, key="k1")
    assert body["name"] == service_name("shop", "web", 3, 1) == "shop_web_3_1"
    assert body["labels"]["mypaas.spec"] == "k1" and body["labels"]["mypaas.release"] == "3"
    template = body["task_template"]
    assert [n["Target"] for n in template["Networks"]] == ["mypaasov_shop_front", "mypaasov_shop_back"]
    assert [(m["Source"], m["Type"]) for m in template["ContainerSpec"]["Mounts"]] == [
        ("mypaas_shop_data", "volume"),
        ("/srv", "bind"),
    ]
    assert "mypaas.spec" not in template["ContainerSpec"]["Labels"]  # the tasks carry no key
    assert template["Placement"]["Constraints"] == ["node.id==n1"]
    assert body["mode"] == {"replicated": {"Replicas": 2}}
    assert body["update_config"]["Order"] == "stop-first"  # a fixed host port: the old task goes first


def test_ports_are_published_in_host_mode() -> None:
    assert published_ports(FULL) == [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 9090, "PublishMode": "host"}
    ]
    assert published_ports(PLAIN) == [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"}]
