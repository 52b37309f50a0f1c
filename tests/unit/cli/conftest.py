"""Fixtures of the CLI tests: the `mypaas` commands talking to the real API over the fake backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.cli import client as client_module
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, isolate, serve


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every CLI test: no MYPAAS_* variable from the caller's shell, a CLI home with no token file."""
    isolate(monkeypatch, tmp_path / "home")
    yield
    client_module.settings.cache_clear()


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    fake.add_image("nginx:alpine", exposed=(80,))
    return fake


@pytest.fixture
def server(api: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The API app of tests/unit/conftest.py, reached by every command's client (admin token)."""
    return serve(monkeypatch, api, platform)


@pytest.fixture
def manager(platform: Platform) -> Iterator[Platform]:
    """The platform's background loops running (reconcile, probes...), as under `mypaas up`."""
    platform.start()
    yield platform
    platform.stop()
