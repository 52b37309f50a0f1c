"""`mypaas deploy -f compose.yml` with the project's own files (relative bind mounts): what the CLI
uploads, and what the platform makes of it, through the real API over the fake backend."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mypaas.cli.deploy import compose_payload
from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import AppRow, ReleaseRow
from tests.unit.cli.support import Server, cli, one_error_line, settle

COMPOSE = """
services:
  web:
    image: nginx:alpine
    ports: ["80"]
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
      - ./html:/usr/share/nginx/html
      - ${CONF:-./conf.d}:/etc/nginx/conf.d
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def project(root: Path, **extra: str) -> Path:
    write(
        root,
        {
            "compose.yml": COMPOSE,
            "nginx.conf": "events {}\n",
            "html/index.html": "v1\n",
            "html/draft.swp": "editor junk\n",
            "conf.d/site.conf": "server {}\n",
            ".dockerignore": "**/*.swp\n",
            **extra,
        },
    )
    return root / "compose.yml"


def names(part: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(part), mode="r:gz") as tar:
        return tar.getnames()


def target_spec(platform: Platform, app: str) -> AppSpec:
    with platform.sessions() as s:
        row = s.scalar(
            select(ReleaseRow).join(AppRow).where(AppRow.name == app).order_by(ReleaseRow.version.desc())
        )
        assert row is not None
        return AppSpec.model_validate(row.spec)


def test_the_payload_holds_each_source_once(tmp_path: Path) -> None:
    compose = project(tmp_path)
    payload = compose_payload(compose, None)
    assert set(payload.contexts) == {"files:nginx.conf", "files:html", "files:conf.d"}
    assert names(payload.contexts["files:nginx.conf"]) == ["."]
    assert names(payload.contexts["files:html"]) == [".", "index.html"]  # .dockerignore honoured


def test_the_whole_project_and_a_folder_beside_it(tmp_path: Path) -> None:
    """``.:/app`` (the dev-compose habit) sends the project minus .dockerignore and .git; a source
    outside the project (``../shared``) goes as it is, only .git left out."""
    root = tmp_path / "app"
    write(
        root, {"main.py": "print()\n", "notes.swp": "x\n", ".git/HEAD": "ref\n", ".dockerignore": "*.swp\n"}
    )
    write(tmp_path, {"shared/a.swp": "kept\n", "shared/.git/HEAD": "ref\n"})
    (root / "compose.yml").write_text(
        "services:\n  web:\n    image: a\n    volumes: ['.:/app', '../shared:/s']\n"
    )
    payload = compose_payload(root / "compose.yml", None)
    assert set(payload.contexts) == {"files:.", "files:../shared"}
    assert names(payload.contexts["files:."]) == [".", ".dockerignore", "compose.yml", "main.py"]
    assert names(payload.contexts["files:../shared"]) == [".", "a.swp"]


def test_interpolated_sources_come_from_dotenv(tmp_path: Path) -> None:
    compose = project(tmp_path, **{".env": "CONF=./other\n", "other/x.conf": "server {}\n"})
    payload = compose_payload(compose, None)
    assert "files:other" in payload.contexts and "files:conf.d" not in payload.contexts


def test_a_missing_source_is_an_error_before_anything_is_sent(tmp_path: Path, server: Server) -> None:
    compose = project(tmp_path)
    (tmp_path / "nginx.conf").unlink()
    line = one_error_line(cli("deploy", "shop", "-f", str(compose)))
    assert "services.web.volumes: ./nginx.conf not found" in line and str(tmp_path / "nginx.conf") in line
    assert not server.requests


def test_deploy_change_and_rollback_bring_the_files_of_each_release(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform, backend: FakeBackend
) -> None:
    compose = project(tmp_path)
    result = cli("deploy", "shop", "-f", str(compose))
    assert result.exit_code == 0, result.output
    assert "--- adding the project files of web: 5 entries" in result.stderr
    [(request, _)] = server.sent("POST", "/api/v1/apps/shop/deploys")
    assert b'name="files:html"' in request.content and b'name="files:nginx.conf"' in request.content
    v1 = target_spec(manager, "shop").services["web"]
    assert v1.image_id != backend.image("nginx:alpine").id
    assert [(pf.source, pf.target, pf.read_only, pf.count) for pf in v1.project_files] == [
        ("nginx.conf", "/etc/nginx/nginx.conf", True, 1),
        ("html", "/usr/share/nginx/html", False, 2),
        ("conf.d", "/etc/nginx/conf.d", False, 2),
    ]

    again = cli("deploy", "shop", "-f", str(compose))  # nothing changed: no release, nothing restarts
    assert (again.exit_code, again.stdout) == (0, "nothing changed: v1 is running\n")
    assert target_spec(manager, "shop").services["web"].image_id == v1.image_id

    (tmp_path / "html/index.html").write_text("v3\n")
    assert cli("deploy", "shop", "-f", str(compose)).exit_code == 0
    v3 = target_spec(manager, "shop").services["web"]
    assert v3.image_id != v1.image_id
    assert v3.project_files[1].digest != v1.project_files[1].digest
    assert v3.project_files[0] == v1.project_files[0]

    result = cli("rollback", "shop", "1")
    assert result.exit_code == 0, result.output
    assert target_spec(manager, "shop").services["web"].image_id == v1.image_id
    listed = cli("releases", "shop", "--json")
    files = [r["files"]["web"][1] for r in json.loads(listed.stdout)]
    assert [f["digest"] for f in files] == [
        v1.project_files[1].digest,
        v3.project_files[1].digest,
        v1.project_files[1].digest,
    ]
    assert files[0]["source"] == "./html" and files[0]["target"] == "/usr/share/nginx/html"


def test_files_the_cli_did_not_send_are_a_400(api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": COMPOSE})
    assert r.status_code == 400, r.text
    assert "./nginx.conf were not uploaded" in r.json()["error"]


@pytest.mark.parametrize("settings", [{"allow_host_mounts": True}], indirect=True)
def test_host_mounts_do_not_let_the_docker_socket_through(tmp_path: Path, server: Server) -> None:
    write(
        tmp_path, {"c.yml": "services:\n  ci:\n    image: web:1\n    volumes: ['/var/run/docker.sock:/s']\n"}
    )
    line = one_error_line(cli("deploy", "ci", "-f", str(tmp_path / "c.yml")))
    assert "Docker socket" in line and "allow_docker_socket" in line


def test_an_external_volume_must_exist(
    tmp_path: Path, server: Server, api: TestClient, backend: FakeBackend, platform: Platform
) -> None:
    text = "services:\n  db:\n    image: web:1\n    volumes: ['pg:/data']\n"
    text += "volumes:\n  pg: {external: true, name: pgdata}\n"
    write(tmp_path, {"c.yml": text})
    line = one_error_line(cli("deploy", "db", "-f", str(tmp_path / "c.yml"), "--no-wait"))
    assert "external volume 'pgdata' does not exist" in line and "docker volume create pgdata" in line
    backend.volumes["pgdata"] = {}  # an admin made it
    result = cli("deploy", "db", "-f", str(tmp_path / "c.yml"), "--no-wait")
    assert result.exit_code == 0, result.output
    settle(platform, backend)
    assert [i.service for i in backend.instances.values() if i.app == "db"] == ["db"]
    assert list(backend.volumes) == ["pgdata"]  # nothing made for it
