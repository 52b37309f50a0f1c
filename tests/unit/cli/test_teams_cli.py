"""What a team member reads: `mypaas ls` lists their teams' apps with a TEAM column, `deploy --team` picks
the team of a new app (and cannot move an existing one), and an unknown app's hint never names another
team's app. The CLI against the real API over the fake backend, as different callers."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mypaas.cli import client as client_module
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line
from tests.unit.teams import Cast, deploy_apps, make_cast, make_teams


@pytest.fixture
def cast(server: Server, platform: Platform, api: TestClient) -> Cast:
    make_teams(platform)
    deploy_apps(api, {"shop": "a", "cart": "a", "blog": "b"})
    return make_cast(platform)


def act_as(monkeypatch: pytest.MonkeyPatch, server: Server, cast: Cast, who: str) -> None:
    token = cast.tokens[who]
    monkeypatch.setattr(client_module, "connect", lambda: server.client(token))


def test_ls_shows_the_callers_apps_with_their_team(
    monkeypatch: pytest.MonkeyPatch, server: Server, cast: Cast
) -> None:
    act_as(monkeypatch, server, cast, "viewer")
    result = cli("ls")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TEAM", "STATE", "RELEASE", "READY", "UPDATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["cart", "a"], ["shop", "a"]]
    listing = json.loads(cli("ls", "--json").stdout)
    assert [(a["name"], a["team"]) for a in listing] == [("cart", "a"), ("shop", "a")]

    act_as(monkeypatch, server, cast, "admin")
    every = [line.split()[:2] for line in cli("ls").stdout.splitlines()[1:]]
    assert every == [["blog", "b"], ["cart", "a"], ["shop", "a"]]


def test_deploy_team_puts_a_new_app_in_that_team(server: Server, cast: Cast, platform: Platform) -> None:
    result = cli("deploy", "api", "-i", "web:1", "--team", "b", "--no-wait")
    assert result.exit_code == 0, result.output
    assert server.last("POST", "/api/v1/apps/api/deploys").url.params["team"] == "b"
    assert platform.identity.team_of_app("api") == "b"


def test_deploy_team_of_an_existing_app_of_another_team_is_refused(server: Server, cast: Cast) -> None:
    line = one_error_line(cli("deploy", "shop", "-i", "web:1", "--team", "b"))
    assert line == "error: app 'shop' belongs to team 'a', not 'b'"
    assert cli("deploy", "shop", "-i", "web:1", "--team", "a", "--no-wait").exit_code == 0


def test_a_caller_in_several_teams_names_the_team(server: Server, cast: Cast, platform: Platform) -> None:
    platform.identity.add_member("b", "admin", Role.DEPLOYER)
    line = one_error_line(cli("deploy", "api", "-i", "web:1"))
    assert line == "error: choose the app's team with --team (your teams: b, default)"
    line = one_error_line(cli("deploy", "api", "-i", "web:1", "--team", "nope"))
    assert line == "error: no team 'nope'"


def test_deploy_help_names_the_team_option() -> None:
    result = cli("deploy", "--help")
    assert result.exit_code == 0
    assert "--team" in result.stdout and "your only team" in result.stdout


def test_secrets_set_team_puts_a_new_app_in_that_team(server: Server, cast: Cast, platform: Platform) -> None:
    result = cli("secrets", "set", "later", "KEY", "--team", "b", stdin=b"s3cret")
    assert result.exit_code == 0, result.output
    assert server.sent("PUT", "/api/v1/apps/later/secrets/KEY")[-1][0].url.params["team"] == "b"
    assert platform.identity.team_of_app("later") == "b"


def test_a_typo_names_only_an_app_the_caller_sees(
    monkeypatch: pytest.MonkeyPatch, server: Server, cast: Cast
) -> None:
    act_as(monkeypatch, server, cast, "viewer")
    assert one_error_line(cli("ps", "blgo")) == "error: no app named 'blgo'"
    assert one_error_line(cli("ps", "shpo")) == "error: no app named 'shpo'; did you mean 'shop'?"
    line = one_error_line(cli("ps", "blog"))
    assert line.startswith("error: instances on app 'blog' needs the viewer role")


def test_top_says_the_host_figures_are_the_admins(
    monkeypatch: pytest.MonkeyPatch, server: Server, cast: Cast
) -> None:
    act_as(monkeypatch, server, cast, "viewer")
    result = cli("top", "--once")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("host  figures for platform admins only")
    assert "blog" not in result.stdout and "shop" in result.stdout
