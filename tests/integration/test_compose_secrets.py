"""Compose secrets and configs on the real engine: the app reads them at their targets (owner and mode
as written), `mypaas secrets set` makes a release the app sees, and the values never come back out —
not in the CLI's output, the API's answers, the operations' logs, nor the state store on disk."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

READ = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
echo "token=$(cat /run/secrets/token)"
echo "password=$(cat /run/secrets/db_password)"
echo "banner=$(cat /run/secrets/banner)"
echo "site=$(cat /etc/site.conf)"
"""

COMPOSE = """
services:
  web:
    image: mypaas-test/reader:1
    ports: ["80"]
    secrets:
      - token
      - source: db_password
        uid: "1000"
        gid: "1000"
        mode: 0400
      - {source: banner, target: banner}
    configs:
      - source: site
        target: /etc/site.conf
        mode: 0440
secrets:
  token: {file: ./token.txt}
  banner: {environment: BANNER}
  db_password: {external: true}
configs:
  site: {content: "site of ${GREETING:-nobody}"}
"""


@pytest.fixture(scope="module")
def reader(images: dict[str, str]) -> str:
    return kit.busybox_image(
        "mypaas-test/reader:1",
        files={"www/index.html": "reader\n", "www/cgi-bin/read": READ},
        executable=("www/cgi-bin/read",),
    )


@pytest.fixture
def app(platform: kit.Platform) -> Iterator[str]:
    name = f"sec-{secrets.token_hex(3)}"
    yield name
    platform.cli("rm", name, "--yes")


def values_read(platform: kit.Platform, app: str) -> dict[str, str]:
    status, body = platform.get(app, "/cgi-bin/read")
    assert status == 200, body
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def wait_read(platform: kit.Platform, app: str, key: str, value: str) -> dict[str, str]:
    return dict(kit.wait_until(lambda: (v := values_read(platform, app)).get(key) == value and v))


def ls_ln(platform: kit.Platform, app: str, path: str) -> list[str]:
    [inst] = platform.wait_ready(app, 1)
    container = kit.docker_client().containers.get(inst["id"])
    code, out = container.exec_run(["ls", "-ln", path])
    assert code == 0, out
    return str(out.decode()).split()  # mode, links, uid, gid, size, ...


def operation_id(out: str) -> str:
    match = re.search(r"\(operation ([^)]+)\)", out)
    assert match, out
    return match.group(1)


def test_the_app_reads_its_secrets_and_configs_and_never_sees_them_shown(
    platform: kit.Platform, reader: str, app: str, tmp_path: Path
) -> None:
    token, banner = f"tok-{secrets.token_hex(8)}", f"ban-{secrets.token_hex(8)}"
    first, second = f"pw1-{secrets.token_hex(8)}", f"pw2-{secrets.token_hex(8)}"
    (tmp_path / "token.txt").write_text(token)
    (tmp_path / ".env").write_text(f"BANNER={banner}\nGREETING=tests\n")
    (tmp_path / "compose.yml").write_text(COMPOSE)
    shown: list[str] = []  # everything the CLI and the API answered

    r = platform.cli("secrets", "set", app, "db_password", stdin=first)  # before the app exists
    assert r.code == 0 and "secret db_password set" in r.out, r
    shown.append(repr(r))
    r = platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), "--no-wait")
    assert r.code == 0, r
    shown.append(repr(r))
    done = platform.wait_op({"id": operation_id(r.out)})
    assert done["status"] == "succeeded", done
    shown.append(repr(done))

    seen = wait_read(platform, app, "password", first)
    assert seen == {"token": token, "password": first, "banner": banner, "site": "site of tests"}
    assert ls_ln(platform, app, "/run/secrets/db_password")[:4] == ["-r--------", "1", "1000", "1000"]
    assert ls_ln(platform, app, "/run/secrets/token")[:4] == ["-r--r--r--", "1", "0", "0"]
    assert ls_ln(platform, app, "/etc/site.conf")[:4] == ["-r--r-----", "1", "0", "0"]

    r = platform.cli("secrets", "set", app, "db_password", "--no-wait", stdin=second)
    assert r.code == 0, r
    shown.append(repr(r))
    done = platform.wait_op({"id": operation_id(r.out)})
    assert done["status"] == "succeeded", done
    shown.append(repr(done))
    assert wait_read(platform, app, "password", second)["token"] == token
    releases = platform.cli("releases", app, "--json", check=True).json()
    assert len(releases) == 2

    for args in (
        ("config", app),
        ("config", app, "--json"),
        ("releases", app),
        ("releases", app, "--json"),
        ("secrets", "ls", app),
        ("secrets", "ls", app, "--json"),
        ("events", app),
        ("ps", app),
    ):
        r = platform.cli(*args)
        assert r.code == 0, r
        shown.append(repr(r))
    masked = platform.cli("config", app).out
    assert re.search(r"# secret db_password=\*+", masked), masked
    for path in ("", "/releases", "/secrets", "/config", "/instances"):
        shown.append(repr(platform.api("GET", f"/api/v1/apps/{app}{path}")))
    shown.append(repr(platform.api("GET", "/api/v1/apps")))

    leaks = [v for v in (token, banner, first, second) if any(v in text for text in shown)]
    assert leaks == []
    assert stored_in_clear(platform.home, (token, banner, first, second)) == []


def stored_in_clear(home: Path, values: tuple[str, ...]) -> list[str]:
    """The manager's files holding a value as it is, but for the copies it bind-mounts (home/secrets)."""
    found = []
    for path in home.rglob("*"):
        if path.is_file() and not path.is_relative_to(home / "secrets"):
            data = path.read_bytes()
            found += [f"{path}: {v}" for v in values if v.encode() in data]
    return found


def test_a_secret_file_that_is_missing_stops_the_deploy_before_anything_is_sent(
    platform: kit.Platform, reader: str, app: str, tmp_path: Path
) -> None:
    (tmp_path / "compose.yml").write_text(COMPOSE)
    r = platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"))
    assert r.code != 0
    assert "secrets.token.file" in r.err and "token.txt" in r.err, r
    assert platform.raw("GET", f"/api/v1/apps/{app}").status_code == 404


SMALL = """
services:
  web:
    image: mypaas-test/reader:1
    ports: ["80"]
    command: ["/bin/sh", "-c", "cp /run/secrets/db_password /www/index.html; exec httpd -f -p 80 -h /www"]
    secrets: [db_password]
secrets:
  db_password: {external: true}
"""


def test_a_rollback_mounts_the_old_value_and_unused_files_go(
    platform: kit.Platform, reader: str, app: str, tmp_path: Path
) -> None:
    (tmp_path / "compose.yml").write_text(SMALL)
    files = platform.home / "secrets" / app
    platform.cli("secrets", "set", app, "db_password", stdin="first value", check=True)
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), check=True)
    platform.wait_for(app, body="first value")
    [old] = list(files.iterdir())

    platform.cli("secrets", "set", app, "db_password", stdin="second value", check=True)
    platform.wait_for(app, body="second value")
    kit.wait_until(lambda: not old.exists())  # no container mounts it any more
    [new] = list(files.iterdir())
    r = platform.cli("secrets", "rm", app, "db_password")
    assert r.code != 0 and "db_password" in r.err, r  # the release mounts it

    platform.cli("rollback", app, "1", check=True)
    platform.wait_for(app, body="first value")
    kit.wait_until(lambda: old.exists() and not new.exists())
    assert len(platform.cli("releases", app, "--json", check=True).json()) == 3

    platform.cli("rm", app, "--yes", check=True)
    assert not files.exists()
    left = platform.raw("GET", f"/api/v1/apps/{app}/secrets")  # the values went with the app
    assert left.status_code == 404 or left.json() == [], left.text


def test_after_a_manager_restart_new_instances_get_the_values(
    platform: kit.Platform, reader: str, app: str, tmp_path: Path
) -> None:
    (tmp_path / "compose.yml").write_text(SMALL)
    platform.cli("secrets", "set", app, "db_password", stdin="kept value", check=True)
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), check=True)
    platform.wait_for(app, body="kept value")
    shutil.rmtree(platform.home / "secrets" / app)  # the files are copies: the store has the values
    platform.kill_manager()
    platform.up()
    platform.cli("restart", app, check=True)
    platform.wait_for(app, body="kept value")
    [before] = platform.wait_ready(app, 1)
    platform.cli("scale", app, "web=2", check=True)
    assert [i["release"] for i in platform.wait_ready(app, 2)] == [before["release"]] * 2
