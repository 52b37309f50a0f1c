"""Preview apps through the REST API over the fake backend: turned on by the app's owner, deployed with
``preview`` on the app's own deploy route (refused in one line when they cannot be), made in the app's
team with its config vars, its secrets only when allowed, one replica per service; a limit; removed one
by one (idempotent) and with their app."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.domain import preview_app_name
from mypaas.manager.platform import Platform
from tests.unit.cli.support import deploy, settle
from tests.unit.teams import Cast, make_cast, make_teams

FEATURE = preview_app_name("shop", "feature/x")
COMPOSE = """
services:
  web:
    image: web:1
    secrets: [api_token]
    deploy: {replicas: 3}
secrets:
  api_token: {external: true}
"""
TOKEN = "t0ken-of-shop-77"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def shop(api: TestClient, platform: Platform, backend: FakeBackend, *, team: str | None = None) -> None:
    """App shop (web:1) with a config var and a secret, settled."""
    params = {"team": team} if team else {}
    r = api.put("/api/v1/apps/shop/secrets/api_token", params=params, json={"value": b64(TOKEN)})
    assert r.status_code == 200, r.text
    r = api.post("/api/v1/apps/shop/deploys", params=params, json={"image": "web:1"})
    assert r.status_code == 202, r.text
    settle(platform, backend)
    r = api.patch("/api/v1/apps/shop/config", json={"set": {"GREETING": "hi"}})
    assert r.status_code == 202, r.text
    settle(platform, backend)


def removals(platform: Platform) -> None:
    for _ in range(3):
        platform.reconciler.pass_once()
        platform.reconciler.join_removals()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def previews_on(api: TestClient, **body: Any) -> dict[str, Any]:
    r = api.put("/api/v1/apps/shop/previews", json={"enabled": True, **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def refused(api: TestClient, body: dict[str, Any], status: int, app: str = "shop") -> str:
    r = api.post(f"/api/v1/apps/{app}/deploys", json=body)
    assert r.status_code == status, r.text
    return str(r.json()["error"])


def test_refused_in_one_line_while_off_for_an_unknown_app_and_a_bad_branch(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    error = refused(api, {"image": "web:1", "preview": "feature/x"}, 409)
    assert error == "previews are off for app shop: `mypaas previews on shop` turns them on"
    previews_on(api)
    assert "no app named 'shoq'" in refused(api, {"image": "web:1", "preview": "x"}, 404, app="shoq")
    r = api.post("/api/v1/apps/shop/deploys", json={"image": "web:1", "preview": "a..b"})
    assert (r.status_code, r.json()["field"]) == (400, "preview")
    assert "invalid git branch name 'a..b'" in r.json()["error"]
    assert [a["name"] for a in api.get("/api/v1/apps").json()] == ["shop"]  # nothing half-made


def test_a_preview_gets_the_config_not_the_secrets_one_replica_and_its_own_url(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    api.put("/api/v1/apps/shop/scale", json={"replicas": {"web": 2}})
    settle(platform, backend)
    previews_on(api, limit=2)

    op = deploy(api, "shop", image="web:1", preview="feature/x")
    settle(platform, backend)

    assert op["app"] == FEATURE
    assert "secrets of shop left out (api_token)" in api.get(f"/api/v1/operations/{op['id']}").json()["log"]
    assert api.get(f"/api/v1/apps/{FEATURE}/config").json() == {"GREETING": "hi"}
    assert api.get(f"/api/v1/apps/{FEATURE}/secrets").json() == []
    info = api.get(f"/api/v1/apps/{FEATURE}").json()
    assert info["services"]["web"]["replicas"] == 1
    assert (info["preview_of"], info["preview_branch"]) == ("shop", "feature/x")
    assert info["url"] == f"http://{FEATURE}.localhost"
    [listed] = api.get("/api/v1/apps/shop/previews").json()
    assert {k: listed[k] for k in ("name", "branch", "status", "release", "url")} == {
        "name": FEATURE,
        "branch": "feature/x",
        "status": "running",
        "release": 1,
        "url": f"http://{FEATURE}.localhost",
    }
    apps = {a["name"]: a for a in api.get("/api/v1/apps").json()}
    assert (apps[FEATURE]["preview_of"], apps[FEATURE]["team"]) == ("shop", apps["shop"]["team"])
    assert apps["shop"]["preview_of"] is None


def test_the_same_branch_again_is_a_new_release_with_the_config_refreshed(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    previews_on(api)
    deploy(api, "shop", image="web:1", preview="feature/x")
    settle(platform, backend)
    assert deploy(api, "shop", image="web:1", preview="feature/x")["message"].startswith("nothing changed")

    api.patch("/api/v1/apps/shop/config", json={"set": {"GREETING": "hello"}})
    settle(platform, backend)
    op = deploy(api, "shop", image="web:1", preview="feature/x")
    settle(platform, backend)

    assert op["release"] == 2
    assert api.get(f"/api/v1/apps/{FEATURE}/config").json() == {"GREETING": "hello"}


def test_a_compose_app_that_needs_a_secret_fails_without_and_deploys_with_secrets(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    previews_on(api)
    error = refused(api, {"compose": COMPOSE, "preview": "feature/x"}, 400)
    assert (
        f"secret 'api_token' is external but not set: set it first with `mypaas secrets set {FEATURE}"
        in error
    )
    assert FEATURE not in [a["name"] for a in api.get("/api/v1/apps").json()]

    previews_on(api, with_secrets=True)
    op = deploy(api, "shop", compose=COMPOSE, preview="feature/x")
    settle(platform, backend)

    assert "left out" not in op["log"]
    files = [f for fs in backend.secret_files.values() for f in fs if f.name == "api_token"]
    assert files and files[-1].data == TOKEN.encode()
    assert api.get(f"/api/v1/apps/{FEATURE}").json()["services"]["web"]["replicas"] == 1  # not the file's 3


def test_the_limit_names_the_previews_and_rm_frees_a_place_idempotently(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    previews_on(api, limit=2)
    deploy(api, "shop", image="web:1", preview="a")
    deploy(api, "shop", image="web:1", preview="b")
    settle(platform, backend)

    error = refused(api, {"image": "web:1", "preview": "c"}, 409)
    assert error.startswith("app shop has 2 previews, its limit (shop-a, shop-b)")

    r = api.delete("/api/v1/apps/shop/previews/a")
    assert r.status_code == 200 and r.json()["removed"] is True, r.text
    removals(platform)
    assert "shop-a" not in [a["name"] for a in api.get("/api/v1/apps").json()]
    again = api.delete("/api/v1/apps/shop/previews/a")
    assert again.status_code == 200 and again.json() == {"app": "shop-a", "removed": False, "operation": None}
    deploy(api, "shop", image="web:1", preview="c")
    settle(platform, backend)
    assert [p["branch"] for p in api.get("/api/v1/apps/shop/previews").json()] == ["b", "c"]

    off = api.put("/api/v1/apps/shop/previews", json={"enabled": False}).json()
    assert (off["enabled"], off["previews"]) == (False, ["shop-b", "shop-c"])  # off removes nothing


def test_removing_the_app_removes_its_previews(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    previews_on(api)
    deploy(api, "shop", image="web:1", preview="feature/x")
    settle(platform, backend)

    assert api.delete("/api/v1/apps/shop").status_code == 202
    removals(platform)

    assert api.get("/api/v1/apps").json() == []
    assert not [i for i in backend.instances.values() if i.app == FEATURE]


def test_a_name_taken_by_another_app_is_refused(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    deploy(api, "shop-main", image="web:1")
    previews_on(api)
    assert refused(api, {"image": "web:1", "preview": "main"}, 409) == (
        "app shop-main exists and is not the preview of shop main"
    )


@pytest.fixture
def cast(api: TestClient, platform: Platform, backend: FakeBackend) -> Cast:
    make_teams(platform)
    shop(api, platform, backend, team="a")
    return make_cast(platform)


def test_the_owner_turns_previews_on_whoever_deploys_the_app_deploys_one(
    api: TestClient, cast: Cast, platform: Platform, backend: FakeBackend
) -> None:
    on = {"enabled": True, "with_secrets": True}
    for who in ("deployer", "viewer", "app_token", "other_deployer"):
        assert cast.client(api, who).put("/api/v1/apps/shop/previews", json=on).status_code == 403, who
    assert cast.client(api, "owner").put("/api/v1/apps/shop/previews", json=on).status_code == 200

    body = {"image": "web:1", "preview": "feature/x"}
    assert cast.client(api, "viewer").post("/api/v1/apps/shop/deploys", json=body).status_code == 403
    assert cast.client(api, "other_deployer").post("/api/v1/apps/shop/deploys", json=body).status_code == 403
    app_token = cast.client(api, "app_token")  # a token for shop alone: its previews are its branches
    r = app_token.post("/api/v1/apps/shop/deploys", json=body)
    assert r.status_code == 202, r.text
    settle(platform, backend)
    assert app_token.get(f"/api/v1/operations/{r.json()['id']}").json()["status"] == "succeeded"
    assert app_token.get(f"/api/v1/apps/{FEATURE}").status_code == 200
    assert cast.client(api, "viewer").get("/api/v1/apps/shop/previews").status_code == 200
    assert cast.client(api, "viewer").delete("/api/v1/apps/shop/previews/feature/x").status_code == 403
    removal = app_token.delete("/api/v1/apps/shop/previews/feature/x")
    assert removal.status_code == 200, removal.text
    removals(platform)
    followed = app_token.get(f"/api/v1/operations/{removal.json()['operation']['id']}")
    assert followed.status_code == 200 and followed.json()["status"] == "succeeded", followed.text
    assert api.get(f"/api/v1/apps/{FEATURE}").status_code == 404


def test_export_leaves_previews_out_and_apply_neither_prunes_nor_declares_them(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    shop(api, platform, backend)
    previews_on(api)
    deploy(api, "shop", image="web:1", preview="feature/x")
    settle(platform, backend)

    r = api.get("/api/v1/export")
    assert r.status_code == 200, r.text
    document = str(r.json()["document"])
    assert "shop:" in document and FEATURE not in document
    r = api.post("/api/v1/apply", json={"document": document, "prune": True, "dry_run": True})
    assert r.status_code in (200, 202), r.text
    assert r.json()["changes"] == []  # the preview is git's: --prune does not remove it

    declared = document.replace("apps:\n  shop:", f"apps:\n  {FEATURE}:", 1)
    r = api.post("/api/v1/apply", json={"document": declared})
    assert (r.status_code, r.json()["field"]) == (400, f"apps.{FEATURE}"), r.text
    assert r.json()["error"].startswith(f"apps.{FEATURE}: {FEATURE} is a preview app of shop")
