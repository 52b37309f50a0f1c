"""`mypaas deploy -f … -f … --env-file … --profile … [--dry-run]`: what the CLI sends for a compose project
(every file the project reads, the shell variables it uses and only those) and what a dry run prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, finished, one_error_line

BASE = """
include: [db/compose.yml]
services:
  web:
    image: web:${TAG:-1}
    expose: [80]
    environment: [API_KEY, MODE]
  debug:
    image: web:1
    profiles: [debug]
"""
OVERRIDE = """
services:
  web:
    extends: {file: ../shared/common.yml, service: base}
"""
COMMON = "services:\n  base:\n    env_file: common.env\n    labels: {team: '${TEAM}'}\n"
DB = "services:\n  db:\n    image: web:1\n    environment: {WHERE: '${WHERE:-db-folder}'}\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(
        tmp_path,
        {
            "app/compose.yml": BASE,
            "app/ops/override.yml": OVERRIDE,
            "app/db/compose.yml": DB,
            "app/db/.env": "WHERE=db-env\n",
            "app/.env": "MODE=dotenv\n",
            "app/prod.env": "TAG=1\nMODE=prod\n",
            "shared/common.yml": COMMON,
            "shared/common.env": "SHARED=1\n",
        },
    )
    monkeypatch.setenv("API_KEY", "from-shell")
    monkeypatch.setenv("TEAM", "core")
    monkeypatch.setenv("UNRELATED_SECRET", "never-sent")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_project_is_sent_with_every_file_it_reads(
    project: Path, server: Server, manager: Platform
) -> None:
    args = ["-f", "app/compose.yml", "-f", "app/ops/override.yml", "--env-file", "app/prod.env"]
    result = cli("deploy", "shop", *args, "--profile", "debug", "--no-wait")

    assert result.exit_code == 0, result.output
    body = server.body("POST", "/api/v1/apps/shop/deploys")
    assert body["compose_files"] == ["compose.yml", "ops/override.yml"]
    assert set(body["files"]) == {
        "compose.yml",
        "ops/override.yml",
        "db/compose.yml",
        "db/.env",
        "prod.env",
        "../shared/common.yml",
        "../shared/common.env",
    }
    assert body["variables"] == {"API_KEY": "from-shell", "TEAM": "core"}  # only what the files use
    assert body["env_file"] == ["prod.env"] and body["profiles"] == ["debug"]


def test_dry_run_prints_the_app_the_warnings_and_the_changes(
    project: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    files = ["-f", "app/compose.yml", "-f", "app/ops/override.yml"]

    result = cli("deploy", "shop", *files, "--dry-run")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  web:\n" in out and "API_KEY: from-shell" in out and "MODE: dotenv" in out
    assert "WHERE: db-env" in out  # the included file's own .env
    assert "SHARED: '1'" in out and "team: core" in out  # extends from ../shared
    assert "debug" not in out  # its profile is not active
    assert "shop: the deploy would make a first release:" in out
    assert "  + web (added)" in out and "  + db (added)" in out
    assert out.rstrip().endswith("dry run: nothing was made")
    assert api.get("/api/v1/apps").json() == []
    [(request, _)] = server.sent("POST", "/api/v1/apps/shop/deploys")
    assert request.url.params["dry_run"] == "true"

    deployed = cli("deploy", "shop", *files, "--no-wait")
    assert deployed.exit_code == 0, deployed.output
    accepted = server.sent("POST", "/api/v1/apps/shop/deploys")[-1][1]
    assert finished(api, accepted.json()["id"])["status"] == "succeeded"
    again = cli("deploy", "shop", *files, "--profile", "debug", "--dry-run")
    assert "changes against v1:" in again.stdout
    assert "  + debug (added)" in again.stdout and "  = web (unchanged)" in again.stdout


def test_dry_run_of_a_bad_project_exits_1_with_the_error(project: Path, server: Server) -> None:
    write(project, {"app/bad.yml": "services:\n  web:\n    image: web:1\n    ports: [nope]\n"})

    line = one_error_line(cli("deploy", "shop", "-f", "app/compose.yml", "-f", "app/bad.yml", "--dry-run"))

    assert "services.web.ports[0]" in line
    assert api_apps(server) == []


def api_apps(server: Server) -> list[object]:
    return list(server.client().apps())


def test_a_missing_file_is_named_before_anything_is_sent(project: Path, server: Server) -> None:
    line = one_error_line(cli("deploy", "shop", "-f", "app/compose.yml", "-f", "app/nope.yml"))

    assert "nope.yml" in line
    assert not server.requests


def test_a_missing_file_is_named_as_the_user_typed_it(project: Path, server: Server) -> None:
    line = one_error_line(cli("deploy", "shop", "-f", "app/ops/x.yml"))

    assert line == "error: compose file 'app/ops/x.yml' was not found"
    env = one_error_line(cli("deploy", "shop", "-f", "app/compose.yml", "--env-file", "app/no.env"))
    assert env == "error: env file 'app/no.env' was not found"
    assert not server.requests


def test_env_file_and_profile_need_a_compose_project(server: Server) -> None:
    result = cli("deploy", "shop", "--image", "web:1", "--profile", "x")

    assert result.exit_code == 2
    assert "--profile" in result.stderr


def test_dry_run_json_answers_what_the_api_answers(project: Path, server: Server) -> None:
    result = cli("deploy", "shop", "-f", "app/compose.yml", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["dry_run"] is True and set(answer["spec"]["services"]) == {"web", "db"}
    assert answer["changes"]["added"] == ["web", "db"]


def test_a_folder_deploys_its_compose_file_and_its_override(project: Path, server: Server) -> None:
    write(project, {"app/compose.override.yml": "services:\n  web:\n    labels: {over: ridden}\n"})

    result = cli("deploy", "shop", "app", "--dry-run")

    assert result.exit_code == 0, result.output
    assert server.body("POST", "/api/v1/apps/shop/deploys")["compose_files"] == [
        "compose.yml",
        "compose.override.yml",
    ]
    assert "over: ridden" in result.stdout
