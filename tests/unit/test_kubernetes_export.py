"""`mypaas export APP --format kubernetes`: every manifest is checked against the official Kubernetes JSON
schemas (kubernetes-validate bundles them: offline, strict — an unknown field fails), for several
apps; and what each manifest holds (StatefulSet for named volumes, probes, digests, placeholders)."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec
from mypaas.manager.declare.kubernetes import PLACEHOLDER, KubeApp, manifests
from mypaas.manager.platform import Platform
from mypaas.spec.compose import parse_compose
from tests.unit.cli.support import deploy, settle

K8S = kubernetes_validate.latest_version()

FULL = """
services:
  web:
    image: web:1
    ports: ["8080"]
    environment: {MODE: prod}
    healthcheck: {test: ["CMD-SHELL", "wget -q -O- localhost:8080/health"], interval: 10s, retries: 5}
    x-mypaas-probe: {http: /ready, status: 200}
    secrets: [db_password]
    configs: [{source: site, target: /etc/site.conf}]
    deploy: {resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {memory: 64M}}}
    tmpfs: ["/tmp:size=1m"]
  db:
    image: web:1
    command: ["sleep", "1000"]
    volumes: ["data:/var/lib/db", "/cache"]
    healthcheck: {test: ["CMD", "true"]}
volumes:
  data: {}
secrets:
  db_password: {external: true}
configs:
  site: {content: "greeting=hi"}
"""
PLAIN = "services:\n  web:\n    image: web:1\n    command: [httpd]\n    expose: [80]\n"


def valid(docs: list[dict[str, Any]]) -> None:
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S, strict=True)


def by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def test_a_full_compose_app_gives_valid_manifests() -> None:
    spec = parse_compose(FULL)
    app = KubeApp(
        "shop",
        spec,
        scale={"web": 3},
        config={"LOG_LEVEL": "info"},
        domains=("shop.example.com", "www.shop.example.com"),
        images={"web": "registry.local/shop/web@sha256:" + "a" * 64},
        values={"configs.site": b"greeting=hi"},
    )
    docs = manifests(app)
    valid(docs)
    kinds = by_kind(docs)
    assert [d["metadata"]["name"] for d in kinds["StatefulSet"]] == ["shop-db"]
    assert [d["metadata"]["name"] for d in kinds["Deployment"]] == ["shop-web"]
    hosts = [d["spec"]["rules"][0]["host"] for d in kinds["Ingress"]]
    assert hosts == ["shop.example.com", "www.shop.example.com"]
    assert [d["metadata"]["name"] for d in kinds["PersistentVolumeClaim"]] == ["shop-data"]
    [web] = kinds["Deployment"]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert web["spec"]["replicas"] == 3
    assert container["image"].endswith("@sha256:" + "a" * 64)
    assert container["livenessProbe"]["exec"]["command"][:2] == ["/bin/sh", "-c"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8080}
    limits = {"cpu": "500m", "memory": str(256 * 1024 * 1024)}
    assert container["resources"] == {"limits": limits, "requests": {"memory": str(64 * 1024 * 1024)}}
    [secret] = kinds["Secret"]
    assert base64.b64decode(secret["data"]["db_password"]).decode() == PLACEHOLDER
    assert secret["metadata"]["annotations"]["mypaas.io/placeholders"] == "db_password"
    config_maps = {d["metadata"]["name"]: d["data"] for d in kinds["ConfigMap"]}
    assert config_maps == {"shop-config": {"LOG_LEVEL": "info"}, "shop-configs": {"site": "greeting=hi"}}


@pytest.mark.parametrize(
    "compose",
    [
        PLAIN,
        "services:\n  api:\n    image: web:1\n    command: [x]\n    ports: ['9000:9000/udp', '8000']\n",
        "services:\n  w:\n    image: web:1\n    command: [x]\n    healthcheck: {disable: true}\n",
    ],
)
def test_other_apps_give_valid_manifests(compose: str) -> None:
    valid(manifests(KubeApp("app", parse_compose(compose), domains=("app.example.com",))))


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_the_api_exports_a_deployed_app(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    value = base64.b64encode(b"pw-123").decode()
    assert api.put("/api/v1/apps/shop/secrets/db_password", json={"value": value}).is_success
    deploy(api, "shop", compose=FULL)
    settle(platform, backend)
    r = api.get("/api/v1/export", params={"app": "shop", "format": "kubernetes"})
    assert r.status_code == 200, r.text
    docs = list(yaml.safe_load_all(r.json()["document"]))
    valid(docs)
    assert "pw-123" not in r.text
    r = api.get("/api/v1/export", params={"app": "shop", "format": "kubernetes", "include_secrets": True})
    [secret] = [d for d in yaml.safe_load_all(r.json()["document"]) if d["kind"] == "Secret"]
    assert base64.b64decode(secret["data"]["db_password"]) == b"pw-123"
    r = api.get("/api/v1/export", params={"format": "kubernetes"})
    assert r.status_code == 400 and r.json()["field"] == "app"
    r = api.get("/api/v1/export", params={"app": "shpo", "format": "kubernetes"})
    assert r.status_code == 404 and "shop" in r.json()["error"]
    assert api.put("/api/v1/apps/later/secrets/x", json={"value": value}).is_success  # made, no release
    r = api.get("/api/v1/export", params={"app": "later", "format": "kubernetes"})
    assert r.status_code == 409 and r.json()["error"] == "app later has no release yet: deploy it first"


def test_an_empty_spec_gives_nothing() -> None:
    assert manifests(KubeApp("x", AppSpec(services={}))) == []
