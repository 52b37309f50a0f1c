"""What a Swarm service cannot run (compose network_mode, pid: host...) is refused when it is deployed on a
cluster, naming the service, not later by the reconcile loop."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend, FakeSwarmBackend
from mypaas.manager.platform import Platform
from mypaas.manager.state.meta import BACKEND_KEY
from mypaas.manager.state.models import Meta
from mypaas.states import BackendMode

COMPOSE = (
    "services:\n  web:\n    image: web:1\n    expose: [80]\n"
    "  job:\n    image: web:1\n    network_mode: none\n"
)


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeSwarmBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_network_mode_is_refused_on_a_cluster(platform: Platform, api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE})
    assert r.status_code in (200, 201, 202), r.text  # the docker backend runs it
    with platform.sessions.begin() as s:
        s.add(Meta(key=BACKEND_KEY, value=BackendMode.SWARM.value))
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "services.job"
    assert "network_mode none" in r.json()["error"]
