"""Compose secrets and configs on the Swarm backend, for real: a service on another host reads a Swarm
secret and a Swarm config at their targets with the owner and mode written; `mypaas secrets set` rolls
out a new secret object; the app's objects go with the app. Torn down afterwards (tests/kit.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Platform, busybox_image, cluster_platform, docker_client, wait_until

pytestmark = pytest.mark.integration

READ = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo "token=$(cat /run/secrets/token)"
echo "password=$(cat /run/secrets/db_password)"
echo "site=$(cat /etc/site.conf)"
"""

COMPOSE = """
services:
  web:
    image: mypaas-test/cl-reader:1
    expose: [80]
    deploy:
      placement:
        constraints: [node.role==worker]
    secrets:
      - token
      - source: db_password
        uid: "1000"
        gid: "1000"
        mode: 0400
    configs:
      - source: site
        target: /etc/site.conf
        mode: 0440
secrets:
  token: {file: ./token.txt}
  db_password: {external: true}
configs:
  site: {content: "site of ${GREETING:-nobody}"}
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    busybox_image(
        "mypaas-test/cl-reader:1",
        files={"www/index.html": "reader\n", "www/cgi-bin/read": READ},
        executable=("www/cgi-bin/read",),
    )
    with cluster_platform(1, prefix="mpsec", subnet="10.200.43") as pair:
        yield pair


def values_read(p: Platform, app: str) -> dict[str, str]:
    status, body = p.get(app, "/cgi-bin/read")
    if status != 200:
        return {}
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def wait_read(p: Platform, app: str, key: str, value: str) -> dict[str, str]:
    return dict(wait_until(lambda: (v := values_read(p, app)).get(key) == value and v, timeout=60))


def ls_ln(host: Any, app: str, path: str) -> list[str]:
    """``ls -ln path`` in the app's running task on ``host`` (mode, links, uid, gid, ...)."""
    ids = host.docker("ps", "-q", "--filter", f"label=mypaas.app={app}").stdout.split()
    assert len(ids) == 1, ids
    out = host.docker("exec", ids[0], "ls", "-ln", path)
    assert out.returncode == 0, out
    return str(out.stdout).split()


def app_objects(p: Platform, app: str) -> dict[str, list[str]]:
    labels = {"label": [f"mypaas.platform={p.platform_id}", f"mypaas.app={app}"]}
    api = docker_client().api
    return {
        "secrets": sorted(o["Spec"]["Name"] for o in api.secrets(filters=labels)),
        "configs": sorted(o["Spec"]["Name"] for o in api.configs(filters=labels)),
    }


def test_a_service_reads_swarm_secrets_and_configs(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, cluster = cl
    app = f"csec-{secrets.token_hex(3)}"
    token, first, second = (f"{w}-{secrets.token_hex(8)}" for w in ("tok", "pw1", "pw2"))
    (tmp_path / "token.txt").write_text(token)
    (tmp_path / ".env").write_text("GREETING=swarm\n")
    (tmp_path / "compose.yml").write_text(COMPOSE)
    try:
        p.cli("secrets", "set", app, "db_password", stdin=first, check=True)
        r = p.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), timeout=240)
        assert r.code == 0, r
        seen = wait_read(p, app, "password", first)
        assert seen == {"token": token, "password": first, "site": "site of swarm"}
        [host] = cluster.hosts
        assert ls_ln(host, app, "/run/secrets/db_password")[:4] == ["-r--------", "1", "1000", "1000"]
        assert ls_ln(host, app, "/run/secrets/token")[:4] == ["-r--r--r--", "1", "0", "0"]
        assert ls_ln(host, app, "/etc/site.conf")[:4] == ["-r--r-----", "1", "0", "0"]
        before = app_objects(p, app)
        assert len(before["secrets"]) == 2 and len(before["configs"]) == 1, before

        r = p.cli("secrets", "set", app, "db_password", stdin=second, timeout=240)
        assert r.code == 0, r
        assert wait_read(p, app, "password", second)["token"] == token
        after = app_objects(p, app)
        assert len(after["secrets"]) in (2, 3) and after["configs"] == before["configs"], after
        shown = [repr(r), p.cli("config", app).out, p.cli("secrets", "ls", app, "--json").out]
        shown.append(repr(p.api("GET", f"/api/v1/apps/{app}/releases")))
        assert not [v for v in (token, first, second) if any(v in text for text in shown)]
    finally:
        p.cli("rm", app, "--yes", timeout=120)
    assert wait_until(lambda: app_objects(p, app) == {"secrets": [], "configs": []}, timeout=30)
