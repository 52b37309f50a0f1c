"""One contract every composer backend passes, the fake included (DESIGN.md): the same calls, the
same results, the same errors."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace

import pytest

from mypaas.composer.base import LABEL_PLATFORM, Backend, InstanceRequest
from mypaas.composer.engine import volume_name
from mypaas.composer.fake import FakeBackend, FakeSwarmBackend
from mypaas.domain import PortSpec, ServiceSpec, VolumeMount
from mypaas.errors import Conflict, InvalidSpec, NotFound
from mypaas.states import InstanceState
from tests import kit


@pytest.fixture(
    params=[
        "fake",
        "fake-swarm",  # the fake ServiceBackend runs containers too, like the swarm one
        pytest.param("docker", marks=pytest.mark.integration),
        # what the platform runs: the docker backend plus Swarm services (here on a plain engine)
        pytest.param("swarm", marks=pytest.mark.integration),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Backend, str, str]]:
    """(backend, platform id, image ref) for each backend."""
    platform = f"contract-{secrets.token_hex(4)}"
    if request.param.startswith("fake"):
        fake = FakeBackend() if request.param == "fake" else FakeSwarmBackend()
        fake.add_image("mypaas-test/web:v1", exposed=(80,))
        yield fake, platform, "mypaas-test/web:v1"
        return
    from mypaas.composer.docker import DockerBackend
    from mypaas.composer.swarm import SwarmBackend

    kit.web_image("mypaas-test/web:v1", "version one")
    real = DockerBackend() if request.param == "docker" else SwarmBackend()
    try:
        yield real, platform, "mypaas-test/web:v1"
    finally:
        kit.remove_labelled(f"{LABEL_PLATFORM}={platform}")
        # listing another platform's instances fills that platform's network pool too
        kit.remove_labelled(f"{LABEL_PLATFORM}=other-{platform}")
        real.close()


def request_for(backend: Backend, platform: str, image: str, app: str) -> InstanceRequest:
    info = backend.image(image)
    svc = ServiceSpec(name="web", image=image, image_id=info.id, expose=[80])
    backend.ensure_network(platform, app)
    return InstanceRequest(
        platform=platform,
        app=app,
        service=svc,
        release=1,
        generation=0,
        name=f"{app}-web-v1-{secrets.token_hex(3)}",
        environment={"PORT": "80"},
    )


def test_image_lookup(backend: tuple[Backend, str, str]) -> None:
    b, _, image = backend
    info = b.image(image)
    assert info.id.startswith("sha256:") and info.exposed_ports == (80,)
    with pytest.raises(NotFound):
        b.image("mypaas-test/absent:0")


def test_instance_lifecycle(backend: tuple[Backend, str, str]) -> None:
    b, platform, image = backend
    app = f"c{secrets.token_hex(3)}"
    created = b.create_instance(request_for(b, platform, image, app))
    assert created.app == app and created.service == "web" and created.release == 1
    listed = [i for i in b.list_instances(platform) if i.app == app]
    assert [i.id for i in listed] == [created.id]
    assert listed[0].state in (InstanceState.STARTING, InstanceState.HEALTHY)
    assert listed[0].address and listed[0].address.endswith(":80")
    assert b.list_instances(f"other-{platform}") == []
    report = b.instance_report(created.id)
    assert report is not None and (report.exits, report.exit_code) == (0, None)  # running, never exited
    b.remove_instance(created.id, grace_s=1)
    b.remove_instance(created.id, grace_s=1)  # removing twice is fine
    assert b.instance_report(created.id) is None
    assert [i for i in b.list_instances(platform) if i.app == app] == []
    b.remove_app_resources(platform, app)
    b.remove_app_resources(platform, app)


def test_networks_and_volumes_are_idempotent(backend: tuple[Backend, str, str]) -> None:
    b, platform, image = backend
    app = f"n{secrets.token_hex(3)}"
    for _ in range(2):
        b.ensure_network(platform, app)
        b.ensure_network(platform, app, "back")
        b.ensure_volume(platform, app, "data")
    req = request_for(b, platform, image, app)  # a third time: still nothing to do
    svc = req.service.model_copy(update={"volumes": [VolumeMount(source="data", target="/data")]})
    created = b.create_instance(replace(req, service=svc, networks=("", "back"), volumes=("data",)))
    assert [i.id for i in b.list_instances(platform) if i.app == app] == [created.id]
    assert created.address and created.address.endswith(":80")  # reached on the app's default network
    b.remove_instance(created.id, grace_s=1)
    b.remove_app_resources(platform, app)
    with pytest.raises(NotFound):  # the networks went with the app
        b.create_instance(replace(req, name=f"{req.name}-again"))


def test_a_published_host_port_is_taken_until_its_instance_goes(backend: tuple[Backend, str, str]) -> None:
    b, platform, image = backend
    port = kit.free_port()
    assert b.host_port_free(port)
    req = request_for(b, platform, image, f"p{secrets.token_hex(3)}")
    svc = req.service.model_copy(update={"ports": [PortSpec(container=80, host=port)]})
    first = b.create_instance(replace(req, service=svc))
    assert not b.host_port_free(port)
    with pytest.raises(Conflict) as taken:
        b.create_instance(replace(req, service=svc, name=f"{req.name}-2"))
    assert taken.value.field == "ports"
    assert [i.id for i in b.list_instances(platform) if i.app == req.app] == [first.id]
    b.remove_instance(first.id, grace_s=1)
    assert b.host_port_free(port)
    b.remove_app_resources(platform, req.app)


def test_a_missing_image_id_is_refused(backend: tuple[Backend, str, str]) -> None:
    b, platform, image = backend
    req = request_for(b, platform, image, f"m{secrets.token_hex(3)}")
    bad = ServiceSpec(name="web", image="x", image_id="sha256:" + "0" * 64, expose=[80])
    with pytest.raises((NotFound, InvalidSpec)):
        b.create_instance(replace(req, service=bad))
    b.remove_app_resources(platform, req.app)


def test_volume_exists_sees_the_engine_s_volumes(backend: tuple[Backend, str, str]) -> None:
    """What a deploy asks before it mounts an external volume (one an admin made on the platform)."""
    b, platform, _ = backend
    app = f"v{secrets.token_hex(3)}"
    assert not b.volume_exists(volume_name(app, "data"))
    b.ensure_volume(platform, app, "data")
    assert b.volume_exists(volume_name(app, "data"))
    b.remove_app_resources(platform, app)
    assert not b.volume_exists(volume_name(app, "data"))


def test_an_app_s_volumes_outlive_it_unless_asked(backend: tuple[Backend, str, str]) -> None:
    """`mypaas rm` without --volumes: the app's volumes stay, listed with their app, removable once
    nothing mounts them; a mounted one is refused."""
    b, platform, image = backend
    app = f"k{secrets.token_hex(3)}"
    name = volume_name(app, "data")
    b.ensure_volume(platform, app, "data")
    req = request_for(b, platform, image, app)
    svc = req.service.model_copy(update={"volumes": [VolumeMount(source="data", target="/data")]})
    created = b.create_instance(replace(req, service=svc, volumes=("data",)))
    [listed] = [v for v in b.list_volumes(platform) if v.app == app]
    assert (listed.name, listed.volume, listed.used_by) == (name, "data", (req.name,))
    with pytest.raises(Conflict):
        b.remove_volume(platform, name)
    b.remove_instance(created.id, grace_s=1)
    b.remove_app_resources(platform, app, volumes=False)
    assert [(v.name, v.used_by) for v in b.list_volumes(platform) if v.app == app] == [(name, ())]
    assert b.list_volumes(f"other-{platform}") == []
    with pytest.raises(NotFound):
        b.remove_volume(f"other-{platform}", name)  # another platform's volume is not this one's to remove
    b.remove_volume(platform, name)
    assert not b.volume_exists(name)
    with pytest.raises(NotFound):
        b.remove_volume(platform, name)
