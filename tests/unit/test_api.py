"""The REST API's error mapping, on the fake backend: bad input is a 4xx JSON naming the field."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def error(r: object, status: int, field: str | None = None) -> dict[str, str]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body: dict[str, str] = r.json()  # type: ignore[attr-defined]
    assert body["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_token_required(api: TestClient) -> None:
    error(api.get("/api/v1/apps", headers={"Authorization": ""}), 401)
    error(api.get("/api/v1/apps", headers={"Authorization": "Bearer nope"}), 401)
    assert api.get("/api/v1/health", headers={"Authorization": ""}).status_code == 200


def test_bad_deploy_bodies(api: TestClient) -> None:
    error(api.post("/api/v1/apps/Bad_Name/deploys", json={"image": "web:1"}), 400, "app")
    error(api.post("/api/v1/apps/ok/deploys", json={"image": "missing:1"}), 400, "services.web.image")
    error(api.post("/api/v1/apps/ok/deploys", json={}), 400, "image")
    error(api.post("/api/v1/apps/ok/deploys", json={"image": "web:1", "compose": "x"}), 400, "image")
    error(api.post("/api/v1/apps/ok/deploys", json={"image": "web:1", "port": 0}), 400, "port")
    error(api.post("/api/v1/apps/ok/deploys", json={"image": "web:1", "bogus": 1}), 400, "bogus")
    error(
        api.post(
            "/api/v1/apps/ok/deploys", content=b"[" * 100_000, headers={"content-type": "application/json"}
        ),
        400,
        "body",
    )
    error(api.post("/api/v1/apps/ok/deploys", json={"compose": "services: [\n"}), 400, "compose")
    error(
        api.post(
            "/api/v1/apps/ok/deploys",
            json={
                "compose": "services:\n  w:\n    image: web:1\n    deploy: {replicas: 99999999999999999999}\n"
            },
        ),
        400,
        "services.w.deploy.replicas",
    )
    assert api.get("/api/v1/apps").json() == []


def test_unknown_things_are_404(api: TestClient) -> None:
    error(api.get("/api/v1/apps/nope"), 404, "app")
    error(api.get("/api/v1/operations/nope"), 404, "operation")
    error(api.post("/api/v1/apps/nope/rollback", json={}), 404, "app")
    error(api.get("/api/v1/nowhere"), 404)


def test_bad_values_on_an_existing_app(api: TestClient) -> None:
    assert api.post("/api/v1/apps/shop/deploys", json={"image": "web:1"}).status_code == 202
    error(api.post("/api/v1/apps/shop/rollback", json={"release": 2**63}), 400, "release")
    error(api.post("/api/v1/apps/shop/rollback", json={"release": 7}), 404, "release")
    error(api.put("/api/v1/apps/shop/scale", json={"replicas": {"web": 1000}}), 400, "web")
    error(api.put("/api/v1/apps/shop/scale", json={"replicas": {"db": 1}}), 404, "service")
    error(api.put("/api/v1/apps/shop/scale", json={"replicas": {}}), 400, "replicas")
    error(api.patch("/api/v1/apps/shop/config", json={"set": {"NOT OK": "1"}}), 400, "config")
    error(api.patch("/api/v1/apps/shop/config", json={}), 400, "set")
    error(api.post("/api/v1/apps/shop/domains", json={"domain": "not a domain"}), 400, "domain")
    error(api.delete("/api/v1/apps/shop/domains/www.example.com"), 404, "domain")
    error(api.get("/api/v1/images"), 501, "registry")


def test_ps_calls_a_restarting_instance_a_crash_loop() -> None:
    from mypaas.api.deps import instance_state
    from mypaas.domain import Instance, InstanceState

    def inst(state: InstanceState) -> Instance:
        return Instance(id="x", name="n", app="a", service="web", release=1, state=state)

    assert instance_state(inst(InstanceState.RESTARTING), ready=False) == "crash-loop"
    assert instance_state(inst(InstanceState.STARTING), ready=True) == "healthy"
    assert instance_state(inst(InstanceState.EXITED), ready=False) == "exited"


def test_the_apps_list_names_desired_instances_and_the_url(api: TestClient) -> None:
    compose = "services:\n  web:\n    image: web:1\n    deploy: {replicas: 2}\n  worker:\n    image: web:1\n"
    assert api.post("/api/v1/apps/shop/deploys", json={"compose": compose}).status_code == 202
    (shop,) = api.get("/api/v1/apps").json()
    assert shop["desired"] == 3
    assert shop["url"] == "http://shop.localhost"
    assert {"ready", "instances", "release", "state", "team"} <= shop.keys()  # the keys it had
    assert api.put("/api/v1/apps/shop/scale", json={"replicas": {"worker": 0}}).status_code == 200
    assert api.get("/api/v1/apps").json()[0]["desired"] == 2
    assert api.post("/api/v1/apps/shop/stop").status_code == 200
    assert api.get("/api/v1/apps").json()[0]["desired"] == 0  # stopped: none should run
