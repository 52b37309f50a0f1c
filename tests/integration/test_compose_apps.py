"""Compose apps on the real engine: two services talking by name, builds from a folder."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

ASK = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo "greeting=$GREETING"
printf 'GET / HTTP/1.0\\r\\nHost: api\\r\\n\\r\\n' | nc api 80
"""

COMPOSE = """
services:
  web:
    image: mypaas-test/front:1
    ports: ["80"]
    environment:
      GREETING: ${GREETING:-hi}
    env_file: web.env
    depends_on:
      api:
        condition: service_healthy
    deploy:
      replicas: 2
      resources:
        limits: {memory: 64m, cpus: "0.5"}
    labels: {team: web}
    networks: [front, back]
  api:
    image: mypaas-test/web:v2
    expose: ["80"]
    volumes: ["data:/data"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 1s
      retries: 3
    restart: always
    command: ["/bin/sh", "-c", "echo stored > /data/file; exec httpd -f -p 80 -h /www"]
    networks: [back]
volumes:
  data: {}
networks:
  front: {}
  back: {}
"""


@pytest.fixture(scope="module")
def front_image(images: dict[str, str]) -> str:
    return kit.busybox_image(
        "mypaas-test/front:1",
        files={"www/index.html": "front\n", "www/cgi-bin/ask": ASK},
        executable=("www/cgi-bin/ask",),
    )


def test_two_services_call_each_other_by_name(
    platform: kit.Platform, front_image: str, tmp_path: Path
) -> None:
    app = f"duo-{secrets.token_hex(3)}"
    (tmp_path / "compose.yml").write_text(COMPOSE)
    (tmp_path / "web.env").write_text("# comment\nFROM_FILE=yes\n")
    r = platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"))
    assert r.code == 0, r
    platform.wait_for(app, body="front")
    status, body = platform.get(app, "/cgi-bin/ask")
    assert status == 200, body
    assert "greeting=hi" in body and "version two" in body  # web reached api by its service name
    insts = platform.wait_ready(app, 3)
    assert sorted(i["service"] for i in insts) == ["api", "web", "web"]
    client = kit.docker_client()
    web = client.containers.get(next(i["id"] for i in insts if i["service"] == "web"))
    host = web.attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024 and host["NanoCpus"] == 500_000_000
    assert web.attrs["Config"]["Labels"]["team"] == "web"
    assert "FROM_FILE=yes" in web.attrs["Config"]["Env"]
    assert len(web.attrs["NetworkSettings"]["Networks"]) == 2
    api = client.containers.get(next(i["id"] for i in insts if i["service"] == "api"))
    assert api.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert any(m["Type"] == "volume" for m in api.attrs["Mounts"])
    assert platform.cli("rm", app, "--yes", "--volumes").code == 0  # without --volumes they stay
    assert not client.volumes.list(filters={"label": f"mypaas.app={app}"})


def test_deploy_a_dockerfile_folder(platform: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    app = f"built-{secrets.token_hex(3)}"
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\nCOPY page.html /www/index.html\nEXPOSE 80\n")
    (tmp_path / "page.html").write_text("built from source\n")
    r = platform.cli("deploy", app, str(tmp_path))
    assert r.code == 0, r
    assert "COPY page.html" in r.out + r.err  # build progress streamed to the terminal
    platform.wait_for(app, body="built from source")
    rel = platform.cli("releases", app, "--json").json()[0]
    assert rel["images"]["web"]["id"].startswith("sha256:")
    platform.cli("rm", app, "--yes")


def test_compose_build_context(platform: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    app = f"cbuild-{secrets.token_hex(3)}"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "Dockerfile").write_text(f"FROM {images['v1']}\nCOPY index.html /www/index.html\n")
    (tmp_path / "site" / "index.html").write_text("compose build\n")
    (tmp_path / "compose.yml").write_text("services:\n  web:\n    build: ./site\n    ports: ['80']\n")
    r = platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"))
    assert r.code == 0, r
    platform.wait_for(app, body="compose build")
    platform.cli("rm", app, "--yes")


def test_static_site_from_source(platform: kit.Platform, tmp_path: Path) -> None:
    app = f"site-{secrets.token_hex(3)}"
    (tmp_path / "index.html").write_text("a static site\n")
    r = platform.cli("deploy", app, str(tmp_path))
    assert r.code == 0, r
    assert "detected a static app" in r.out + r.err
    platform.wait_for(app, body="a static site")
    platform.cli("rm", app, "--yes")


def test_source_folder_with_nothing_to_build(platform: kit.Platform, tmp_path: Path) -> None:
    app = f"empty-{secrets.token_hex(3)}"
    (tmp_path / "notes.txt").write_text("no code here\n")
    r = platform.cli("deploy", app, str(tmp_path))
    assert r.code == 1 and "nothing to build" in r.err
    kit.wait_until(lambda: app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")])
