"""Shared unit-test fixtures: a platform over the fake backend, reached through the real API app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Components, build_platform
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings


@pytest.fixture
def backend() -> FakeBackend:
    """An empty fake engine; a module overrides this fixture to start with images."""
    return FakeBackend()


@pytest.fixture
def api(tmp_path: Path, backend: FakeBackend) -> Iterator[TestClient]:
    """The REST API of a platform over ``backend`` (no registry), with the admin token set."""
    settings = Settings(home=tmp_path, registry_enabled=False)
    platform = build_platform(
        settings, Components(backend=backend, router=FakeRouter(), probe=lambda _: True)
    )
    client = TestClient(create_app(platform))
    client.headers["Authorization"] = f"Bearer {platform.admin_token}"
    yield client
