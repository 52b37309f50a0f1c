"""One contract every composer backend passes, the fake included (DESIGN.md): the same calls, the
same results, the same errors."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from mypaas.composer.base import LABEL_APP, LABEL_PLATFORM, Backend, InstanceRequest
from mypaas.composer.fake import FakeBackend
from mypaas.domain import InstanceState, ServiceSpec
from mypaas.errors import InvalidSpec, NotFound
from tests import kit


@pytest.fixture(
    params=[
        "fake",
        pytest.param("docker", marks=pytest.mark.integration),
        # what the platform runs: the docker backend plus Swarm services (here on a plain engine)
        pytest.param("swarm", marks=pytest.mark.integration),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Backend, str, str]]:
    """(backend, platform id, image ref) for each backend."""
    platform = f"contract-{secrets.token_hex(4)}"
    if request.param == "fake":
        fake = FakeBackend()
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
        real.close()


def request_for(backend: Backend, platform: str, image: str, app: str) -> InstanceRequest:
    info = backend.image(image)
    svc = ServiceSpec(name="web", image=image, image_id=info.id, expose=[80])
    net = f"mypaas_{app}"
    backend.ensure_network(net, {LABEL_PLATFORM: platform, LABEL_APP: app})
    return InstanceRequest(
        platform=platform,
        app=app,
        service=svc,
        release=1,
        generation=0,
        name=f"{app}-web-v1-{secrets.token_hex(3)}",
        environment={"PORT": "80"},
        networks=(net,),
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
    b.remove_instance(created.id, grace_s=1)
    b.remove_instance(created.id, grace_s=1)  # removing twice is fine
    assert [i for i in b.list_instances(platform) if i.app == app] == []
    b.remove_app_resources(platform, app)
    b.remove_app_resources(platform, app)


def networks_of(b: Backend, platform: str, app: str) -> list[str]:
    """The names of the app's networks, as the fake holds them or the engine lists them (the Backend
    protocol has no call that lists networks)."""
    if isinstance(b, FakeBackend):
        wanted = {LABEL_PLATFORM: platform, LABEL_APP: app}
        return [name for name, labels in b.networks.items() if wanted.items() <= labels.items()]
    client = kit.docker_client()
    try:
        found = client.networks.list(
            filters={"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
        )
        return [str(net.name) for net in found]
    finally:
        client.close()


def test_networks_are_idempotent(backend: tuple[Backend, str, str]) -> None:
    b, platform, _ = backend
    app = f"n{secrets.token_hex(3)}"
    labels = {LABEL_PLATFORM: platform, LABEL_APP: app}
    b.ensure_network(f"mypaas_{app}", labels)
    b.ensure_network(f"mypaas_{app}", labels)
    assert networks_of(b, platform, app) == [f"mypaas_{app}"]  # made once, found the second time
    b.remove_app_resources(platform, app)
    assert networks_of(b, platform, app) == []


def test_a_missing_image_id_is_refused(backend: tuple[Backend, str, str]) -> None:
    b, platform, image = backend
    req = request_for(b, platform, image, f"m{secrets.token_hex(3)}")
    bad = ServiceSpec(name="web", image="x", image_id="sha256:" + "0" * 64, expose=[80])
    with pytest.raises((NotFound, InvalidSpec)):
        b.create_instance(InstanceRequest(**{**req.__dict__, "service": bad}))
    b.remove_app_resources(platform, req.app)
