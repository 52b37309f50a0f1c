"""The audit log through the real API app over the fake backend: each change is one entry with who, which
token, from where, what, on which app and how it ended — never a secret's value; denied calls (401/403)
and failed logins are recorded, reads are not; reading it back is filtered by app, user and time, and a
team owner reads only the team's entries; old entries are pruned."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.manager.identity.audit import AuditLog, Entry
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import AuditRow
from tests.unit.cli.support import deploy

SECRET_VALUE = "Zebra-Quartz-8812-do-not-log"
DAY = 86400.0


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture(autouse=True)
def _closed(platform: Platform) -> Iterator[None]:
    yield
    platform.audit.close()


def token_of(platform: Platform, user: str, team: str, role: Role) -> str:
    """A token of ``user`` (made if new) with ``role`` in ``team`` (made if new)."""
    identity = platform.identity
    if user not in {u["name"] for u in identity.users()}:
        identity.add_user(user, None)
    if not identity.team_exists(team):
        identity.add_team(team)
    identity.add_member(team, user, role)
    admin = identity.identify(f"Bearer {platform.admin_token}")
    return identity.create_token(admin, f"{user}-{team}-{role.label}", user=user, team=team, role=role).secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows(platform: Platform) -> list[AuditRow]:
    platform.audit.flush()
    with platform.sessions() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))


def columns(row: AuditRow) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in AuditRow.__table__.columns}


def read(api: TestClient, status: int = 200, token: str | None = None, **params: Any) -> Any:
    headers = bearer(token) if token else {}
    r = api.get("/api/v1/audit", params=params, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def test_a_deploy_a_scale_and_a_secret_set_are_one_entry_each_without_the_value(
    api: TestClient, platform: Platform
) -> None:
    deploy(api, "shop", image="web:1")
    assert api.put("/api/v1/apps/shop/scale", json={"replicas": {"web": 2}}).status_code == 200
    value = base64.b64encode(SECRET_VALUE.encode()).decode()
    assert api.put("/api/v1/apps/shop/secrets/db_password", json={"value": value}).is_success

    found = rows(platform)
    assert [r.action for r in found] == ["deploy", "scale", "set_secret"]
    for r in found:
        assert (r.user, r.token, r.source, r.app, r.team) == (
            "admin",
            "admin-token",
            "testclient",
            "shop",
            "default",
        )
        assert (r.result, r.host) == ("ok", "")
        assert time.time() - 60 < r.at <= time.time()
    assert [(r.status, r.detail) for r in found] == [
        (202, "POST /api/v1/apps/shop/deploys"),
        (200, "PUT /api/v1/apps/shop/scale"),
        (202, "PUT /api/v1/apps/shop/secrets/db_password"),
    ]
    for r in found:  # not the value, nor its base64, in any column
        for name, cell in columns(r).items():
            assert SECRET_VALUE not in str(cell) and value not in str(cell), name
    assert SECRET_VALUE not in str(read(api)) and value not in str(read(api))


def test_reads_are_not_recorded(api: TestClient, platform: Platform) -> None:
    deploy(api, "shop", image="web:1")
    before = len(rows(platform))
    for path in ("/api/v1/apps", "/api/v1/apps/shop", "/api/v1/apps/shop/secrets", "/api/v1/audit"):
        assert api.get(path).status_code == 200
    assert api.head("/api/v1/health").status_code in (200, 405)
    assert len(rows(platform)) == before == 1


def test_a_viewer_scaling_is_recorded_as_denied_with_403(api: TestClient, platform: Platform) -> None:
    deploy(api, "shop", image="web:1")
    viewer = token_of(platform, "vic", "default", Role.VIEWER)
    r = api.put("/api/v1/apps/shop/scale", json={"replicas": {"web": 3}}, headers=bearer(viewer))
    assert r.status_code == 403

    last = rows(platform)[-1]
    assert (last.user, last.token, last.action, last.app, last.team) == (
        "vic",
        "vic-default-viewer",
        "scale",
        "shop",
        "default",
    )
    assert (last.result, last.status) == ("denied", 403)
    assert last.detail.startswith("PUT /api/v1/apps/shop/scale: scale on app 'shop' needs the deployer role")


def test_calls_without_a_valid_token_are_denied_401_reads_included(
    api: TestClient, platform: Platform
) -> None:
    deploy(api, "shop", image="web:1")
    assert api.post("/api/v1/apps/shop/restart", headers={"Authorization": ""}).status_code == 401
    assert api.get("/api/v1/apps", headers=bearer("mp_not-a-token")).status_code == 401

    restart, listing = rows(platform)[-2:]
    assert (restart.user, restart.token, restart.action, restart.result, restart.status) == (
        "",
        "",
        "restart",
        "denied",
        401,
    )
    assert (restart.app, restart.team) == ("shop", "default")  # the team of the app its path names
    assert (
        restart.detail
        == "POST /api/v1/apps/shop/restart: missing bearer token (Authorization: Bearer <token>)"
    )
    assert (listing.action, listing.result, listing.status, listing.detail) == (
        "list_apps",
        "denied",
        401,
        "GET /api/v1/apps: invalid token",
    )
    assert "mp_not-a-token" not in str(columns(listing))


def test_a_failed_change_is_recorded_with_its_error(api: TestClient, platform: Platform) -> None:
    assert api.put("/api/v1/apps/nope/scale", json={"replicas": {"web": 1}}).status_code == 404
    [entry] = rows(platform)
    assert (entry.action, entry.app, entry.result, entry.status) == ("scale", "nope", "failed", 404)
    assert entry.detail.startswith("PUT /api/v1/apps/nope/scale: ")


def test_failed_logins_are_recorded_with_the_user_they_named(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real login route names the user in ``request.state.login_user``; a wrong password and a
    throttled login are recorded as failed, the password never."""
    from argon2 import PasswordHasher

    from mypaas.api import identity as identity_api
    from mypaas.manager.identity import passwords

    async def no_pause(seconds: float) -> None:
        return None

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    monkeypatch.setattr(identity_api, "pause", no_pause)
    platform.identity.add_user("ann", "a-long-Passphrase-9")
    platform.identity.throttle.limit = 2
    client = TestClient(create_app(platform))
    assert client.post("/api/v1/login", json={"user": "ann", "password": "wrong-pw-77"}).status_code == 401
    assert client.post("/api/v1/login", json={"user": "ann", "password": "wrong-pw-78"}).status_code == 401
    assert client.post("/api/v1/login", json={"user": "ann", "password": "wrong-pw-79"}).status_code == 429

    failed, _, throttled = rows(platform)
    assert (failed.user, failed.action, failed.result, failed.status) == ("ann", "login", "failed", 401)
    assert failed.detail.startswith("POST /api/v1/login: wrong user name or password")
    assert (throttled.user, throttled.result, throttled.status) == ("ann", "failed", 429)
    assert all("wrong-pw-7" not in str(columns(r)) for r in rows(platform))


def test_an_unexpected_error_is_recorded_as_error(platform: Platform) -> None:
    app = create_app(platform)

    @app.post("/api/v1/apps/{name}/boom")
    def boom(name: str) -> None:
        raise RuntimeError("a bug")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/api/v1/apps/shop/boom").status_code == 500
    [entry] = rows(platform)
    assert (entry.action, entry.app, entry.result, entry.status) == ("boom", "shop", "error", 500)
    assert entry.detail == "POST /api/v1/apps/shop/boom: internal error"


def test_reading_filters_by_app_user_and_since(api: TestClient, platform: Platform) -> None:
    now = time.time()
    for at, user, app in (
        (now - 2 * DAY, "ann", "shop"),
        (now - 600, "bob", "shop"),
        (now - 60, "ann", "blog"),
    ):
        platform.audit.record(
            Entry(user, "t", "10.0.0.9", "restart", "ok", 200, app=app, team="default", at=at)
        )

    assert [e["app"] for e in read(api)] == ["shop", "shop", "blog"]  # oldest first
    assert [e["user"] for e in read(api, app="shop")] == ["ann", "bob"]
    assert [e["app"] for e in read(api, user="ann")] == ["shop", "blog"]
    assert [e["user"] for e in read(api, since="1h")] == ["bob", "ann"]
    assert [e["user"] for e in read(api, since="5m")] == ["ann"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 3 * 3600))
    assert len(read(api, since=iso)) == 2
    assert [e["user"] for e in read(api, limit=1)] == ["ann"]  # the newest
    first = read(api)[0]
    assert set(first) == {
        "id",
        "at",
        "user",
        "token",
        "source",
        "action",
        "app",
        "host",
        "team",
        "result",
    } | {
        "status",
        "detail",
    }


@pytest.mark.parametrize("since", ["yesterday", "1y", "-1h", "12:00:00x"])
def test_a_bad_since_is_one_error_naming_the_field(api: TestClient, since: str) -> None:
    answer = read(api, status=400, since=since)
    assert answer["field"] == "since"
    assert "30m, 1h or 2d" in answer["error"]


def test_a_team_owner_reads_only_the_team_entries(api: TestClient, platform: Platform) -> None:
    owner_a = token_of(platform, "ann", "a", Role.OWNER)
    token_of(platform, "bob", "b", Role.OWNER)
    deployer_a = token_of(platform, "dan", "a", Role.DEPLOYER)
    assert api.post("/api/v1/apps/shop/deploys?team=a", json={"image": "web:1"}).status_code == 202
    assert api.post("/api/v1/apps/blog/deploys?team=b", json={"image": "web:1"}).status_code == 202
    assert api.post("/api/v1/reconcile").status_code == 200  # about no team: the admin's

    assert [e["app"] for e in read(api, token=owner_a)] == ["shop"]
    assert read(api, token=owner_a, app="blog") == []
    assert [(e["app"], e["team"]) for e in read(api)] == [("shop", "a"), ("blog", "b"), ("", "")]
    denied = read(api, status=403, token=deployer_a)
    assert "owner" in denied["error"]
    assert rows(platform)[-1].action == "audit"  # the denied read is recorded
    assert rows(platform)[-1].result == "denied"


@pytest.mark.parametrize("settings", [{"audit_retention_days": 30}], indirect=True)
def test_retention_prunes_older_entries(platform: Platform) -> None:
    assert platform.audit.retention_days == 30  # the setting
    now = [time.time()]
    log = AuditLog(platform.sessions, retention_days=30, clock=lambda: now[0])
    for age in (20 * DAY, 10 * DAY, 60):
        log.record(Entry("ann", "t", "", "stop", "ok", 200, app="shop", at=now[0] - age))
    log.flush()  # written (and pruned: nothing is 30 days old yet)
    assert len(rows(platform)) == 3

    now[0] += 15 * DAY
    assert log.prune() == 1
    assert [round((now[0] - r.at) / DAY) for r in rows(platform)] == [25, 15]
    log.close()


def test_no_retention_keeps_everything_and_close_writes_what_is_left(platform: Platform) -> None:
    log = AuditLog(platform.sessions, retention_days=0)
    log.record(Entry("ann", "t", "", "stop", "ok", 200, at=time.time() - 400 * DAY))
    log.close()
    assert log.prune() == 0
    assert len(rows(platform)) == 1


def test_the_manager_writer_prunes_when_it_starts(platform: Platform) -> None:
    platform.audit.record(Entry("ann", "t", "", "stop", "ok", 200, at=time.time() - 100 * DAY))
    platform.audit.flush()  # the first batch: written, then pruned (90 days by default)
    assert rows(platform) == []
