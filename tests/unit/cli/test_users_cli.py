"""`mypaas user|team|token` and `mypaas login|logout|whoami` against the real API over the fake backend:
what the user reads, the credentials file a login leaves (0600 in a 0700 folder), where the CLI takes its
URL and token from, and one `error:` line for each refusal."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from mypaas.api import identity as identity_api
from mypaas.cli import client as client_module
from mypaas.cli import credentials
from mypaas.cli import login as login_module
from mypaas.cli.client import ApiClient, api_url, read_token
from mypaas.manager.identity import passwords
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from tests.unit.cli.support import URL, Server, cli, one_error_line

PW = "correct horse battery"
PW2 = "another long passphrase"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with the least cost (the real one takes 64 MiB and ~0.1 s a hash, by design)."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    async def pause(seconds: float) -> None:
        return None

    monkeypatch.setattr(identity_api, "pause", pause)


@pytest.fixture
def logins(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """`mypaas login|logout` reach the in-process API at whatever URL they use, and every other command
    takes its URL and token as it would for a user (MYPAAS_*, the stored login, the admin-token file)."""

    def connect_to(url: str, token: str, ca: str | None = None) -> ApiClient:
        return ApiClient(url, token, transport=server.transport, ca=ca)

    monkeypatch.setattr(login_module, "connect_to", connect_to)
    monkeypatch.setattr(client_module, "connect", lambda: ApiClient(transport=server.transport))
    return server


def add_alice(platform: Platform, role: str = "deployer") -> None:
    platform.identity.add_user("alice", PW)
    platform.identity.add_member("default", "alice", Role.parse(role))


def lines(text: str) -> list[str]:
    return text.splitlines()


# -- users --------------------------------------------------------------------------------------------


def test_user_add_asks_the_password_twice_then_ls_lists(server: Server) -> None:
    added = cli("user", "add", "alice", stdin=f"{PW}\n{PW}\n".encode())

    assert added.exit_code == 0, added.output
    assert lines(added.stdout)[-2:] == [
        "added user alice",
        "add them to a team: mypaas team member add TEAM alice --role deployer",
    ]
    assert PW not in added.output  # the prompt hides it
    cli("team", "member", "add", "default", "alice", "--role", "viewer")
    listed = cli("user", "ls")
    assert [line.split()[:4] for line in lines(listed.stdout)] == [
        ["NAME", "ADMIN", "PASSWORD", "TEAMS"],
        ["admin", "yes", "none", "default"],
        ["alice", "-", "set", "default"],
    ]
    assert "default (viewer)" in listed.stdout
    as_json = json.loads(cli("user", "ls", "--json").stdout)
    assert [(u["name"], u["admin"], u["teams"]) for u in as_json] == [
        ("admin", True, {"default": "owner"}),
        ("alice", False, {"default": "viewer"}),
    ]


def test_user_add_refuses_a_weak_password_in_one_line(server: Server) -> None:
    result = cli("user", "add", "bob", "--admin", "--password-stdin", stdin=b"short\n")

    assert one_error_line(result) == (
        "error: password too weak: a password needs at least 12 characters, 5 of them different,"
        " and must not contain the user name"
    )
    assert one_error_line(cli("user", "add", "bob", "--password-stdin", stdin=b"\n")).startswith(
        "error: empty password"
    )


def test_user_add_admin_and_rm(server: Server) -> None:
    added = cli("user", "add", "bob", "--admin", "--password-stdin", stdin=f"{PW}\n".encode())
    assert lines(added.stdout)[0] == "added user bob (platform admin)"

    assert cli("user", "rm", "bob").stdout == "removed user bob (their tokens stop working)\n"
    assert one_error_line(cli("user", "rm", "bob")) == "error: no user 'bob'"
    assert one_error_line(cli("user", "rm", "admin")) == (
        "error: 'admin' is the last platform admin: make another admin first"
    )
    assert one_error_line(cli("user", "add", "admin", "--password-stdin", stdin=f"{PW}\n".encode())) == (
        "error: user 'admin' already exists"
    )


def test_user_passwd_as_the_admin_for_another_user(server: Server, platform: Platform) -> None:
    add_alice(platform)
    result = cli("user", "passwd", "alice", "--password-stdin", stdin=f"{PW2}\n".encode())

    assert result.stdout == "password of alice changed; their other login sessions ended\n"
    platform.identity.login("alice", PW2, "test")


# -- teams --------------------------------------------------------------------------------------------


def test_team_add_member_ls_and_rm(server: Server, platform: Platform) -> None:
    add_alice(platform)
    platform.identity.add_user("bob", PW)

    assert cli("team", "add", "shop", "--owner", "alice").stdout == "added team shop (owner alice)\n"
    assert cli("team", "member", "add", "shop", "bob", "--role", "deployer").stdout == (
        "bob is deployer in team shop\n"
    )
    listed = cli("team", "ls")
    assert lines(listed.stdout) == [
        "NAME     APPS  MEMBERS",
        "default  0     admin (owner), alice (deployer)",
        "shop     0     alice (owner), bob (deployer)",
    ]
    assert json.loads(cli("team", "ls", "--json").stdout)[1]["members"] == {
        "alice": "owner",
        "bob": "deployer",
    }
    assert cli("team", "member", "rm", "shop", "bob").stdout == "removed bob from team shop\n"
    assert cli("team", "rm", "shop").stdout == "removed team shop\n"


def test_team_refusals_are_one_line(server: Server, platform: Platform) -> None:
    add_alice(platform)
    assert one_error_line(cli("team", "member", "add", "default", "alice", "--role", "boss")) == (
        "error: unknown role 'boss': expected one of viewer, deployer, owner"
    )
    assert one_error_line(cli("team", "add", "default")) == "error: team 'default' already exists"
    assert one_error_line(cli("team", "member", "rm", "default", "admin")) == (
        "error: 'admin' is the last owner of team 'default': add another owner first"
    )
    assert one_error_line(cli("team", "rm", "nope")) == "error: no team 'nope'"


# -- tokens -------------------------------------------------------------------------------------------


def test_token_create_prints_the_secret_alone_on_stdout_once(server: Server, api: TestClient) -> None:
    api.post("/api/v1/apps/shop/deploys", params={"team": "default"}, json={"image": "web:1"})

    made = cli(
        "token",
        "create",
        "ci",
        "--team",
        "default",
        "--role",
        "deployer",
        "--app",
        "shop",
        "--expires",
        "90d",
    )

    assert made.exit_code == 0, made.output
    [secret] = lines(made.stdout)
    assert secret.startswith("mp_")
    info, once = lines(made.stderr)
    assert info.startswith(
        "made token ci (id 2) of admin: deployer in team default, app shop; expires in 90d ("
    )
    assert once == "this token is shown once: keep it now (mypaas token revoke 2 ends it)"
    assert server.client(secret).app("shop")["name"] == "shop"
    listed = lines(cli("token", "ls").stdout)
    assert listed[0].split() == [
        "ID",
        "NAME",
        "USER",
        "TEAM",
        "ROLE",
        "APP",
        "EXPIRES",
        "LAST",
        "USED",
        "STATE",
    ]
    assert listed[1].split()[:7] == ["1", "admin-token", "admin", "(all)", "(all)", "-", "never"]
    assert listed[2].split()[:7] == ["2", "ci", "admin", "default", "deployer", "shop", "in"]
    assert listed[2].split()[-4:] == ["ago", "from", "testclient", "active"]
    assert secret not in cli("token", "ls", "--json").stdout


def test_token_create_json_holds_the_token_once(server: Server) -> None:
    made = cli("token", "create", "ci", "--team", "default", "--role", "viewer", "--json")

    answer = json.loads(made.stdout)
    assert answer["token"].startswith("mp_") and answer["role"] == "viewer"
    assert made.stderr == ""


def test_token_revoke_ends_it_at_the_next_request(server: Server) -> None:
    secret = lines(cli("token", "create", "ci", "--team", "default", "--role", "viewer").stdout)[0]
    assert server.client(secret).apps() == []

    assert cli("token", "revoke", "2").stdout == "revoked token ci (id 2) of admin\n"

    assert lines(cli("token", "ls").stdout)[2].split()[-1] == "revoked"
    with pytest.raises(Exception, match="token 'ci' was revoked"):
        server.client(secret).apps()


def test_token_refusals_are_one_line(server: Server) -> None:
    assert one_error_line(cli("token", "create", "x", "--team", "default", "--role", "god")).startswith(
        "error: unknown role 'god'"
    )
    assert one_error_line(cli("token", "create", "x", "--team", "nope", "--role", "viewer")) == (
        "error: no team 'nope'"
    )
    assert one_error_line(
        cli("token", "create", "x", "--team", "default", "--role", "viewer", "--expires", "1y")
    )
    assert one_error_line(cli("token", "revoke", "99")) == "error: no token '99' of yours"
    assert cli("token", "create", "x", "--role", "viewer").exit_code == 2  # --team is required


# -- logging in -----------------------------------------------------------------------------------------


def test_login_keeps_a_token_in_the_users_config_folder(
    logins: Server, platform: Platform, tmp_path: Path
) -> None:
    add_alice(platform)

    result = cli("login", URL, stdin=f"alice\n{PW}\n".encode())

    assert result.exit_code == 0, result.output
    where = tmp_path / "home" / "config" / "mypaas" / "credentials.json"
    first, second = lines(result.stdout)[-2:]
    assert first.startswith(f"logged in to {URL} as alice; token login-") and " expires in 30d (" in first
    assert second == f"credentials kept in {where} (mode 0600); `mypaas logout` ends the login"
    assert PW not in result.output
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    assert stat.S_IMODE(where.parent.stat().st_mode) == 0o700
    saved = json.loads(where.read_text())
    assert (saved["url"], saved["user"]) == (URL, "alice") and saved["token"].startswith("mp_")
    # every command now acts as alice, at the login's URL
    me = cli("whoami")
    assert lines(me.stdout)[:2] == ["user:   alice", "teams:  default (deployer)"]
    assert (
        lines(me.stdout)[2].startswith("token:  login-")
        and ", login): all of alice's rights; expires in 30d" in me.stdout
    )
    assert lines(me.stdout)[3] == f"api:    {URL}"


def test_login_with_a_wrong_password_says_so_and_keeps_nothing(logins: Server, platform: Platform) -> None:
    add_alice(platform)

    result = cli("login", "http://127.0.0.1:8470", "--user", "alice", "--password-stdin", stdin=b"guess\n")

    assert one_error_line(result) == "error: wrong user name or password (1 failed recently)"
    assert credentials.stored() is None


def test_logout_revokes_the_login_and_removes_the_file(logins: Server, platform: Platform) -> None:
    add_alice(platform)
    cli("login", URL, "-u", "alice", "--password-stdin", stdin=f"{PW}\n".encode())
    token = read_token()
    assert token is not None

    result = cli("logout")

    assert result.stdout == f"logged out of {URL} (token revoked; removed {credentials.path()})\n"
    assert not credentials.path().exists()
    with pytest.raises(Exception, match="was revoked"):
        ApiClient(URL, token, transport=logins.transport).whoami()
    assert one_error_line(cli("logout")) == f"error: not logged in (no {credentials.path()})"


def test_a_login_that_stopped_working_says_to_log_in_again(logins: Server, platform: Platform) -> None:
    add_alice(platform)
    cli("login", URL, "-u", "alice", "--password-stdin", stdin=f"{PW}\n".encode())
    platform.identity.set_password(platform.identity.principal_of(platform.admin_token), "alice", PW2)

    result = cli("whoami")
    assert one_error_line(result).endswith("was revoked (log in again: mypaas login)")


def test_passwd_ends_the_users_other_logins(logins: Server, platform: Platform) -> None:
    add_alice(platform)
    other = platform.identity.login("alice", PW, "laptop").secret
    cli("login", URL, "-u", "alice", "--password-stdin", stdin=f"{PW}\n".encode())

    result = cli("user", "passwd", "--password-stdin", stdin=f"{PW2}\n".encode())

    assert result.stdout == "password of alice changed; their other login sessions ended\n"
    assert lines(cli("whoami").stdout)[0] == "user:   alice"  # this login goes on
    with pytest.raises(Exception, match="was revoked"):
        ApiClient(URL, other, transport=logins.transport).whoami()


def test_where_the_cli_takes_its_url_and_token_from(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MYPAAS_HOME", str(platform.settings.home))  # the admin-token file is readable
    assert (read_token(), api_url()) == (platform.admin_token, "http://127.0.0.1:8470")

    credentials.save(credentials.Credentials("https://paas.example", "mp_login", "alice"))
    assert (read_token(), api_url()) == ("mp_login", "https://paas.example")

    monkeypatch.setenv("MYPAAS_URL", "http://other:8470")
    assert (read_token(), api_url()) == ("mp_login", "http://other:8470")

    monkeypatch.setenv("MYPAAS_TOKEN", "mp_env")
    monkeypatch.delenv("MYPAAS_URL")
    assert (read_token(), api_url()) == ("mp_env", "http://127.0.0.1:8470")  # not the login's URL


def test_an_unreadable_credentials_file_is_one_error_line(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "connect", ApiClient)
    credentials.path().parent.mkdir(parents=True)
    credentials.path().write_text("{not json")

    assert one_error_line(cli("ls")).startswith(f"error: cannot read {credentials.path()}: ")
    assert cli("logout").stdout == f"removed the unreadable {credentials.path()}\n"
    assert not os.path.exists(credentials.path())


def test_login_warns_when_the_password_would_cross_the_network_in_clear(
    logins: Server, platform: Platform
) -> None:
    add_alice(platform)
    stdin = f"{PW}\n".encode()

    remote = cli("login", "http://paas.example.com:8470", "-u", "alice", "--password-stdin", stdin=stdin)
    local = cli("login", "http://127.0.0.1:8470", "-u", "alice", "--password-stdin", stdin=stdin)

    assert remote.stderr == (
        "warning: http://paas.example.com:8470 is plain http:"
        " your password and token cross the network unencrypted\n"
    )
    assert local.stderr == ""
    assert credentials.stored() == credentials.Credentials(
        "http://127.0.0.1:8470", read_token() or "", "alice"
    )
