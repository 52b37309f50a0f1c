"""Users, teams, members, tokens and logging in through the REST API over the fake backend: every route,
who may call it, and one clear 4xx (naming the field) for each kind of bad input. No answer ever holds a
password; a token's secret is answered once, when it is made."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from mypaas.api import identity as identity_api
from mypaas.composer.fake import FakeBackend
from mypaas.errors import Conflict, Unauthorized
from mypaas.manager.identity import passwords
from mypaas.manager.platform import Platform

PW = "correct horse battery"
PW2 = "another long passphrase"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with the least cost (the real one takes 64 MiB and ~0.1 s a hash, by design)."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The throttle's waits before each login is checked (recorded, not slept)."""
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(identity_api, "pause", pause)
    return waited


def as_token(api: TestClient, token: str) -> TestClient:
    """A client of the same API app calling with ``token``."""
    return TestClient(api.app, headers={"Authorization": f"Bearer {token}"})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field, body
    assert "\n" not in body["error"]
    return str(body["error"])


def add_user(api: TestClient, name: str, password: str | None = PW, **more: Any) -> dict[str, Any]:
    return dict(ok(api.post("/api/v1/users", json={"name": name, "password": password, **more}), 201))


def login(api: TestClient, user: str, password: str = PW, **more: Any) -> str:
    answer = ok(api.post("/api/v1/login", json={"user": user, "password": password, **more}))
    return str(answer["token"])


def member(api: TestClient, team: str, user: str, role: str) -> None:
    ok(api.put(f"/api/v1/teams/{team}/members/{user}", json={"role": role}))


@pytest.fixture
def alice(api: TestClient, delays: list[float]) -> TestClient:
    """User alice, deployer in team default, logged in."""
    add_user(api, "alice")
    member(api, "default", "alice", "deployer")
    return as_token(api, login(api, "alice"))


# -- logging in and out -------------------------------------------------------------------------------


def test_login_answers_a_token_once_and_whoami_says_who_and_what(api: TestClient, alice: TestClient) -> None:
    me = ok(alice.get("/api/v1/whoami"))

    assert (me["user"], me["admin"], me["teams"], me["app"]) == (
        "alice",
        False,
        {"default": "deployer"},
        None,
    )
    assert me["token"]["kind"] == "login" and me["token"]["state"] == "active"
    assert me["token"]["expires"] > me["token"]["created"] + 29 * 86400
    listed = ok(alice.get("/api/v1/tokens"))
    assert [t["name"] for t in listed] == [me["token"]["name"]]
    assert all("token" not in t for t in listed)  # the secret is never answered again
    assert PW not in alice.get("/api/v1/users/alice").text + api.get("/api/v1/users").text


def test_a_login_can_be_named_and_given_an_expiry(api: TestClient, alice: TestClient) -> None:
    token = login(api, "alice", name="laptop", expires="12h")

    mine = ok(as_token(api, token).get("/api/v1/whoami"))["token"]
    assert mine["name"] == "laptop"
    assert 11 * 3600 < mine["expires"] - mine["created"] <= 12 * 3600
    refused(
        api.post("/api/v1/login", json={"user": "alice", "password": PW, "expires": "soon"}), 400, "expires"
    )


def test_a_wrong_password_is_one_401_counted_and_logged(
    api: TestClient, alice: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mypaas.identity"):
        error = refused(
            api.post("/api/v1/login", json={"user": "alice", "password": "nope"}), 401, "password"
        )
        unknown = refused(api.post("/api/v1/login", json={"user": "zed", "password": PW}), 401, "password")

    assert error == "wrong user name or password (1 failed recently)"
    assert unknown == "wrong user name or password (2 failed recently)"  # the same source failed twice
    assert [r.getMessage() for r in caplog.records] == [
        "failed login for alice from testclient (1 recently)",
        "failed login for zed from testclient (2 recently)",  # a missing user looks the same
    ]
    assert "nope" not in caplog.text and PW not in caplog.text


def test_failed_logins_slow_the_next_ones_then_are_refused_for_a_while(
    api: TestClient,
    platform: Platform,
    alice: TestClient,
    delays: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(platform.identity.throttle, "limit", 4)
    delays.clear()
    for _ in range(4):
        refused(api.post("/api/v1/login", json={"user": "alice", "password": "wrong"}), 401, "password")

    assert delays == [0.0, 0.25, 0.5, 1.0]  # each failure doubles the wait before the next answer
    error = refused(api.post("/api/v1/login", json={"user": "alice", "password": PW}), 429, "user")
    assert error.startswith("too many failed logins for 'alice' or from testclient: try again in ")


def test_a_login_name_with_control_characters_is_logged_on_one_line(
    api: TestClient, delays: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mypaas.identity"):
        refused(api.post("/api/v1/login", json={"user": "eve\nok", "password": "x"}), 401, "password")
    assert caplog.records[0].getMessage() == "failed login for eve?ok from testclient (1 recently)"


def test_logout_revokes_the_token_it_came_with(api: TestClient, alice: TestClient) -> None:
    other = as_token(api, login(api, "alice"))

    assert ok(alice.post("/api/v1/logout"))["revoked"].startswith("login-")

    assert refused(alice.get("/api/v1/whoami"), 401, "authorization").endswith("was revoked")
    assert ok(other.get("/api/v1/whoami"))["user"] == "alice"  # another session goes on


def test_logout_with_the_admin_token_file_is_refused(api: TestClient) -> None:
    refused(api.post("/api/v1/logout"), 409, "authorization")
    assert ok(api.get("/api/v1/whoami"))["admin"] is True


def test_login_bad_bodies_are_400_naming_the_field(api: TestClient, delays: list[float]) -> None:
    refused(api.post("/api/v1/login", json={"password": PW}), 400, "user")
    refused(api.post("/api/v1/login", json={"user": "alice"}), 400, "password")
    refused(api.post("/api/v1/login", json={"user": "a", "password": "b", "admin": True}), 400, "admin")


# -- users --------------------------------------------------------------------------------------------


def test_users_are_added_listed_and_removed_by_the_admin(api: TestClient) -> None:
    made = add_user(api, "bob", admin=True)
    robot = add_user(api, "robot", None)

    assert made == made | {"name": "bob", "admin": True, "password_set": True, "teams": {}}
    assert robot["password_set"] is False
    listed = {u["name"]: u for u in ok(api.get("/api/v1/users"))}
    assert sorted(listed) == ["admin", "bob", "robot"]
    assert listed["admin"]["teams"] == {"default": "owner"}
    assert ok(api.delete("/api/v1/users/robot")) == {"removed": "robot"}
    assert [u["name"] for u in ok(api.get("/api/v1/users"))] == ["admin", "bob"]


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("", "empty password: a password needs at least 12 characters"),
        ("short-1", "password too weak: a password needs at least 12 characters, 5 of them different"),
        ("aaaaaaaaaaaaaaaa", "password too weak"),
        ("my-name-is-carol!", "password contains the user name"),
    ],
)
def test_a_weak_password_is_refused_by_the_stated_rule(api: TestClient, password: str, says: str) -> None:
    error = refused(api.post("/api/v1/users", json={"name": "carol", "password": password}), 400, "password")
    assert error.startswith(says)
    assert "must not contain the user name" in error


def test_bad_users_are_refused(api: TestClient) -> None:
    add_user(api, "bob")
    assert refused(api.post("/api/v1/users", json={"name": "bob", "password": PW2}), 409, "user") == (
        "user 'bob' already exists"
    )
    refused(api.post("/api/v1/users", json={"name": "Bob!", "password": PW}), 400, "user")
    refused(api.post("/api/v1/users", json={"password": PW}), 400, "name")
    assert refused(api.delete("/api/v1/users/nobody"), 404, "user") == "no user 'nobody'"


def test_the_last_platform_admin_and_a_teams_last_owner_stay(api: TestClient) -> None:
    error = refused(api.delete("/api/v1/users/admin"), 409, "user")
    assert error == "'admin' is the last platform admin: make another admin first"

    add_user(api, "olga")
    ok(api.post("/api/v1/teams", json={"name": "shop", "owner": "olga"}), 201)
    error = refused(api.delete("/api/v1/users/olga"), 409, "user")
    assert error == "'olga' is the last owner of team 'shop': add another owner first"


def test_only_the_platform_admin_manages_users(api: TestClient, alice: TestClient) -> None:
    for response in (
        alice.get("/api/v1/users"),
        alice.post("/api/v1/users", json={"name": "mallory", "password": PW}),
        alice.delete("/api/v1/users/admin"),
    ):
        assert refused(response, 403, "authorization").endswith("needs a platform admin")
    refused(TestClient(api.app).get("/api/v1/users"), 401, "authorization")


def test_a_removed_user_s_tokens_stop_working(api: TestClient, alice: TestClient) -> None:
    ci = ok(alice.post("/api/v1/tokens", json={"name": "ci", "team": "default", "role": "viewer"}), 201)

    ok(api.delete("/api/v1/users/alice"))

    refused(alice.get("/api/v1/whoami"), 401, "authorization")
    refused(as_token(api, ci["token"]).get("/api/v1/apps"), 401, "authorization")


def test_passwd_sets_ones_own_password_and_ends_the_other_logins(api: TestClient, alice: TestClient) -> None:
    other_login = as_token(api, login(api, "alice"))
    ci = ok(alice.post("/api/v1/tokens", json={"name": "ci", "team": "default", "role": "viewer"}), 201)

    assert ok(alice.put("/api/v1/users/alice/password", json={"password": PW2})) == {
        "user": "alice",
        "password_set": True,
    }

    assert ok(alice.get("/api/v1/whoami"))["user"] == "alice"  # the session that changed it goes on
    refused(other_login.get("/api/v1/whoami"), 401, "authorization")
    ok(as_token(api, ci["token"]).get("/api/v1/whoami"))  # a token made on purpose stays
    refused(api.post("/api/v1/login", json={"user": "alice", "password": PW}), 401, "password")
    login(api, "alice", PW2)


def test_passwd_of_another_user_is_the_admins(api: TestClient, alice: TestClient) -> None:
    add_user(api, "bob")
    bob = as_token(api, login(api, "bob"))
    refused(alice.put("/api/v1/users/bob/password", json={"password": PW2}), 403, "user")
    refused(alice.put("/api/v1/users/alice/password", json={"password": "weak"}), 400, "password")

    ok(api.put("/api/v1/users/bob/password", json={"password": PW2}))

    refused(bob.get("/api/v1/whoami"), 401, "authorization")  # the admin's reset ends bob's sessions
    refused(api.put("/api/v1/users/nobody/password", json={"password": PW2}), 404, "user")


# -- teams and members --------------------------------------------------------------------------------


def test_teams_are_added_listed_and_removed(api: TestClient, alice: TestClient) -> None:
    made = ok(api.post("/api/v1/teams", json={"name": "shop", "owner": "alice"}), 201)

    assert made == made | {"name": "shop", "members": {"alice": "owner"}, "apps": 0}
    assert [t["name"] for t in ok(api.get("/api/v1/teams"))] == ["default", "shop"]
    # alice's login sees her teams only; the admin every team
    ok(api.post("/api/v1/teams", json={"name": "ops"}), 201)
    assert [t["name"] for t in ok(alice.get("/api/v1/teams"))] == ["default", "shop"]
    assert ok(api.delete("/api/v1/teams/ops")) == {"removed": "ops"}
    assert [t["name"] for t in ok(api.get("/api/v1/teams"))] == ["default", "shop"]


def test_bad_teams_are_refused(api: TestClient, alice: TestClient) -> None:
    assert refused(api.post("/api/v1/teams", json={"name": "default"}), 409, "team") == (
        "team 'default' already exists"
    )
    refused(api.post("/api/v1/teams", json={"name": "-x-"}), 400, "team")
    refused(api.post("/api/v1/teams", json={"name": "ops", "owner": "nobody"}), 404, "user")
    refused(api.delete("/api/v1/teams/nope"), 404, "team")
    refused(alice.post("/api/v1/teams", json={"name": "mine"}), 403, "authorization")


def test_a_team_with_apps_stays(api: TestClient) -> None:
    ok(api.post("/api/v1/teams", json={"name": "shop"}), 201)
    ok(api.post("/api/v1/apps/web/deploys", params={"team": "shop"}, json={"image": "web:1"}), 202)

    error = refused(api.delete("/api/v1/teams/shop"), 409, "team")
    assert error == "team 'shop' still has apps (web): remove them first"


def test_owners_manage_their_teams_members(api: TestClient, alice: TestClient) -> None:
    add_user(api, "bob")
    ok(api.post("/api/v1/teams", json={"name": "shop", "owner": "alice"}), 201)

    assert ok(alice.put("/api/v1/teams/shop/members/bob", json={"role": "viewer"})) == {
        "team": "shop",
        "user": "bob",
        "role": "viewer",
    }
    member(api, "shop", "bob", "deployer")  # a member's role changes
    assert ok(api.get("/api/v1/teams"))[1]["members"] == {"alice": "owner", "bob": "deployer"}
    # alice is only a deployer in default: she cannot add members there
    error = refused(
        alice.put("/api/v1/teams/default/members/bob", json={"role": "viewer"}), 403, "authorization"
    )
    assert error == "add_member needs the owner role in team 'default' (you are deployer)"
    assert ok(alice.delete("/api/v1/teams/shop/members/bob")) == {"team": "shop", "removed": "bob"}
    refused(alice.delete("/api/v1/teams/shop/members/bob"), 404, "user")


def test_bad_members_are_refused(api: TestClient, alice: TestClient) -> None:
    error = refused(api.put("/api/v1/teams/default/members/alice", json={"role": "admin"}), 400, "role")
    assert error == "unknown role 'admin': expected one of viewer, deployer, owner"
    refused(api.put("/api/v1/teams/default/members/nobody", json={"role": "viewer"}), 404, "user")
    refused(api.put("/api/v1/teams/nope/members/alice", json={"role": "viewer"}), 404, "team")
    refused(api.put("/api/v1/teams/default/members/alice", json={}), 400, "role")
    # the last owner can neither leave nor step down
    refused(api.delete("/api/v1/teams/default/members/admin"), 409, "user")
    refused(api.put("/api/v1/teams/default/members/admin", json={"role": "viewer"}), 409, "role")


# -- tokens -------------------------------------------------------------------------------------------


def test_a_scoped_token_is_shown_once_and_acts_within_its_scope(api: TestClient, alice: TestClient) -> None:
    ok(api.post("/api/v1/apps/shop/deploys", params={"team": "default"}, json={"image": "web:1"}), 202)
    body = {"name": "ci", "team": "default", "role": "deployer", "app": "shop", "expires": "90d"}

    made = ok(alice.post("/api/v1/tokens", json=body), 201)

    assert made["token"].startswith("mp_")
    assert made == made | {"name": "ci", "user": "alice", "kind": "api", "team": "default", "app": "shop"}
    assert made["role"] == "deployer" and made["state"] == "active"
    ci = as_token(api, made["token"])
    me = ok(ci.get("/api/v1/whoami"))
    assert (me["user"], me["teams"], me["app"]) == ("alice", {"default": "deployer"}, "shop")
    ok(ci.get("/api/v1/apps/shop"))
    assert refused(ci.get("/api/v1/apps/other"), 403, "authorization") == "this token is for app 'shop' only"
    listed = ok(alice.get("/api/v1/tokens"))
    assert [t["name"] for t in listed] == [ok(alice.get("/api/v1/whoami"))["token"]["name"], "ci"]
    assert all("token" not in t for t in listed)


def test_a_revoked_token_stops_at_its_next_request(api: TestClient, alice: TestClient) -> None:
    made = ok(alice.post("/api/v1/tokens", json={"name": "ci", "team": "default", "role": "viewer"}), 201)
    ci = as_token(api, made["token"])
    ok(ci.get("/api/v1/apps"))

    revoked = ok(alice.delete(f"/api/v1/tokens/{made['id']}"))

    assert revoked["state"] == "revoked"
    assert refused(ci.get("/api/v1/apps"), 401, "authorization") == "token 'ci' was revoked"
    assert ok(alice.get("/api/v1/tokens"))[-1]["state"] == "revoked"
    # by name, among one's own
    ok(alice.post("/api/v1/tokens", json={"name": "ci", "team": "default", "role": "viewer"}), 201)
    assert ok(alice.delete("/api/v1/tokens/ci"))["state"] == "revoked"


def test_tokens_never_exceed_their_maker(api: TestClient, alice: TestClient) -> None:
    add_user(api, "bob")
    above = {"name": "x", "team": "default", "role": "owner"}
    error = refused(alice.post("/api/v1/tokens", json=above), 403, "role")
    assert error == "you cannot make a owner token for team 'default' (you are deployer)"
    for_bob = {"name": "x", "team": "default", "role": "viewer", "user": "bob"}
    error = refused(alice.post("/api/v1/tokens", json=for_bob), 403, "user")
    assert error == "only a platform admin makes tokens for another user"
    ok(api.post("/api/v1/teams", json={"name": "shop"}), 201)
    refused(alice.post("/api/v1/tokens", json={"name": "x", "team": "shop", "role": "viewer"}), 403, "role")
    # the admin makes bob's token; listing and revoking others' tokens is the admin's too
    made = ok(api.post("/api/v1/tokens", json=for_bob), 201)
    assert made["user"] == "bob"
    refused(alice.get("/api/v1/tokens", params={"user": "bob"}), 403, "user")
    refused(alice.get("/api/v1/tokens", params={"all": "true"}), 403, "user")
    refused(alice.delete(f"/api/v1/tokens/{made['id']}"), 404, "token")
    assert [t["name"] for t in ok(api.get("/api/v1/tokens", params={"user": "bob"}))] == ["x"]
    assert {t["user"] for t in ok(api.get("/api/v1/tokens", params={"all": "true"}))} == {
        "admin",
        "alice",
        "bob",
    }
    ok(api.delete(f"/api/v1/tokens/{made['id']}"))


def test_bad_tokens_are_refused(api: TestClient, alice: TestClient) -> None:
    def create(**body: Any) -> Any:
        return alice.post("/api/v1/tokens", json={"name": "ci", "team": "default", "role": "viewer", **body})

    assert refused(create(role="admin"), 400, "role").startswith("unknown role 'admin'")
    refused(create(role="pull"), 400, "role")
    assert refused(create(team="nope"), 404, "team") == "no team 'nope'"
    assert refused(create(app="ghost"), 400, "app") == "app 'ghost' is not an app of team 'default'"
    refused(create(expires="forever"), 400, "expires")
    refused(create(name="has space"), 400, "name")
    refused(create(scope="everything"), 400, "scope")
    refused(alice.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}), 400, "team")
    ok(create(), 201)
    assert refused(create(), 409, "name") == "'alice' already has a token named 'ci'"
    refused(alice.delete("/api/v1/tokens/999"), 404, "token")
    refused(api.delete("/api/v1/tokens/1"), 409, "token")  # the admin-token file's


def test_a_flood_of_logins_checks_two_passwords_at_a_time(
    api: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Condition()
    state = {"arrived": 0, "inside": 0, "most": 0}
    go = threading.Event()

    async def pause(seconds: float) -> None:
        with lock:
            state["arrived"] += 1
            lock.notify_all()

    def slow_login(user: str, password: str, source: str, **_: Any) -> Any:
        with lock:
            state["inside"] += 1
            state["most"] = max(state["most"], state["inside"])
            lock.notify_all()
        go.wait(30)
        with lock:
            state["inside"] -= 1
        raise Unauthorized("wrong user name or password", field="password")

    monkeypatch.setattr(identity_api, "pause", pause)
    monkeypatch.setattr(platform.identity, "login", slow_login)
    answers: list[int] = []
    with TestClient(api.app) as one_loop:  # one event loop, as under uvicorn

        def attempt() -> None:
            answers.append(one_loop.post("/api/v1/login", json={"user": "u", "password": "p"}).status_code)

        threads = [threading.Thread(target=attempt) for _ in range(6)]
        for t in threads:
            t.start()
        with lock:
            assert lock.wait_for(lambda: state["arrived"] == 6 and state["inside"] == 2, timeout=30)
        go.set()
        for t in threads:
            t.join(30)

    assert answers == [401] * 6
    assert state["most"] == identity_api.MAX_CHECKS


def test_the_user_holding_the_admin_token_file_is_not_removed(platform: Platform) -> None:
    """The manager pushes with the admin-token file's token: removing its user (even by another admin)
    would leave the platform without it until a restart."""
    platform.identity.add_user("bob", None, admin=True)
    with pytest.raises(Conflict, match="admin-token file"):
        platform.identity.remove_user("admin")
    assert {u["name"] for u in platform.identity.users()} >= {"admin", "bob"}
