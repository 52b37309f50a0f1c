"""Secrets and configs through the REST API over the fake backends: a deploy brings values, the engine
gets them as files, `secrets set` makes a release with the new value, a rollback brings the old one
back — and no answer of the API ever holds a value."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.base import SecretFile
from mypaas.composer.fake import FakeBackend, FakeSwarmBackend
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state.meta import BACKEND_KEY
from mypaas.manager.state.models import Meta
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import deploy, settle

PASSWORD = "s3cret-Value-42"
API_KEY = "api-key-0f1e2d"
NEW_PASSWORD = "n3w-s3cret-Value"
VALUES = (PASSWORD, API_KEY, NEW_PASSWORD)
COMPOSE = """
services:
  web:
    image: web:1
    secrets:
      - db_password
      - {source: api_key, target: api.key, uid: "1000", mode: 0400}
    configs:
      - {source: site, target: /etc/site.conf}
secrets:
  db_password: {external: true}
  api_key: {file: ./api.key}
configs:
  site: {content: "greeting=${GREETING:-hi}"}
"""


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def set_secret(api: TestClient, app: str, name: str, value: str, status: int = 202) -> dict[str, Any]:
    r = api.put(f"/api/v1/apps/{app}/secrets/{name}", json={"value": b64(value)})
    assert r.status_code == status, r.text
    return dict(r.json())


def files_of(backend: FakeBackend, release: int) -> dict[str, SecretFile]:
    """The secrets and configs the engine was given for the instance of ``release``."""
    [iid] = [i.id for i in backend.instances.values() if i.release == release]
    return {f.name: f for f in backend.secret_files[iid]}


def deployed(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    """App shop deployed with its secrets (db_password set before its first deploy); its operation."""
    set_secret(api, "shop", "db_password", PASSWORD, status=200)  # before the first deploy: no release
    op = deploy(api, "shop", compose=COMPOSE, secret_values={"secrets.api_key": b64(API_KEY)})
    settle(platform, backend)
    return str(op["id"])


def test_the_engine_gets_each_value_where_compose_mounts_it(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deployed(api, platform, backend)
    files = files_of(backend, 1)
    assert {n: (f.kind, f.target, f.data, f.uid, f.mode) for n, f in files.items()} == {
        "db_password": ("secret", "/run/secrets/db_password", PASSWORD.encode(), 0, 0o444),
        "api_key": ("secret", "/run/secrets/api.key", API_KEY.encode(), 1000, 0o400),
        "site": ("config", "/etc/site.conf", b"greeting=hi", 0, 0o444),
    }


def test_set_makes_a_release_and_a_rollback_brings_the_old_value_back(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deployed(api, platform, backend)
    answer = set_secret(api, "shop", "db_password", NEW_PASSWORD)
    assert answer["changed"] and answer["operation"]["kind"] == "secret"
    settle(platform, backend)
    assert files_of(backend, 2)["db_password"].data == NEW_PASSWORD.encode()
    assert files_of(backend, 2)["api_key"].data == API_KEY.encode()  # the others as they were
    releases = api.get("/api/v1/apps/shop/releases").json()
    assert [r["description"] for r in releases] == ["set secret db_password", "First deploy: web web:1"]

    assert set_secret(api, "shop", "db_password", NEW_PASSWORD, status=200)["changed"] is False
    r = api.post("/api/v1/apps/shop/rollback", json={"release": 1})
    assert r.status_code == 202, r.text
    settle(platform, backend)
    assert files_of(backend, 3)["db_password"].data == PASSWORD.encode()


def test_no_answer_ever_holds_a_value(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    ops = [deployed(api, platform, backend)]
    ops.append(set_secret(api, "shop", "db_password", NEW_PASSWORD)["operation"]["id"])
    settle(platform, backend)
    answers = [
        api.get(path).text
        for path in (
            "/api/v1/apps",
            "/api/v1/apps/shop",
            "/api/v1/apps/shop/releases",
            "/api/v1/apps/shop/config",
            "/api/v1/apps/shop/secrets",
            "/api/v1/apps/shop/instances",
            "/api/v1/events?app=shop",
            "/api/v1/openapi.json",
            *(f"/api/v1/operations/{op}" for op in ops),
        )
    ]
    for text in answers:
        assert not any(value in text for value in VALUES), text
    listing = api.get("/api/v1/apps/shop/secrets").json()
    assert {e["name"]: e["value"] for e in listing} == dict.fromkeys(
        ("db_password", "api_key", "site"), "********"
    )
    assert {e["name"]: e["source"] for e in listing} == {
        "db_password": "set as db_password",
        "api_key": "file ./api.key",
        "site": "content",
    }


def test_the_store_and_the_release_hold_digests_not_values(
    api: TestClient, platform: Platform, backend: FakeBackend, tmp_path: Path
) -> None:
    deployed(api, platform, backend)
    for path in tmp_path.glob("state.db*"):
        data = path.read_bytes()
        assert not any(value.encode() in data for value in VALUES), path
    with platform.sessions() as s:
        from mypaas.manager.state.models import ReleaseRow

        spec = s.query(ReleaseRow).one().spec
    assert len(spec["secrets"]["api_key"]["digest"]) == 64
    assert spec["configs"]["site"]["content"] is None


def test_rm_is_refused_while_mounted_and_then_forgets(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deployed(api, platform, backend)
    r = api.delete("/api/v1/apps/shop/secrets/db_password")
    assert r.status_code == 409 and "remove it from the compose file" in r.json()["error"]
    set_secret(api, "shop", "spare", "x")
    assert api.delete("/api/v1/apps/shop/secrets/spare").status_code == 204
    assert api.delete("/api/v1/apps/shop/secrets/spare").status_code == 404
    assert "spare" not in [e["name"] for e in api.get("/api/v1/apps/shop/secrets").json()]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"compose": COMPOSE, "secret_values": {"secrets.api_key": b64("k")}}, 400, "secrets.db_password"),
        ({"compose": COMPOSE.replace("external: true", "file: ./pw")}, 400, "secrets.db_password.file"),
        (
            {"compose": COMPOSE, "secret_values": {"secrets.api_key": "not base64!"}},
            400,
            "secret_values.secrets.api_key",
        ),
    ],
)
def test_a_deploy_without_its_values_is_refused(
    api: TestClient, body: dict[str, Any], status: int, field: str
) -> None:
    r = api.post("/api/v1/apps/shop/deploys", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert api.get("/api/v1/apps").json() == []  # nothing left behind


@pytest.mark.parametrize(
    ("app", "name", "value", "field"),
    [
        ("shop", "bad name", b64("x"), "secret"),
        ("Bad_App", "ok", b64("x"), "app"),
        ("shop", "ok", "", "value"),
        ("shop", "ok", "%%%", "value"),
    ],
)
def test_bad_secret_requests(api: TestClient, app: str, name: str, value: str, field: str) -> None:
    r = api.put(f"/api/v1/apps/{app}/secrets/{name}", json={"value": value})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert api.get("/api/v1/apps").json() == []


def test_on_swarm_the_service_request_carries_them(tmp_path: Path) -> None:
    fake = FakeSwarmBackend()
    fake.add_image("web:1", exposed=(80,))
    platform = build_platform(
        Settings(home=tmp_path, registry_enabled=False),
        Components(backend=fake, services=fake, router=FakeRouter(), probe=lambda _: True),
    )
    with platform.sessions.begin() as s:
        s.merge(Meta(key=BACKEND_KEY, value="swarm"))
    api = TestClient(create_app(platform))
    api.headers["Authorization"] = f"Bearer {platform.admin_token}"
    deployed(api, platform, fake)
    [service] = fake.services.values()
    files = {f.name: f for f in service.request.secret_files}
    assert files["db_password"].data == PASSWORD.encode() and files["site"].kind == "config"
    key = service.state.spec_key
    assert PASSWORD not in json.dumps(service.state.__dict__, default=str)
    set_secret(api, "shop", "db_password", NEW_PASSWORD)
    settle(platform, fake)
    [newer] = [s for s in fake.services.values() if s.state.release == 2]
    assert newer.state.spec_key != key
    assert {f.name: f.data for f in newer.request.secret_files}["db_password"] == NEW_PASSWORD.encode()
