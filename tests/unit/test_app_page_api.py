"""What the dashboard's app page reads from the API: an instance's restarts, start time and healthcheck."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_instances_say_restarts_start_and_healthcheck(api: TestClient, platform: Platform) -> None:
    assert api.post("/api/v1/apps/shop/deploys", json={"image": "web:1"}).status_code == 202
    platform.reconciler.pass_once()
    [inst] = api.get("/api/v1/apps/shop/instances").json()
    assert inst["restarts"] == 0
    assert inst["healthcheck"] is False
    assert inst["started"] is None or inst["started"] >= inst["created"] > 0
