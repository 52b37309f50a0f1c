"""Engine names and labels (composer/engine.py). Running platforms have these names: a change orphans
every deployed app's networks and volumes, so they are pinned here, string for string."""

from __future__ import annotations

from mypaas.composer.base import InstanceRequest, ServiceRequest
from mypaas.composer.containers import volume_mounts
from mypaas.composer.engine import (
    instance_networks,
    network_name,
    overlay_name,
    resource_labels,
    service_name,
    service_networks,
    volume_name,
)
from mypaas.composer.fake import FakeBackend
from mypaas.domain import ServiceSpec, VolumeMount


def test_names_are_what_running_platforms_have() -> None:
    assert network_name("shop") == network_name("shop", "") == "mypaas_shop"
    assert network_name("shop", "back") == "mypaas_shop_back"
    assert network_name("shop", "default") == "mypaas_shop_default"  # a compose network named so
    assert overlay_name("shop") == "mypaasov_shop"
    assert overlay_name("shop", "back") == "mypaasov_shop_back"
    assert volume_name("shop", "pgdata") == "mypaas_shop_pgdata"
    assert resource_labels("p1", "shop") == {"mypaas.platform": "p1", "mypaas.app": "shop"}
    assert service_name("shop", "web", 3, 1) == "shop_web_3_1"


def test_engine_names_of_two_apps_never_collide() -> None:
    assert volume_name("a", "b-db") != volume_name("a-b", "db")
    assert network_name("x", "y") != network_name("x-y")


SVC = ServiceSpec(
    name="web",
    image="shop/web",
    volumes=[
        VolumeMount(source="pgdata", target="/data"),
        VolumeMount(source="/srv/static", target="/static", bind=True),
    ],
    networks=["front", "back"],
)


def test_requests_name_the_apps_networks_and_volumes_the_backend_names_them() -> None:
    req = InstanceRequest(
        platform="p1",
        app="shop",
        service=SVC,
        release=1,
        generation=0,
        name="shop-web-v1-abc",
        environment={},
        networks=("front", "back"),
        volumes=("pgdata",),
    )
    assert instance_networks(req) == ("mypaas_shop_front", "mypaas_shop_back")
    assert instance_networks(InstanceRequest(**{**req.__dict__, "networks": ()})) == ("mypaas_shop",)
    assert [(m["Source"], m["Type"]) for m in volume_mounts(req)] == [
        ("mypaas_shop_pgdata", "volume"),
        ("/srv/static", "bind"),
    ]
    service = ServiceRequest(
        platform="p1",
        app="shop",
        service=SVC,
        release=1,
        generation=0,
        replicas=1,
        image="shop/web:1",
        environment={},
    )
    assert service_networks(service) == ("mypaasov_shop",)


def test_the_fake_names_networks_and_volumes_as_the_engine_does() -> None:
    fake = FakeBackend()
    fake.ensure_network("p1", "shop")
    fake.ensure_network("p1", "shop", "back")
    fake.ensure_volume("p1", "shop", "pgdata")
    assert set(fake.networks) == {"mypaas_shop", "mypaas_shop_back"}
    assert fake.volumes == {"mypaas_shop_pgdata": {"mypaas.platform": "p1", "mypaas.app": "shop"}}
