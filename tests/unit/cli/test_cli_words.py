"""What the CLI says to a new user: usage mistakes in one line, listings that say when they are empty,
close names suggested, and help texts that read well at 80 columns (issue 11, slice D)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from fastapi.testclient import TestClient

from mypaas.cli import client as client_module
from mypaas.cli.client import ApiClient
from mypaas.cli.main import app
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle


def _leaves(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(the words that run it, the command) of every command under ``group``, hidden ones included."""
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


ROOT = typer.main.get_command(app)
LEAVES = list(_leaves(ROOT))
NEEDS_AN_ARGUMENT = [path for path, command in LEAVES if any(p.required for p in command.params)]


def test_the_walk_finds_the_commands() -> None:
    assert {("ps",), ("deploy",), ("domains", "add"), ("alerts", "add")} <= set(NEEDS_AN_ARGUMENT)


@pytest.mark.parametrize("path", NEEDS_AN_ARGUMENT, ids=" ".join)
def test_a_command_without_its_arguments_says_what_is_missing_in_one_line(path: tuple[str, ...]) -> None:
    result = cli(*path)

    assert result.exit_code == 2
    assert result.stdout == ""
    command = " ".join(("mypaas", *path))
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: missing ")
    assert result.stderr.endswith(f"; see '{command} --help'\n")


def test_missing_argument_and_option_lines() -> None:
    assert cli("ps").stderr == "error: missing argument APP; see 'mypaas ps --help'\n"
    assert cli("domains", "add", "hello").stderr == (
        "error: missing argument DOMAIN; see 'mypaas domains add --help'\n"
    )
    assert (
        cli("alerts", "add", "x").stderr == "error: missing option --kind; see 'mypaas alerts add --help'\n"
    )
    assert cli("ps", "--bogus", "x").stderr == "error: no such option: --bogus; see 'mypaas ps --help'\n"


def test_a_group_without_its_command_shows_its_help() -> None:
    result = cli("image")

    assert result.exit_code == 2
    assert "Usage: mypaas image" in result.stdout


# -- listing verbs: `X APP` and `X ls APP` ---------------------------------------------------------


@pytest.fixture
def hello(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    """App ``hello`` (image web:1) deployed and running at v1."""
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    return "hello"


@pytest.mark.parametrize(
    ("short", "long"),
    [
        (["config", "hello"], ["config", "ls", "hello"]),
        (["domains", "hello"], ["domains", "ls", "hello"]),
        (["secrets", "hello"], ["secrets", "ls", "hello"]),
        (["autoscale", "hello"], ["autoscale", "ls", "hello"]),
        (["domains", "--json", "hello"], ["domains", "ls", "hello", "--json"]),
    ],
    ids=" ".join,
)
def test_x_app_and_x_ls_app_list_the_same(
    server: Server, hello: str, short: list[str], long: list[str]
) -> None:
    first = cli(*short)
    asked = [(q.method, q.url.path) for q in server.requests]
    second = cli(*long)

    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert first.output == second.output
    assert asked and all(method == "GET" for method, _ in asked)
    assert [(q.method, q.url.path) for q in server.requests] == asked * 2


# -- empty listings say so ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ls"], "no apps"),
        (["alerts", "ls"], "no alerts"),
        (["host", "ls"], "no hosts"),
        (["events"], "no events"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_an_empty_platform_listing_says_so(server: Server, args: list[str], said: str) -> None:
    result = cli(*args)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{said}\n"
    as_json = cli(*args, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["domains", "hello"], "no domains (only http://hello.localhost)"),
        (["secrets", "hello"], "no secrets"),
        (["autoscale", "hello"], "no autoscale policies"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_an_empty_listing_of_an_app_says_so(server: Server, hello: str, args: list[str], said: str) -> None:
    result = cli(*args)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{said}\n"
    as_json = cli(*args, "--json")
    assert json.loads(as_json.stdout) == []


def test_an_app_without_instances_or_config_says_so(server: Server, api: TestClient) -> None:
    deploy(api, "hello", image="web:1")  # no reconcile pass yet: nothing runs

    assert cli("ps", "hello").stdout == "no instances\n"
    config = cli("config", "hello")
    assert (config.stdout, config.stderr) == ("", "no config vars\n")  # stdout stays KEY=VALUE lines
    assert json.loads(cli("config", "hello", "--json").stdout) == {}


def test_an_empty_registry_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stub API: the unit platform runs no registry (test_image_api covers the listing's answer).
    def answer(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/api/v1/images")
        return httpx.Response(200, json=[])

    transport = httpx.MockTransport(answer)
    monkeypatch.setattr(client_module, "connect", lambda: ApiClient("http://x", "t", transport=transport))

    assert cli("image", "ls").stdout == "no images in the private registry\n"
    assert cli("image", "ls", "shop/web").stdout == "no images in shop/web\n"
    assert cli("image", "ls", "--json").stdout == "[]\n"


# -- a close app name suggested -----------------------------------------------------------------------

TYPO = [
    ["ps"],
    ["logs"],
    ["releases"],
    ["rollback"],
    ["config"],
    ["config", "set", "{app}", "A=1"],
    ["config", "unset", "{app}", "A"],
    ["domains"],
    ["domains", "add", "{app}", "www.example.com"],
    ["secrets"],
    ["autoscale"],
    ["autoscale", "{app}", "web", "--max", "3", "--cpu", "50"],
    ["metrics"],
    ["scale", "{app}", "web=2"],
    ["stop"],
    ["start"],
    ["restart"],
    ["rm", "{app}", "--yes"],
]


@pytest.mark.parametrize("words", TYPO, ids=" ".join)
def test_a_typo_in_the_app_name_suggests_the_close_one(
    server: Server, api: TestClient, words: list[str]
) -> None:
    deploy(api, "web", image="web:1")
    args = [w.format(app="wbe") for w in words] if "{app}" in words else [*words, "wbe"]

    result = cli(*args)

    assert one_error_line(result) == "error: no app named 'wbe'; did you mean 'web'?"


def test_the_404_keeps_naming_the_field_and_suggests_only_a_close_name(
    server: Server, api: TestClient
) -> None:
    deploy(api, "web", image="web:1")

    close = api.get("/api/v1/apps/wbe")
    far = api.get("/api/v1/apps/database")

    assert (close.status_code, close.json()) == (
        404,
        {"error": "no app named 'wbe'; did you mean 'web'?", "field": "app"},
    )
    assert far.json() == {"error": "no app named 'database'", "field": "app"}


# -- deploy DIR given a file ----------------------------------------------------------------------------


def test_deploy_of_a_compose_file_as_dir_says_to_use_f(server: Server, tmp_path: Path) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  web:\n    image: web:1\n")
    (tmp_path / "notes.txt").write_text("hi\n")

    assert one_error_line(cli("deploy", "shop", str(compose))) == (
        f"error: {compose} is a file, not a folder: "
        f"a compose file goes with -f (mypaas deploy APP -f {compose})"
    )
    notes = tmp_path / "notes.txt"
    assert one_error_line(cli("deploy", "shop", str(notes))) == (
        f"error: {notes} is a file, not a folder (DIR is a folder with a Dockerfile or a compose file)"
    )
    assert (
        one_error_line(cli("deploy", "shop", str(tmp_path / "nope")))
        == f"error: {tmp_path / 'nope'}: no such folder"
    )
    assert not server.requests


def test_alerts_app_lists_the_rules_that_watch_it(server: Server, api: TestClient, hello: str) -> None:
    deploy(api, "shop", image="web:1")
    hook = "http://hooks.example:9/x"
    for name, kind, app_name in (
        ("hello-down", "app_down", "hello"),
        ("shop-down", "app_down", "shop"),
        ("any-down", "app_down", None),
        ("engine", "host_unreachable", None),
    ):
        body = {"name": name, "kind": kind, "webhook": hook, "app": app_name}
        assert api.post("/api/v1/alerts", json=body).status_code == 201

    short, long = cli("alerts", "hello"), cli("alerts", "ls", "hello")

    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert [line.split()[0] for line in short.stdout.splitlines()[1:]] == ["any-down", "hello-down"]
    assert len(cli("alerts", "ls").stdout.splitlines()) == 5
    assert one_error_line(cli("alerts", "hellp")) == "error: no app named 'hellp'; did you mean 'hello'?"
