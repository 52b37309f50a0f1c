"""The API of removals and kept volumes (`DELETE /apps/NAME?volumes=&force=`, `/volumes`): in the OpenAPI
spec, errors as 4xx JSON naming the field; a stuck removal is told to whoever asks of the app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import deploy, settle
from tests.unit.test_api import error

COMPOSE = "services:\n  web:\n    image: web:1\n    volumes: [data:/data]\nvolumes:\n  data: {}\n"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def _removals(platform: Platform) -> None:
    for _ in range(3):
        platform.reconciler.pass_once()
        platform.reconciler.join_removals()


def test_the_volume_routes_are_in_the_openapi_spec(api: TestClient) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert {"get"} <= set(paths["/api/v1/volumes"]) and {"delete"} <= set(paths["/api/v1/volumes/{name}"])
    params = {p["name"] for p in paths["/api/v1/apps/{name}"]["delete"]["parameters"]}
    assert {"volumes", "force"} <= params


def test_volume_errors_name_the_field(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    deploy(api, "shop", compose=COMPOSE)
    settle(platform, backend)

    error(api.delete("/api/v1/volumes/nope"), 404, "name")
    in_use = error(api.delete("/api/v1/volumes/mypaas_shop_data"), 409, "name")
    assert in_use["error"].startswith("volume mypaas_shop_data is in use by app shop")
    platform.apps.set_state("shop", "stop", "admin")  # no container mounts it now, the app still uses it
    _removals(platform)
    still = error(api.delete("/api/v1/volumes/mypaas_shop_data"), 409, "name")
    assert "belongs to app shop, which still uses it" in still["error"]
    error(api.delete("/api/v1/apps/shop", params={"volumes": "maybe"}), 400, "volumes")


def test_a_stuck_removal_is_told_to_whoever_asks(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "shop", compose=COMPOSE)
    settle(platform, backend)
    backend.foreign["mypaas_shop"] = ["foo"]

    assert api.delete("/api/v1/apps/shop").status_code == 202
    _removals(platform)

    why = "network mypaas_shop has active endpoints (container foo)"
    [summary] = api.get("/api/v1/apps").json()
    assert (summary["state"], summary["blocked"]) == ("deleting", why)
    assert api.get("/api/v1/apps/shop").json()["blocked"] == why
    assert api.get("/api/v1/apps/shop/instances").status_code == 200
    for refused in (
        api.delete("/api/v1/apps/shop"),
        api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE}),
        api.get("/api/v1/apps/shop/config"),
    ):
        body = error(refused, 409, "app")
        assert why in body["error"] and "mypaas rm shop --force" in body["error"]

    assert api.delete("/api/v1/apps/shop", params={"force": True}).status_code == 202
    _removals(platform)

    assert api.get("/api/v1/apps").json() == []
    assert "mypaas_shop_data" in backend.volumes  # forced, but the volumes were not asked for


def test_a_forced_removal_keeps_the_volumes_asked_for_before(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "shop", compose=COMPOSE)
    settle(platform, backend)
    backend.foreign["mypaas_shop"] = ["foo"]
    assert api.delete("/api/v1/apps/shop", params={"volumes": True}).status_code == 202
    _removals(platform)

    assert api.delete("/api/v1/apps/shop", params={"force": True}).status_code == 202
    _removals(platform)

    assert "mypaas_shop_data" not in backend.volumes  # the first rm asked for them
    platform.monitoring.events.flush()
    said = [e["message"] for e in api.get("/api/v1/events", params={"app": "shop"}).json()]
    assert any(m.startswith("forced removal by") and "(with its volumes)" in m for m in said), said


def test_a_pass_begun_before_the_forced_removal_does_not_fail_it(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    """The loop read the app (not forced) just before `rm --force` arrived; the blocked removal it then
    reports must not end the forced removal's operation: the next pass finishes it."""
    from mypaas.manager.state.desired import load_desired

    deploy(api, "shop", compose=COMPOSE)
    settle(platform, backend)
    backend.foreign["mypaas_shop"] = ["foo"]
    assert api.delete("/api/v1/apps/shop").status_code == 202
    _removals(platform)
    with platform.sessions() as s:
        stale = load_desired(s)[0]["shop"]  # what a pass already under way holds

    forced = api.delete("/api/v1/apps/shop", params={"force": True})
    assert forced.status_code == 202
    platform.reconciler._outcomes.blocked(stale, "network mypaas_shop has active endpoints (container foo)")

    op = api.get(f"/api/v1/operations/{forced.json()['id']}").json()
    assert op["status"] not in ("failed", "succeeded"), op
    _removals(platform)
    assert api.get(f"/api/v1/operations/{forced.json()['id']}").json()["status"] == "succeeded"
    assert api.get("/api/v1/apps").json() == []
