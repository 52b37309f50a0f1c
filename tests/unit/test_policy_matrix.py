"""The policy matrix: every operation of the real API x every kind of caller -> allowed, or 401/403 with a
one-line reason. The expectation is worked out here from each operation's rule in policy.RULES (its scope
and least role), not by asking the policy; an operation without a rule, or a rule without an operation,
fails. Each operation gets a fresh platform (team "a" owns app "shop", team "b" owns "blog"), so that an
allowed destructive call (rm, stop, reconcile) cannot change what a later caller gets.

Requests carry no body: a caller that may call gets the operation's own answer (often 400 for the missing
body), never 401/403; one that may not is refused before the body is read."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.manager.identity.policy import RULES, Role, Rule, Scope
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.routes import api_routes
from tests.unit.teams import MEMBERS, PRINCIPALS, deploy_apps, make_cast, make_teams

# public operations that check credentials of their own (the registry's Basic auth, a password): their
# 401 is their answer, not the policy's
OWN_CREDENTIALS = frozenset({"registry_token", "login", "git_hook"})  # git_hook: the forge's signature
# listing operations that then write into what the request names (image import: the repository
# ``shop/web`` of app shop): a caller also needs the rule's role on that app, as for an app rule
WRITES_NAMED_APP = frozenset({"import_image"})

TARGET_TEAM, TARGET_APP = "a", "shop"  # what the path names: an app of team a
PATH_VALUES = {
    "name": TARGET_APP,
    "team": TARGET_TEAM,
    "secret": "KEY",
    "domain": "x.example.com",
    "service": "web",
    "ref": "shop/web:1",
    "user": "zed",  # a user of no team: removing or changing it leaves every caller as it was
}
QUERY = {"import_image": {"ref": "shop/web:1"}}
PATH_OVERRIDES = {"revoke_token": {"ref": "999"}}  # a token id (an image's ref holds slashes)


def expected(rule: Rule, who: str, operation: str = "") -> int | None:  # noqa: PLR0911 - a return per row of the table
    """What the rule gives ``who`` (None: allowed; else the status) on app "shop" of team "a"."""
    if rule.scope == Scope.PUBLIC:
        return None
    if who in ("anonymous", "expired", "revoked"):
        return 401
    if who == "pull":
        return 403  # the hosts' token pulls images and nothing else
    if rule.scope == Scope.USER or who == "admin":
        return None
    if rule.scope == Scope.ADMIN:
        return 403
    _, team, role, app = MEMBERS[who]
    need = rule.role or Role.VIEWER
    if role < need:
        return 403
    if rule.scope == Scope.LISTING and operation not in WRITES_NAMED_APP:
        return None
    if rule.scope in (Scope.APP, Scope.LISTING):
        return None if team == TARGET_TEAM and app in (None, TARGET_APP) else 403
    return None if team == TARGET_TEAM and app is None else 403  # Scope.TEAM


def app_routes() -> dict[str, APIRoute]:
    """Every route of the API app, by its operation name (the routes do not depend on the platform's
    state: a throwaway platform over the fakes lists them)."""
    with tempfile.TemporaryDirectory() as home:
        nodes = FakeNodes()
        parts = Components(
            backend=FakeBackend(), router=FakeRouter(), probe=lambda _: True, nodes=lambda: nodes
        )
        app = create_app(build_platform(Settings(home=Path(home), registry_enabled=False), parts))
        return {route.name: route for route in api_routes(app)}


ROUTES = app_routes()


def test_every_route_has_a_rule_and_every_rule_a_route() -> None:
    names = list(ROUTES)
    assert len(names) == len(set(names)), "two routes share an operation name"
    assert sorted(set(names) - set(RULES)) == [], "operations without an access rule"
    assert sorted(set(RULES) - set(names)) == [], "rules without an operation"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def path_of(route: APIRoute, op_id: str) -> str:
    values = {**PATH_VALUES, "op_id": op_id, **PATH_OVERRIDES.get(route.name, {})}
    path = route.path_format
    for param in route.param_convertors:
        path = path.replace("{" + param + "}", values.get(param, "x"))
    assert "{" not in path, path
    return path


CASES = sorted(RULES)


@pytest.mark.parametrize("operation", CASES)
def test_matrix(operation: str, platform: Platform, api: TestClient) -> None:
    route, rule = ROUTES[operation], RULES[operation]
    make_teams(platform)
    platform.identity.add_user("zed", None)
    deploy_apps(api, {TARGET_APP: TARGET_TEAM})
    cast = make_cast(platform)
    op_id = api.get(f"/api/v1/apps/{TARGET_APP}").json()["operation"]
    [method] = route.methods
    path = path_of(route, op_id)
    got = {}
    for who in PRINCIPALS:
        r = TestClient(api.app).request(method, path, params=QUERY.get(operation), headers=cast.headers(who))
        got[who] = r.status_code
        want = expected(rule, who, operation)
        if want is None:
            allowed = r.status_code not in (401, 403) or (
                operation in OWN_CREDENTIALS and r.status_code == 401
            )
            assert allowed, f"{operation} as {who}: {r.status_code} {r.text}"
            assert r.status_code != 500, f"{operation} as {who}: {r.text}"
            continue
        assert r.status_code == want, f"{operation} as {who}: want {want}, got {r.status_code} {r.text}"
        body = r.json()
        named = ("authorization", "ref") if operation in WRITES_NAMED_APP else ("authorization",)
        assert body["field"] in named and body["error"], body
        assert "\n" not in body["error"] and len(body["error"]) < 200, body
