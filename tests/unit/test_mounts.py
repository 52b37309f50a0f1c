"""An instance's mounts as the engine gets them (composer/containers.py ``volume_mounts``), on both
backends: anonymous volumes, tmpfs, options only when set."""

from __future__ import annotations

from mypaas.composer.base import InstanceRequest, ServiceRequest
from mypaas.composer.containers import volume_mounts
from mypaas.composer.swarm_spec import Rollout, service_spec
from mypaas.domain import ServiceSpec, TmpfsMount, VolumeMount
from mypaas.manager.evictable import movable

SVC = ServiceSpec(
    name="web",
    image="a",
    image_id="sha256:" + "a" * 64,
    volumes=[
        VolumeMount(source="data", target="/data"),
        VolumeMount(source="", target="/scratch"),
        VolumeMount(source="data", target="/nc", no_copy=True, consistency="cached"),
        VolumeMount(source="/srv", target="/srv", bind=True, read_only=True, propagation="rslave"),
        VolumeMount(source="shared-2024", target="/ext"),
    ],
    tmpfs=[TmpfsMount(target="/run"), TmpfsMount(target="/tmp", size=1 << 26, mode=0o1777, read_only=True)],
)


def instance_request(svc: ServiceSpec = SVC) -> InstanceRequest:
    return InstanceRequest(
        platform="p",
        app="shop",
        service=svc,
        release=1,
        generation=0,
        name="shop-web-v1-abc",
        environment={},
        volumes=("data",),
    )


def test_mounts_as_the_engine_takes_them() -> None:
    assert volume_mounts(instance_request()) == [
        {"Target": "/data", "Source": "mypaas_shop_data", "Type": "volume", "ReadOnly": False},
        {"Target": "/scratch", "Source": None, "Type": "volume", "ReadOnly": False},  # anonymous
        {
            "Target": "/nc",
            "Source": "mypaas_shop_data",
            "Type": "volume",
            "ReadOnly": False,
            "Consistency": "cached",
            "VolumeOptions": {"NoCopy": True},
        },
        {
            "Target": "/srv",
            "Source": "/srv",
            "Type": "bind",
            "ReadOnly": True,
            "BindOptions": {"Propagation": "rslave"},
        },
        {"Target": "/ext", "Source": "shared-2024", "Type": "volume", "ReadOnly": False},  # external
        {"Target": "/run", "Source": None, "Type": "tmpfs", "ReadOnly": False},
        {
            "Target": "/tmp",
            "Source": None,
            "Type": "tmpfs",
            "ReadOnly": True,
            "TmpfsOptions": {"SizeBytes": 1 << 26, "Mode": 0o1777},
        },
    ]


def test_swarm_tasks_get_the_same_mounts() -> None:
    req = ServiceRequest(
        platform="p",
        app="shop",
        service=SVC,
        release=1,
        generation=0,
        replicas=2,
        image="reg/shop/web@sha256:" + "a" * 64,
        environment={},
        volumes=("data",),
    )
    body = service_spec(req, Rollout(), [], replicas=2, key="k")
    mounts = body["task_template"]["ContainerSpec"]["Mounts"]
    assert mounts == volume_mounts(instance_request())


def test_an_instance_with_only_anonymous_volumes_can_move_to_another_host() -> None:
    anonymous = SVC.model_copy(update={"volumes": [VolumeMount(source="", target="/x")]})
    assert movable(anonymous)
    assert not movable(SVC)  # a named volume is a folder on one host
