"""A deploy that publishes a host port asks the backend whether the port is free (on the hosts its
instances can run on), not the manager's own machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec, PortSpec, ServiceSpec
from mypaas.errors import Conflict
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.releases import DeployRequest
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings


def publishing(port: int) -> DeployRequest:
    web = ServiceSpec(name="web", image="web:1", ports=[PortSpec(container=80, host=port)])
    return DeployRequest(spec=AppSpec(services={"web": web}), contexts={}, user="t", description="Deploy")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Platform, FakeBackend]:
    backend = FakeBackend()
    backend.add_image("web:1")
    settings = Settings(home=tmp_path, registry_enabled=False)
    given = Components(backend=backend, router=FakeRouter(), probe=lambda _: True)
    return build_platform(settings, given), backend


def test_a_port_the_backend_says_is_taken_is_refused(setup: tuple[Platform, FakeBackend]) -> None:
    platform, backend = setup
    backend.taken_ports.add(9090)
    with pytest.raises(Conflict) as refused:
        platform.releases.deploy("shop", publishing(9090))
    assert refused.value.message == "host port 9090 is already in use on this host"
    assert refused.value.field == "services.web.ports"
    assert platform.releases.deploy("shop", publishing(9091)).id  # a free one is fine


def test_the_app_itself_may_keep_its_port(setup: tuple[Platform, FakeBackend]) -> None:
    platform, backend = setup
    platform.releases.deploy("shop", publishing(9090))
    backend.taken_ports.add(9090)  # held by the app's own instance, as the engine would say
    assert platform.releases.deploy("shop", publishing(9090)).id
