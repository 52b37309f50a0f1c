"""Edge cases of the policy (``decide``, ``Principal``) and of the principals the identity service makes:
an app token used on another app, a scoped token never above its user's role, a membership taken away
counting from the next request, what a listing shows whom."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.errors import Forbidden, Unauthorized
from mypaas.manager.identity.policy import (
    RULES,
    Principal,
    Role,
    decide,
    decide_app_or_platform,
    decide_operation,
    visible,
    visible_apps,
)
from mypaas.manager.platform import Platform
from tests.unit.teams import deploy_apps, make_cast, make_teams

APP_TOKEN = Principal(user="dan", token="ci", roles={"a": Role.DEPLOYER}, app="shop")
VIEWER = Principal(user="vic", token="t", roles={"a": Role.VIEWER})
ADMIN = Principal(user="admin", token="file", admin=True, roles={"default": Role.OWNER})
PULL = Principal(user="", token="hosts-pull", pull_only=True)


def refused(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(Forbidden) as exc:
        call(*args, **kwargs)  # type: ignore[operator]
    assert exc.value.field == "authorization"
    return exc.value.message


def test_an_app_token_is_for_its_app_only() -> None:
    decide(RULES["deploy"], APP_TOKEN, operation="deploy", team="a", app="shop")
    message = refused(decide, RULES["get_app"], APP_TOKEN, operation="get_app", team="a", app="cart")
    assert message == "this token is for app 'shop' only"
    assert refused(decide, RULES["add_member"], APP_TOKEN, operation="add_member", team="a").startswith(
        "add_member needs the owner role in team 'a'"
    )
    assert APP_TOKEN.role_on("a") is None and APP_TOKEN.role_on("a", "shop") == Role.DEPLOYER
    assert not visible(APP_TOKEN, "a", "cart") and visible(APP_TOKEN, "a", "shop")
    assert visible_apps(APP_TOKEN, {"shop": "a", "cart": "a", "blog": "b"}) == {"shop"}


def test_roles_are_ordered_and_the_reason_says_what_the_caller_has() -> None:
    message = refused(decide, RULES["scale"], VIEWER, operation="scale", team="a", app="shop")
    assert message == "scale on app 'shop' needs the deployer role (you are viewer)"
    message = refused(decide, RULES["scale"], VIEWER, operation="scale", team="b", app="blog")
    assert message == "scale on app 'blog' needs the deployer role (you have no role there)"
    decide(RULES["logs"], VIEWER, operation="logs", team="a", app="shop")


def test_no_caller_is_401_and_the_pull_token_pulls_only() -> None:
    with pytest.raises(Unauthorized):
        decide(RULES["status"], None, operation="status")
    decide(RULES["health"], None, operation="health")
    assert refused(decide, RULES["status"], PULL, operation="status") == (
        "this token can only pull images from the registry"
    )
    assert not visible(PULL, "a", "shop") and visible_apps(PULL, {"shop": "a"}) == set()


def test_what_is_about_no_app_or_a_removed_app_is_the_admins() -> None:
    assert visible(ADMIN, None, None) and visible(ADMIN, "b", "blog") and visible_apps(ADMIN, {}) is None
    assert not visible(VIEWER, None, None) and not visible(VIEWER, None, "gone")
    decide_app_or_platform(ADMIN, Role.DEPLOYER, operation="add_alert", team=None, app=None)
    assert refused(
        decide_app_or_platform, APP_TOKEN, Role.DEPLOYER, operation="add_alert", team=None, app=None
    ) == ("add_alert needs a platform admin")
    decide_operation(VIEWER, app="shop", team="a", by="dan")
    assert (
        refused(decide_operation, VIEWER, app="", team=None, by="vic") == "operation needs a platform admin"
    )
    decide_operation(VIEWER, app="gone", team=None, by="vic")  # its maker follows it to the end
    refused(decide_operation, APP_TOKEN, app="gone", team=None, by="dan")  # not the token's app


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_a_scoped_token_is_never_above_its_users_role_and_follows_it(
    platform: Platform, api: TestClient
) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    identity = platform.identity
    admin = identity.principal_of(platform.admin_token)
    # an admin may make dan an owner token of team a, but dan is a deployer there: it acts as a deployer
    secret = identity.create_token(admin, "big", user="dan", team="a", role=Role.OWNER).secret
    assert identity.principal_of(secret).roles == {"a": Role.DEPLOYER}
    identity.add_member("a", "dan", Role.VIEWER)  # demoted: the token too, from the next request on
    assert identity.principal_of(secret).roles == {"a": Role.VIEWER}
    # and dan cannot make a token above what dan has
    with pytest.raises(Forbidden):
        identity.create_token(identity.principal_of(secret), "bigger", team="a", role=Role.DEPLOYER)


def test_a_membership_taken_away_counts_from_the_next_request(platform: Platform, api: TestClient) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    cast = make_cast(platform)
    viewer = cast.client(api, "viewer")
    assert viewer.get("/api/v1/apps/shop").status_code == 200
    platform.identity.remove_member("a", "vic")
    r = viewer.get("/api/v1/apps/shop")
    assert r.status_code == 403 and r.json()["error"] == (
        "get_app on app 'shop' needs the viewer role (you have no role there)"
    )
    assert viewer.get("/api/v1/apps").status_code == 403  # in no team any more: no listing either
