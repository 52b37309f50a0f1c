"""Deploying a compose project through the API (several files, env files, profiles), and the dry run:
everything validated, the normalized spec, the warnings and the changes answered, nothing made."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec, BuildSpec, ServiceSpec
from mypaas.manager.changes import spec_changes
from mypaas.manager.platform import Platform
from tests.unit.cli.support import finished, settle

BASE = """
services:
  web:
    image: web:${TAG:-1}
    expose: [80]
    environment: [MODE, PLAIN=x]
  admin:
    image: web:1
    profiles: [tools]
"""
OVERRIDE = """
services:
  web:
    environment:
      EXTRA: "${EXTRA:-none}"
  cache:
    extends: {file: common/base.yml, service: cache}
"""
COMMON = """
services:
  cache:
    image: web:1
    env_file: cache.env
"""


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    fake.add_image("web:2", exposed=(80,))
    return fake


def project(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "compose_files": ["compose.yml", "override.yml"],
        "files": {
            "compose.yml": BASE,
            "override.yml": OVERRIDE,
            "common/base.yml": COMMON,
            "common/cache.env": "SIZE=64\n",
            ".env": "TAG=2\nMODE=from-dotenv\n",
        },
    }
    return body | extra


def dry_run(api: TestClient, name: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/api/v1/apps/{name}/deploys", params={"dry_run": "true"}, json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    assert answer["dry_run"] is True
    return answer


def test_a_project_of_two_files_with_extends_deploys(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    body = project(variables={"EXTRA": "shell"})
    spec = dry_run(api, "shop", body)["spec"]

    assert set(spec["services"]) == {"web", "cache"}  # admin's profile is not active
    web = spec["services"]["web"]
    assert web["image"] == "web:2"  # TAG from .env
    assert web["environment"] == {"MODE": "from-dotenv", "PLAIN": "x", "EXTRA": "shell"}
    assert spec["services"]["cache"]["environment"] == {"SIZE": "64"}  # env_file beside common/base.yml

    r = api.post("/api/v1/apps/shop/deploys", json=body)
    assert r.status_code == 202, r.text
    settle(platform, backend)
    assert finished(api, r.json()["id"])["status"] == "succeeded"
    assert dry_run(api, "shop", body)["changes"]["unchanged"] == ["web", "cache"]


def test_env_file_and_profile_flags(api: TestClient) -> None:
    files = project()["files"] | {"prod.env": "TAG=1\n"}
    body = project(files=files, env_file=["prod.env"], profiles=["tools"])

    spec = dry_run(api, "shop", body)["spec"]

    assert set(spec["services"]) == {"web", "admin", "cache"}
    assert spec["services"]["web"]["image"] == "web:1"
    assert "MODE" not in spec["services"]["web"].get("environment", {})  # no value anywhere: left out


def test_dry_run_makes_nothing_and_answers_the_changes(
    api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    answer = dry_run(api, "shop", project())

    assert answer["changes"] == {
        "release": None,
        "added": ["web", "cache"],
        "changed": {},
        "removed": [],
        "unchanged": [],
        "top": [],
    }
    assert answer["warnings"] == []
    assert api.get("/api/v1/apps").json() == []  # no app, no release, no operation
    assert not [call for call in backend.calls if call != "list"]
    assert not backend.instances

    first = api.post("/api/v1/apps/shop/deploys", json=project())
    settle(platform, backend)
    assert finished(api, first.json()["id"])["status"] == "succeeded"
    calls = len(backend.calls)

    files = project()["files"] | {"override.yml": "services:\n  web:\n    environment: {EXTRA: 'yes'}\n"}
    changes = dry_run(api, "shop", project(files=files))["changes"]

    assert changes["release"] == 1
    assert changes["changed"] == {"web": ["environment"]}
    assert changes["removed"] == ["cache"]
    assert len(api.get("/api/v1/apps/shop/releases").json()) == 1
    assert len(backend.calls) == calls


def test_dry_run_answers_the_warnings(api: TestClient) -> None:
    files = project()["files"] | {"override.yml": "services:\n  web:\n    labels: {x: '${UNSET}'}\n"}

    answer = dry_run(api, "shop", project(files=files))

    assert answer["warnings"] == [
        "override.yml: services.web.labels.x: variable UNSET is not set, so it is an empty string "
        "(as docker compose does)"
    ]


def test_dry_run_refuses_what_a_deploy_refuses(api: TestClient) -> None:
    body = project(files=project()["files"] | {".env": "TAG=9\n"})
    r = api.post("/api/v1/apps/shop/deploys", params={"dry_run": "true"}, json=body)
    assert r.status_code == 400 and r.json()["field"] == "services.web.image", r.text

    body = project(compose_files=["compose.yml", "missing.yml"])
    r = api.post("/api/v1/apps/shop/deploys", params={"dry_run": "true"}, json=body)
    assert r.status_code == 400 and "missing.yml" in r.json()["error"], r.text
    assert api.get("/api/v1/apps").json() == []


def test_the_dry_run_flag_is_in_the_openapi_spec(api: TestClient) -> None:
    route = api.get("/api/v1/openapi.json").json()["paths"]["/api/v1/apps/{name}/deploys"]["post"]
    assert [p["name"] for p in route["parameters"] if p["in"] == "query"] == ["dry_run"]
    assert "200" in route["responses"]


def test_changes_of_built_services_and_undeclared_replicas() -> None:
    built = ServiceSpec(name="api", build=BuildSpec(context="./api"), expose=[80])
    stored = ServiceSpec(name="api", image="shop/api:3", image_id="sha256:1", expose=[80], replicas=3)
    web = ServiceSpec(name="web", image="web:1", image_id="sha256:2", replicas=2)
    current = AppSpec(services={"api": stored, "web": web, "old": web.model_copy(update={"name": "old"})})
    new = AppSpec(services={"api": built, "web": web.model_copy(update={"replicas": None})}, volumes=["data"])

    changes = spec_changes(current, new, 4)

    assert changes.changed == {"api": ["build"]}  # rebuilt: nothing else differs (replicas kept)
    assert changes.unchanged == ["web"] and changes.removed == ["old"] and changes.top == ["volumes"]
    assert spec_changes(current, current, 4).changed == {}


def test_an_alias_bomb_sent_to_the_api_is_refused_with_flat_memory(api: TestClient) -> None:
    bomb = "\n".join(
        [
            "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
            *(f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)),
            "services:\n  web:\n    image: web:1\n    command: *i",
        ]
    )
    body = project(files=project()["files"] | {"override.yml": bomb})
    # the app's first request builds what FastAPI builds once per route (MBs, growing with the routes):
    # measured apart from the bomb's own cost
    assert api.post("/api/v1/apps/shop/deploys", json=project()).status_code < 500
    tracemalloc.start()
    try:
        r = api.post("/api/v1/apps/shop/deploys", json=body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 400 and "expands to more than" in r.json()["error"], r.text
    assert peak < 4 * 1024 * 1024, f"peak {peak:,} bytes"  # ~1 MB here; expanded: 10**9 strings
