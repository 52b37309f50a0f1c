"""Issue 11, slice X: what a new user still found, seen through the `mypaas` CLI against the real API
(the fake backend underneath): a config set that changes nothing, alerts of unknown or removed apps,
empty listings of an app that does not exist, a mistyped service name."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line

COMPOSE = "services:\n  web:\n    image: web:1\n    expose: [80]\n"


def _deployed(tmp_path: Path, name: str = "hello") -> None:
    path = tmp_path / "compose.yml"
    path.write_text(COMPOSE)
    result = cli("deploy", name, "-f", str(path))
    assert result.exit_code == 0, result.output


# -- config set/unset that changes nothing -------------------------------------------------------


def test_config_set_of_the_value_it_has_makes_no_release(
    server: Server, manager: Platform, backend: FakeBackend, tmp_path: Path
) -> None:
    _deployed(tmp_path)
    assert cli("config", "set", "hello", "X=1").exit_code == 0
    before = set(backend.instances)

    again = cli("config", "set", "hello", "X=1")
    as_json = json.loads(cli("config", "set", "hello", "X=1", "--json").stdout)

    assert (again.exit_code, again.stdout) == (0, "nothing changed: v2 is running\n")
    assert as_json["operation"]["message"] == "nothing changed: v2 is running"
    assert as_json["release"]["version"] == 2  # the running one, as a deploy of what runs says
    assert [r["version"] for r in json.loads(cli("releases", "hello", "--json").stdout)] == [2, 1]
    assert set(backend.instances) == before  # nothing restarted


def test_config_set_of_a_new_value_still_makes_a_release(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    _deployed(tmp_path)
    assert cli("config", "set", "hello", "X=1").exit_code == 0

    changed = cli("config", "set", "hello", "X=1", "Y=2")

    assert changed.exit_code == 0, changed.output
    assert [r["version"] for r in json.loads(cli("releases", "hello", "--json").stdout)] == [3, 2, 1]


# -- alert rules: of an app that exists; removed with it -----------------------------------------

HOOK = "http://hooks.example/x"


def _alert(name: str, app: str | None = None) -> list[str]:
    return ["alerts", "add", name, "--kind", "app_down", "--webhook", HOOK, *(["--app", app] if app else [])]


def test_an_alert_on_an_unknown_app_is_refused_with_the_close_name(
    server: Server, manager: Platform, api: TestClient, tmp_path: Path
) -> None:
    _deployed(tmp_path, "nu-shop")

    line = one_error_line(cli(*_alert("down", "nu-shpo")))

    assert line == "error: no app named 'nu-shpo'; did you mean 'nu-shop'?"
    body = {"name": "down", "kind": "app_down", "webhook": HOOK, "app": "x"}
    answer = api.post("/api/v1/alerts", json=body)
    assert (answer.status_code, answer.json()["field"]) == (404, "app")
    assert cli("alerts", "ls", "--json").stdout.strip() == "[]"


def test_rm_removes_the_apps_own_alert_rules_and_says_so(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    _deployed(tmp_path, "nu-shop")
    for args in (_alert("down", "nu-shop"), _alert("mem", "nu-shop"), _alert("all-apps")):
        assert cli(*args).exit_code == 0

    result = cli("rm", "nu-shop", "--yes")

    assert result.exit_code == 0, result.output
    assert "removed nu-shop; removed 2 alert rules (down, mem)" in result.stdout.splitlines()
    assert [r["name"] for r in json.loads(cli("alerts", "ls", "--json").stdout)] == ["all-apps"]


# -- empty listings of an app that does not exist ------------------------------------------------


def test_events_and_volumes_of_an_unknown_app_name_the_close_one(
    server: Server, manager: Platform, api: TestClient, tmp_path: Path
) -> None:
    _deployed(tmp_path, "nu-shop")

    events = one_error_line(cli("events", "nu-shpo"))
    since = one_error_line(cli("events", "nu-shpo", "--since", "1h"))
    volumes = one_error_line(cli("volumes", "ls", "nu-shpo"))

    assert events == since == volumes == "error: no app named 'nu-shpo'; did you mean 'nu-shop'?"
    assert api.get("/api/v1/volumes", params={"app": "x"}).json()["field"] == "app"
    assert api.get("/api/v1/events", params={"app": "x"}).status_code == 404


def test_events_and_volumes_of_an_app_that_exists_or_existed_still_list(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    _deployed(tmp_path, "nu-shop")

    assert cli("volumes", "ls", "nu-shop").stdout == "no volumes of app nu-shop\n"
    assert cli("events", "nu-shop", "--since", "1s").exit_code == 0
    assert cli("rm", "nu-shop", "--yes").exit_code == 0
    removed = cli("events", "nu-shop")
    assert removed.exit_code == 0, removed.output
    assert "removal by" in removed.stdout  # recorded when rm was accepted


# -- a mistyped service name ---------------------------------------------------------------------


def test_a_mistyped_service_names_the_close_one(server: Server, manager: Platform, tmp_path: Path) -> None:
    _deployed(tmp_path, "nu-shop")
    said = "error: app nu-shop has no service 'wbe'; did you mean 'web'?"

    assert one_error_line(cli("scale", "nu-shop", "wbe=2")) == said
    assert one_error_line(cli("logs", "nu-shop", "wbe")) == said
    assert one_error_line(cli("autoscale", "nu-shop", "wbe", "--max", "3", "--cpu", "50")) == said
    far = one_error_line(cli("scale", "nu-shop", "database=2"))
    assert far == "error: app nu-shop has no service 'database'"  # nothing close: no guess
