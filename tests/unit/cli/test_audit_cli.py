"""`mypaas audit` through the real API over the fake backend: the table of who did what, the JSON of
each entry, the filters it sends, and one error line for a bad filter or a caller who may not read it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from mypaas.cli import client as client_module
from mypaas.manager.identity.audit import Entry
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line

AT = time.mktime((2026, 12, 5, 9, 30, 0, 0, 0, -1))  # local time, as the table shows it


@pytest.fixture(autouse=True)
def _closed(platform: Platform) -> Iterator[None]:
    yield
    platform.audit.close()


@pytest.fixture
def entries(platform: Platform) -> None:
    log = platform.audit
    log.record(
        Entry("admin", "admin-token", "10.0.0.5", "deploy", "ok", 202, app="shop", team="default", at=AT)
    )
    log.record(Entry("vic", "ci", "10.0.0.7", "scale", "denied", 403, app="shop", team="default", at=AT + 60))
    log.record(Entry("admin", "admin-token", "10.0.0.5", "drain_host", "ok", 200, host="h1", at=AT + 120))
    log.record(Entry("", "", "10.0.0.9", "restart", "denied", 401, app="blog", team="default", at=AT + 180))


def test_audit_prints_a_table_of_who_did_what(server: Server, entries: None) -> None:
    result = cli("audit")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "TIME                 USER   TOKEN        SOURCE    ACTION      APP/HOST  RESULT\n"
        "2026-12-05 09:30:00  admin  admin-token  10.0.0.5  deploy      shop      ok\n"
        "2026-12-05 09:31:00  vic    ci           10.0.0.7  scale       shop      denied (403)\n"
        "2026-12-05 09:32:00  admin  admin-token  10.0.0.5  drain_host  host h1   ok\n"
        "2026-12-05 09:33:00  -      -            10.0.0.9  restart     blog      denied (401)\n"
    )


def test_audit_json_and_filters(server: Server, entries: None) -> None:
    result = cli("audit", "--app", "shop", "--user", "vic", "--since", "2d", "--limit", "5", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert {
        k: entry[k] for k in ("user", "token", "source", "action", "app", "team", "result", "status")
    } == {
        "user": "vic",
        "token": "ci",
        "source": "10.0.0.7",
        "action": "scale",
        "app": "shop",
        "team": "default",
        "result": "denied",
        "status": 403,
    }
    sent = server.last("GET", "/api/v1/audit").url.params
    assert dict(sent) == {"app": "shop", "user": "vic", "since": "2d", "limit": "5"}


def test_a_time_without_a_zone_is_local_time(server: Server, entries: None) -> None:
    result = cli("audit", "--since", "2026-12-05T09:31:30", "--json")
    assert result.exit_code == 0, result.output
    assert [e["action"] for e in json.loads(result.stdout)] == ["drain_host", "restart"]


def test_no_entries(server: Server) -> None:
    result = cli("audit", "--app", "nothing")
    assert (result.exit_code, result.stdout) == (0, "no audit entries\n")


def test_a_bad_since_is_one_error_line(server: Server) -> None:
    line = one_error_line(cli("audit", "--since", "yesterday"))
    assert line.startswith("error: invalid since 'yesterday': use a duration such as 30m, 1h or 2d")


def test_a_deployer_may_not_read_the_audit_log(
    server: Server, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = platform.identity
    identity.add_user("dan", None)
    identity.add_member("default", "dan", Role.DEPLOYER)
    admin = identity.identify(f"Bearer {platform.admin_token}")
    token = identity.create_token(admin, "dan-cli", user="dan", team="default", role=Role.DEPLOYER).secret
    monkeypatch.setattr(client_module, "connect", lambda: server.client(token))
    line = one_error_line(cli("audit"))
    assert line == "error: audit needs the owner role in a team"
