"""What each caller sees: listings and the monitor's outputs hold only the apps of the caller's teams (all
of them, and the platform's own figures and events, for the platform admin); an unknown app's "did you
mean" names only an app the caller sees; the status page names no app. Real API over the fake backend."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import Totals
from tests.unit.teams import Cast, deploy_apps, make_cast, make_teams

APPS = {"shop": "a", "cart": "a", "blog": "b"}


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def cast(platform: Platform, api: TestClient) -> Cast:
    make_teams(platform)
    deploy_apps(api, APPS)
    return make_cast(platform)


def names(r: object) -> list[str]:
    assert getattr(r, "status_code", None) == 200, getattr(r, "text", r)
    return sorted(item["name"] for item in r.json())  # type: ignore[attr-defined]


def test_apps_are_listed_to_their_teams_only_with_their_team(api: TestClient, cast: Cast) -> None:
    assert names(cast.client(api, "admin").get("/api/v1/apps")) == ["blog", "cart", "shop"]
    assert names(cast.client(api, "viewer").get("/api/v1/apps")) == ["cart", "shop"]
    assert names(cast.client(api, "other_deployer").get("/api/v1/apps")) == ["blog"]
    assert names(cast.client(api, "app_token").get("/api/v1/apps")) == ["shop"]
    teams = {a["name"]: a["team"] for a in api.get("/api/v1/apps").json()}
    assert teams == APPS
    assert cast.client(api, "viewer").get("/api/v1/apps/shop").json()["team"] == "a"


def test_another_teams_app_is_refused_and_a_typo_names_only_apps_one_sees(
    api: TestClient, cast: Cast
) -> None:
    viewer = cast.client(api, "viewer")
    r = viewer.get("/api/v1/apps/blog")
    assert r.status_code == 403 and r.json()["field"] == "authorization"
    assert "\n" not in r.json()["error"]
    assert viewer.get("/api/v1/apps/blgo").json() == {"error": "no app named 'blgo'", "field": "app"}
    assert viewer.get("/api/v1/apps/shpo").json()["error"] == "no app named 'shpo'; did you mean 'shop'?"
    assert api.get("/api/v1/apps/blgo").json()["error"] == "no app named 'blgo'; did you mean 'blog'?"
    # the same through a listing narrowed to one app, and an alert rule
    assert cast.client(api, "other_deployer").get("/api/v1/volumes", params={"app": "shpo"}).json() == {
        "error": "no app named 'shpo'",
        "field": "app",
    }
    r = cast.client(api, "other_deployer").get("/api/v1/events", params={"app": "shop"})
    assert r.status_code == 403


def test_events_of_other_teams_apps_and_of_the_platform_are_not_shown(
    api: TestClient, cast: Cast, platform: Platform
) -> None:
    events = platform.monitoring.events
    events.record(None, "host_down", "host h1 does not answer", {"host": "h1"})
    events.record("blog", "custom", "about blog")
    events.record("shop", "custom", "about shop")
    events.flush()

    def apps_of(who: str) -> set[str | None]:
        r = cast.client(api, who).get("/api/v1/events", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return {e["app"] for e in r.json()}

    assert apps_of("viewer") == {"shop", "cart"}
    assert apps_of("other_deployer") == {"blog"}
    assert apps_of("app_token") == {"shop"}
    assert apps_of("admin") == {None, "shop", "cart", "blog"}


def sample(app: str, instance: str) -> Sample:
    return Sample(at=time.time(), app=app, service="web", instance=instance, mem_bytes=1000)


@pytest.fixture
def figures(platform: Platform) -> None:
    platform.monitoring.sampler.latest = {
        "host": sample("", "host"),
        "i1": sample("shop", "shop-web-1"),
        "i2": sample("blog", "blog-web-1"),
    }
    platform.monitoring.requests.totals.update({"shop": Totals(5, 0, 0.5), "blog": Totals(7, 1, 0.7)})


@pytest.mark.usefixtures("figures")
def test_metrics_now_holds_the_callers_apps_and_host_figures_for_the_admin(
    api: TestClient, cast: Cast
) -> None:
    mine = cast.client(api, "viewer").get("/api/v1/metrics/now").json()
    assert [i["app"] for i in mine["instances"]] == ["shop"]
    assert mine["host"] is None and mine["hosts"] == [] and mine["hidden"] == ["host", "hosts"]
    everything = api.get("/api/v1/metrics/now").json()
    assert {i["app"] for i in everything["instances"]} == {"shop", "blog"}
    assert everything["host"] is not None


@pytest.mark.usefixtures("figures")
def test_prometheus_series_are_filtered_by_the_app_label(api: TestClient, cast: Cast) -> None:
    text = cast.client(api, "viewer").get("/metrics").text
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert 'mypaas_instance_memory_bytes{app="shop",service="web",instance="shop-web-1"} 1000' in series
    assert 'mypaas_app_requests_total{app="shop"} 5' in series
    assert not [line for line in series if 'app="blog"' in line]
    platform_series = ("mypaas_host_", "mypaas_apps", "mypaas_instances")
    assert not [line for line in series if line.startswith(platform_series)]
    assert "mypaas_up 1" in series
    admin = api.get("/metrics").text
    assert 'app="blog"' in admin and "mypaas_host_memory_used_bytes" in admin and "mypaas_apps " in admin


def test_alert_rules_about_an_app_need_its_deployer_and_rules_about_every_app_the_admin(
    api: TestClient, cast: Cast
) -> None:
    hook = "http://hooks.example:9/hook"
    every_app = {"name": "all", "kind": "app_down", "webhook": hook}
    assert api.post("/api/v1/alerts", json=every_app).status_code == 201
    blog = {"name": "blog-down", "kind": "app_down", "webhook": hook, "app": "blog"}
    assert cast.client(api, "other_deployer").post("/api/v1/alerts", json=blog).status_code == 201
    deployer = cast.client(api, "deployer")
    shop = {"name": "shop-down", "kind": "app_down", "webhook": hook, "app": "shop"}
    assert deployer.post("/api/v1/alerts", json=shop).status_code == 201

    r = deployer.post("/api/v1/alerts", json={"name": "x", "kind": "app_down", "webhook": hook})
    assert r.status_code == 403 and r.json()["error"] == "add_alert needs a platform admin"
    r = deployer.post("/api/v1/alerts", json={**blog, "name": "y"})
    assert r.status_code == 403 and "'blog'" in r.json()["error"]
    r = cast.client(api, "viewer").post("/api/v1/alerts", json={**shop, "name": "z"})
    assert r.status_code == 403 and r.json()["error"] == "add_alert needs the deployer role in a team"
    hosts = {**shop, "name": "hosts", "kind": "host_unreachable"}  # about the hosts, whatever its app
    r = deployer.post("/api/v1/alerts", json=hosts)
    assert r.status_code == 403 and r.json()["error"] == "add_alert needs a platform admin"
    assert api.post("/api/v1/alerts", json=hosts).status_code == 201
    assert deployer.delete("/api/v1/alerts/hosts").status_code == 403
    assert deployer.delete("/api/v1/alerts/blog-down").status_code == 403
    assert deployer.delete("/api/v1/alerts/all").status_code == 403

    assert names(cast.client(api, "viewer").get("/api/v1/alerts")) == ["shop-down"]
    assert names(cast.client(api, "other_deployer").get("/api/v1/alerts")) == ["blog-down"]
    assert names(api.get("/api/v1/alerts")) == ["all", "blog-down", "hosts", "shop-down"]
    assert deployer.delete("/api/v1/alerts/shop-down").status_code == 204


def test_volumes_of_the_callers_apps_and_kept_volumes_for_the_admin(
    api: TestClient, cast: Cast, platform: Platform, backend: FakeBackend
) -> None:
    for app in ("shop", "blog", "gone"):
        backend.ensure_volume(platform.platform_id, app, "data")
    assert names(cast.client(api, "viewer").get("/api/v1/volumes")) == ["mypaas_shop_data"]
    assert names(cast.client(api, "other_deployer").get("/api/v1/volumes")) == ["mypaas_blog_data"]
    assert names(api.get("/api/v1/volumes")) == ["mypaas_blog_data", "mypaas_gone_data", "mypaas_shop_data"]


def test_host_operations_are_the_admins_and_a_removed_apps_its_makers(
    api: TestClient, cast: Cast, platform: Platform
) -> None:
    with platform.sessions.begin() as s:
        host_op = platform.operations.new(s, app="", kind="host-add", user="admin").id
        gone_op = platform.operations.new(s, app="gone", kind="remove", user="dan").id
    viewer, deployer = cast.client(api, "viewer"), cast.client(api, "deployer")
    r = viewer.get(f"/api/v1/operations/{host_op}")
    assert r.status_code == 403 and r.json()["error"] == "operation needs a platform admin"
    assert api.get(f"/api/v1/operations/{host_op}").status_code == 200
    assert deployer.get(f"/api/v1/operations/{gone_op}").status_code == 200  # dan started it
    r = viewer.get(f"/api/v1/operations/{gone_op}")
    assert r.status_code == 403 and "only its maker or a platform admin" in r.json()["error"]
    shop_op = api.get("/api/v1/apps/shop").json()["operation"]
    assert viewer.get(f"/api/v1/operations/{shop_op}").status_code == 200
    assert cast.client(api, "other_deployer").get(f"/api/v1/operations/{shop_op}").status_code == 403
    assert viewer.get("/api/v1/operations/nope").status_code == 404


def test_the_status_page_shows_component_health_and_no_app(api: TestClient, cast: Cast) -> None:
    page = TestClient(api.app).get("/status")
    assert page.status_code == 200
    assert "Components" in page.text and "mypaas login" in page.text
    for app in APPS:
        assert app not in page.text
    assert "apps," not in page.text  # not even how many


def test_a_deploy_naming_another_team_for_an_existing_app_is_refused(api: TestClient, cast: Cast) -> None:
    r = api.post("/api/v1/apps/shop/deploys", params={"team": "b"}, json={"image": "web:1"})
    assert r.status_code == 409
    assert r.json() == {"error": "app 'shop' belongs to team 'a', not 'b'", "field": "team"}
    again = api.post("/api/v1/apps/shop/deploys", params={"team": "a"}, json={"image": "web:1"})
    assert again.status_code == 202


def test_an_admin_in_several_teams_names_the_team_of_a_new_app(
    api: TestClient, cast: Cast, platform: Platform
) -> None:
    platform.identity.add_member("a", "admin", Role.DEPLOYER)
    r = api.post("/api/v1/apps/new/deploys", json={"image": "web:1"})
    assert r.status_code == 400 and r.json()["field"] == "team"
    assert r.json()["error"] == "choose the app's team with --team (your teams: a, default)"
