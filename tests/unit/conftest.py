"""Shared unit-test fixtures: a platform over the fake backend, reached through the real API app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings


@pytest.fixture
def backend() -> FakeBackend:
    """An empty fake engine; a module overrides this fixture to start with images."""
    return FakeBackend()


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The platform's settings (no registry); a test changes some with
    ``@pytest.mark.parametrize("settings", [{"router_port": 8080}], indirect=True)``."""
    return Settings(home=tmp_path, registry_enabled=False, **getattr(request, "param", {}))


@pytest.fixture
def platform(settings: Settings, backend: FakeBackend) -> Platform:
    """The platform over ``backend``: a fake router, HTTP probes that always pass, a fake Swarm (none
    yet: never the machine's engine, which an integration test may have made a Swarm); nothing started."""
    nodes = FakeNodes()
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, nodes=lambda: nodes)
    return build_platform(settings, parts)


@pytest.fixture
def api(platform: Platform) -> Iterator[TestClient]:
    """The REST API of ``platform``, with the admin token set."""
    client = TestClient(create_app(platform))
    client.headers["Authorization"] = f"Bearer {platform.admin_token}"
    yield client
