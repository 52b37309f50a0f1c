"""`mypaas export` / `mypaas apply` through the REST API over the fake backend: a deterministic export, the
diff (create, change, remove only with prune, no-op), secrets by reference only, and bad files refused
with one line before anything is applied."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.declare.document import parse
from mypaas.manager.declare.plan import plan
from mypaas.manager.platform import Platform
from tests.unit.cli.support import deploy, settle
from tests.unit.teams import deploy_apps, make_cast, make_teams

SHOP = """
services:
  web:
    image: web:1
    ports: ["8080"]
    secrets: [db_password]
  worker:
    image: web:1
    command: ["sleep", "1000"]
secrets:
  db_password: {external: true}
"""


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    fake.add_image("web:2", exposed=(80,))
    return fake


@pytest.fixture
def running(api: TestClient, platform: Platform, backend: FakeBackend) -> TestClient:
    """Apps shop (two services, a secret, config, a domain, autoscaling) and blog, rolled out."""
    r = api.put("/api/v1/apps/shop/secrets/db_password", json={"value": base64.b64encode(b"pw").decode()})
    assert r.is_success, r.text
    deploy(api, "shop", compose=SHOP)
    deploy(api, "blog", image="web:1", port=80)
    settle(platform, backend)
    assert api.patch("/api/v1/apps/shop/config", json={"set": {"LOG_LEVEL": "info"}}).is_success
    assert api.post("/api/v1/apps/shop/domains", json={"domain": "shop.example.com"}).is_success
    body = {"min": 1, "max": 3, "target_cpu_pct": 70}
    assert api.put("/api/v1/apps/shop/autoscale/web", json=body).is_success
    settle(platform, backend)
    return api


def export(api: TestClient, *apps: str) -> str:
    r = api.get("/api/v1/export", params={"app": list(apps)})
    assert r.status_code == 200, r.text
    return str(r.json()["document"])


def apply(api: TestClient, document: str, status: int = 202, **flags: Any) -> dict[str, Any]:
    r = api.post("/api/v1/apply", json={"document": document, **flags})
    assert r.status_code == status, r.text
    return dict(r.json())


def lines(answer: dict[str, Any]) -> list[str]:
    return [f"{c['op']} {c['path']}" for c in answer["changes"]]


def test_export_is_deterministic_and_holds_no_secret_value(running: TestClient) -> None:
    text = export(running)
    assert text == export(running)
    assert text.startswith("apiVersion: mypaas/v1\nkind: Platform\n")
    doc = yaml.safe_load(text)
    shop = doc["apps"]["shop"]
    assert shop["scale"] == {"web": 1, "worker": 1}
    assert shop["config"] == {"LOG_LEVEL": "info"}
    assert shop["secrets"] == [{"secret": "db_password"}]
    assert shop["domains"] == ["shop.example.com"]
    assert shop["autoscale"]["web"]["max"] == 3
    assert "image_id" not in text and "digest" not in text and "pw" not in text.split()
    assert list(doc["apps"]) == ["blog", "shop"]
    assert yaml.safe_load(export(running, "blog"))["apps"].keys() == {"blog"}


def test_apply_of_an_export_changes_nothing(running: TestClient) -> None:
    answer = apply(running, export(running), status=200, dry_run=True)
    assert answer["empty"] and answer["changes"] == []


def test_the_diff_then_the_apply(running: TestClient, platform: Platform, backend: FakeBackend) -> None:
    doc = yaml.safe_load(export(running))
    shop = doc["apps"]["shop"]
    shop["scale"]["worker"] = 2
    shop["config"]["LOG_LEVEL"] = "debug"
    shop["config"]["NEW"] = "1"
    shop["domains"] = []
    shop["spec"]["services"]["worker"]["image"] = "web:2"
    doc["apps"]["new"] = {"spec": {"services": {"web": {"image": "web:1", "expose": [80]}}}}
    del doc["apps"]["blog"]
    text = yaml.safe_dump(doc)

    kept = apply(running, text, status=200, dry_run=True)
    assert lines(kept) == [
        "+ apps.new",
        "~ apps.shop.spec",
        "~ apps.shop.scale.worker",
        "~ apps.shop.config.LOG_LEVEL",
        "+ apps.shop.config.NEW",
    ]
    assert kept["kept"] == ["apps.blog", "apps.shop.domains.shop.example.com"]
    assert "worker (image)" in kept["changes"][1]["detail"]

    pruned = apply(running, text, status=200, dry_run=True, prune=True)
    assert lines(pruned)[0] == "- apps.blog" and "- apps.shop.domains.shop.example.com" in lines(pruned)

    done = apply(running, text, prune=True)
    assert len(done["applied"]) == len(pruned["changes"])
    settle(platform, backend, passes=8)
    assert apply(running, text, status=200, dry_run=True, prune=True)["empty"]
    assert running.get("/api/v1/apps/shop/config").json() == {"LOG_LEVEL": "debug", "NEW": "1"}
    assert running.get("/api/v1/apps/shop").json()["services"]["worker"]["replicas"] == 2
    assert running.get("/api/v1/apps/blog").json()["state"] == "deleting"


def test_a_missing_secret_is_named_and_nothing_is_applied(running: TestClient) -> None:
    doc = yaml.safe_load(export(running))
    doc["apps"]["shop"]["secrets"].append({"secret": "api_token"})
    doc["apps"]["shop"]["scale"]["worker"] = 3
    r = running.post("/api/v1/apply", json={"document": yaml.safe_dump(doc)})
    assert r.status_code == 400
    assert "secret 'api_token' is not set" in r.json()["error"]
    assert running.get("/api/v1/apps/shop").json()["services"]["worker"]["replicas"] == 1


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda d: d["apps"]["shop"].update(scael={"web": 2}), "unknown key 'scael' at apps.shop.scael"),
        (
            lambda d: d["apps"]["shop"]["spec"]["services"]["web"].update(imgae="x"),
            "unknown key 'imgae' at apps.shop.spec.services.web.imgae",
        ),
        (lambda d: d["apps"].update(Bad_Name=d["apps"]["blog"]), "invalid apps.Bad_Name name 'Bad_Name'"),
        (lambda d: d.update(kind="Other"), "expected apiVersion: mypaas/v1 and kind: Platform"),
        (lambda d: d["apps"]["shop"]["scale"].update(db=1), "the spec has no service 'db'"),
        (lambda d: d["apps"]["shop"].update(team="ops"), "apply does not move an app to another team"),
        (
            lambda d: d["apps"]["shop"]["spec"]["services"]["web"].update(privileged=True),
            "apps.shop.spec.services.web.privileged: apply does not change this",
        ),
    ],
)
def test_bad_files_are_refused_in_one_line(running: TestClient, edit: Any, said: str) -> None:
    doc = yaml.safe_load(export(running))
    edit(doc)
    r = running.post("/api/v1/apply", json={"document": yaml.safe_dump(doc), "prune": True})
    assert r.status_code == 400, r.text
    assert said in r.json()["error"] and "\n" not in r.json()["error"]
    assert running.get("/api/v1/apps/blog").json()["state"] == "running"


def test_plan_is_pure_and_prunes_only_when_asked() -> None:
    have = parse(
        "apiVersion: mypaas/v1\nkind: Platform\napps:\n"
        "  a:\n    spec: {services: {web: {image: x}}}\n"
        "    config: {K: v}\nalerts:\n  down: {kind: app_down, webhook: 'https://h.example/x'}\n"
    )
    want = parse("apiVersion: mypaas/v1\nkind: Platform\nalerts: {}\n")
    assert [f"{c.op} {c.path}" for c in plan(want, have, prune=True).changes] == ["- apps.a", "- alerts.down"]
    kept = plan(want, have, prune=False)
    assert kept.empty and kept.kept == ["apps.a", "alerts.down"]
    assert plan(have, have, prune=True).empty
    untouched = parse("apiVersion: mypaas/v1\nkind: Platform\n")  # no alerts key: not managed
    assert [c.path for c in plan(untouched, have, prune=True).changes] == ["apps.a"]


def test_a_member_exports_and_applies_only_their_teams_apps(api: TestClient, platform: Platform) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a", "blog": "b"})
    cast = make_cast(platform)
    dan, vic = cast.client(api, "deployer"), cast.client(api, "viewer")
    mine = export(dan)
    assert set(yaml.safe_load(mine)["apps"]) == {"shop"} and "hosts" not in yaml.safe_load(mine)
    # the admin's whole file: blog is team b's, so dan's apply of it is refused before anything changes
    everything = yaml.safe_load(export(api))
    everything["apps"]["shop"]["scale"]["web"] = 2
    everything["apps"]["blog"]["scale"]["web"] = 2
    text = yaml.safe_dump({k: v for k, v in everything.items() if k != "hosts"})
    r = dan.post("/api/v1/apply", json={"document": text})
    assert r.status_code == 403, r.text
    assert api.get("/api/v1/apps/shop").json()["services"]["web"]["replicas"] == 1
    # --prune from dan's own file never touches blog (he does not see it)
    assert apply(dan, mine, status=200, dry_run=True, prune=True)["empty"]
    assert vic.post("/api/v1/apply", json={"document": mine, "dry_run": True}).status_code == 403


def test_a_member_gets_no_more_alert_rights_through_apply_than_through_alerts(
    api: TestClient, platform: Platform
) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    dan = make_cast(platform).client(api, "deployer")
    mine = yaml.safe_load(export(dan))
    rule = {"kind": "app_down", "app": "shop", "webhook": "http://10.0.0.9/hook", "for_s": 60}
    # a webhook to a private address is the platform admin's to allow (POST /alerts refuses it too)
    private = {**mine, "alerts": {"pager": {**rule, "allow_private": True}}}
    r = dan.post("/api/v1/apply", json={"document": yaml.safe_dump(private)})
    assert r.status_code == 403, r.text
    # a rule about the hosts fires about no app: naming dan's app does not make it his
    hosts = {**mine, "alerts": {"hosts": {**rule, "kind": "host_unreachable"}}}
    r = dan.post("/api/v1/apply", json={"document": yaml.safe_dump(hosts)})
    assert r.status_code == 403, r.text
    assert api.get("/api/v1/alerts").json() == []


HOOK = "https://93.184.216.34/hook"  # a public address: no name to resolve


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            lambda d: d["apps"]["shop"]["scale"].update(web=500),
            "apps.shop.scale.web: replicas must be between 0 and 100, not 500",
        ),
        (
            lambda d: d["apps"]["shop"]["autoscale"]["web"].update(min=5, max=2),
            "apps.shop.autoscale.web: max (2) is below min (5)",
        ),
        (
            lambda d: d["apps"]["shop"]["autoscale"].update(worker={"min": 1, "max": 2}),
            "apps.shop.autoscale.worker: give a target",
        ),
        (
            lambda d: d["apps"]["shop"]["autoscale"].update(
                worker={"min": 1, "max": 2, "target_rps_per_replica": 5}
            ),
            "apps.shop.autoscale.worker: --rps needs a routed service",
        ),
        (
            lambda d: d.update(alerts={"pager": {"kind": "nope", "webhook": HOOK}}),
            "alerts.pager.kind: unknown alert kind 'nope'",
        ),
        (
            lambda d: d.update(alerts={"pager": {"kind": "app_down", "webhook": "http://10.0.0.9/hook"}}),
            "alerts.pager.webhook: webhook refused",
        ),
        (
            lambda d: d.update(alerts={"pager": {"kind": "app_down", "app": "nosuch", "webhook": HOOK}}),
            "alerts.pager.app: no app named 'nosuch'",
        ),
    ],
)
def test_every_change_is_checked_before_any_is_made(running: TestClient, edit: Any, said: str) -> None:
    doc = yaml.safe_load(export(running))
    doc["apps"]["shop"]["config"]["LOG_LEVEL"] = "debug"  # a good change, planned before the bad one
    doc["apps"]["new"] = {"spec": {"services": {"web": {"image": "web:1", "expose": [80]}}}}
    edit(doc)
    for dry_run in (True, False):
        r = running.post("/api/v1/apply", json={"document": yaml.safe_dump(doc), "dry_run": dry_run})
        assert r.status_code in (400, 404), r.text
        assert said in r.json()["error"] and "\n" not in r.json()["error"], r.text
    assert running.get("/api/v1/apps/shop/config").json() == {"LOG_LEVEL": "info"}
    assert running.get("/api/v1/apps/new").status_code == 404
    assert running.get("/api/v1/alerts").json() == []


def test_a_changed_alert_rule_is_updated_in_place(running: TestClient, platform: Platform) -> None:
    rule = {"name": "pager", "kind": "app_down", "app": "shop", "webhook": HOOK}
    assert running.post("/api/v1/alerts", json=rule).status_code == 201, rule
    store = platform.automation.alerts.store
    before = store.list()[0]
    store.save_state("pager", "shop", since=1.0, firing=True)  # it fires now
    doc = yaml.safe_load(export(running))
    doc["alerts"]["pager"]["for_s"] = 30
    answer = apply(running, yaml.safe_dump(doc))
    assert answer["applied"] == ["~ alerts.pager"]
    after = store.list()[0]
    assert after.for_s == 30 and after.created_at == before.created_at
    assert store.states() == {("pager", "shop"): (1.0, True)}  # still firing: its webhook is not sent again


def test_an_error_restated_with_its_path_keeps_its_kind_but_no_hint() -> None:
    from mypaas.errors import Conflict, NotFound, UnknownApp, restated

    unknown = restated(UnknownApp("shpo", ["shop"]), lambda text: f"alerts.pager.app: {text}")
    assert type(unknown) is NotFound and unknown.status == 404 and unknown.field == "app"
    assert unknown.message == "alerts.pager.app: no app named 'shpo'"  # "did you mean" is the API's to narrow
    busy = restated(Conflict("app shop is busy", field="app"), lambda text: f"x: {text}", "apps.shop")
    assert type(busy) is Conflict and busy.message == "x: app shop is busy" and busy.field == "apps.shop"
