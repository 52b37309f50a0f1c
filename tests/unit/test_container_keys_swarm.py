"""The container keys a Swarm task has no setting for (compose cpu_shares, domainname...) are refused when
the app is deployed on a cluster, naming the service and the key; the docker backend runs them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend, FakeSwarmBackend
from mypaas.manager.platform import Platform
from mypaas.manager.state.meta import BACKEND_KEY
from mypaas.manager.state.models import Meta
from mypaas.states import BackendMode

COMPOSE = "services:\n  web:\n    image: web:1\n    expose: [80]\n    cpu_shares: 512\n"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeSwarmBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_cpu_shares_is_refused_on_a_cluster(platform: Platform, api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE})
    assert r.status_code in (200, 201, 202), r.text  # the docker backend runs it
    with platform.sessions.begin() as s:
        s.add(Meta(key=BACKEND_KEY, value=BackendMode.SWARM.value))
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "services.web"
    assert "cpu_shares: a Swarm task has no such setting" in r.json()["error"]
