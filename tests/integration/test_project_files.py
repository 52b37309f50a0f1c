"""The compose project's own files on the real engine: a web server whose config file and static folder
are relative bind mounts (``./conf/httpd.conf``, ``./html``), uploaded with the deploy and part of the
release; anonymous volumes and tmpfs mounts in the container."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import docker
import pytest

from tests import kit

pytestmark = pytest.mark.integration

IMAGE = "mypaas-test/plain:2"  # busybox httpd, pages of its own in /www that a ./ folder hides
COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["/bin/httpd", "-f", "-p", "80", "-h", "/srv/html", "-c", "/etc/httpd.conf"]
    ports: ["80"]
    volumes:
      - ./conf/httpd.conf:/etc/httpd.conf:ro
      - ./html:/srv/html
      - ./html:/www:ro
      - /cache
      - data:/data:nocopy
      - data:/seen:ro,delegated
      - type: tmpfs
        target: /scratch
        tmpfs: {{size: 2m}}
    tmpfs: ["/run/fast:size=1m,mode=700"]
volumes:
  data: {{}}
"""


@pytest.fixture(scope="module")
def plain_image() -> str:
    return kit.busybox_image(
        IMAGE, files={"www/index.html": "the image's own page\n", "www/image-only.html": "hidden\n"}
    )


def project(folder: Path, index: str) -> Path:
    (folder / "conf").mkdir(exist_ok=True)
    (folder / "conf" / "httpd.conf").write_text("E404:missing.html\n")  # the config: its own 404 page
    (folder / "html").mkdir(exist_ok=True)
    (folder / "html" / "index.html").write_text(index)
    (folder / "html" / "missing.html").write_text("no such page, says the project's config\n")
    os.chown(folder / "html" / "missing.html", 1234, 1234)  # owners and modes go as they are
    (folder / "html" / "missing.html").chmod(0o640)
    (folder / "html" / "secret.key").write_text("left out by .dockerignore\n")
    (folder / ".dockerignore").write_text("html/*.key\n")
    (folder / "compose.yml").write_text(COMPOSE)
    return folder / "compose.yml"


def served(p: kit.Platform, app: str, path: str, status: int, body: str, timeout: float = 20) -> None:
    kit.wait_served(p, app, path, status, body, timeout)


def anonymous_volume(container_id: str) -> str:
    mounts = kit.docker_client().containers.get(container_id).attrs["Mounts"]
    return str(next(m["Name"] for m in mounts if m["Destination"] == "/cache"))


def volume_there(name: str) -> bool:
    return bool(kit.docker_client().volumes.list(filters={"name": name}))


def test_files_served_changed_and_rolled_back(
    platform: kit.Platform, plain_image: str, tmp_path: Path
) -> None:
    app = f"files-{secrets.token_hex(3)}"
    compose = project(tmp_path, "first version\n")
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code == 0, r
    served(platform, app, "/", 200, "first version\n")
    served(platform, app, "/nope", 404, "no such page, says the project's config\n")  # ./conf is in use
    assert platform.get(app, "/secret.key")[0] == 404  # .dockerignore kept it out of the upload
    first = anonymous_volume(platform.wait_ready(app, 1)[0]["id"])

    again = platform.cli("deploy", app, "-f", str(compose))  # nothing changed: the same derived image
    assert again.code == 0, again
    assert "unchanged" in again.out + again.err

    (tmp_path / "html" / "index.html").write_text("second version\n")
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code == 0, r
    served(platform, app, "/", 200, "second version\n")
    kit.wait_until(lambda: not volume_there(first))  # it went with the instance it belonged to
    rels = platform.cli("releases", app, "--json").json()
    assert rels[0]["images"]["web"]["id"] != rels[-1]["images"]["web"]["id"]
    assert [(f["source"], f["target"]) for f in rels[0]["files"]["web"]] == [
        ("./conf/httpd.conf", "/etc/httpd.conf"),
        ("./html", "/srv/html"),
        ("./html", "/www"),
    ]

    assert platform.cli("rollback", app).code == 0
    served(platform, app, "/", 200, "first version\n")

    insts = platform.wait_ready(app, 1)
    container = kit.docker_client().containers.get(insts[0]["id"])
    mounts = container.exec_run(["/bin/cat", "/proc/mounts"]).output.decode()
    targets = {line.split()[1]: line.split()[2:4] for line in mounts.splitlines()}
    assert targets["/scratch"][0] == "tmpfs" and "size=2048k" in targets["/scratch"][1], mounts
    assert targets["/run/fast"][0] == "tmpfs" and "size=1024k,mode=700" in targets["/run/fast"][1], mounts
    listed = container.exec_run(["/bin/ls", "-a", "/www"]).output.decode().split()
    assert sorted(listed) == [".", "..", "index.html", "missing.html"]  # the folder hides the image's
    rw = container.exec_run(["/bin/ls", "-ln", "/srv/html/missing.html"]).output.decode().split()
    ro = container.exec_run(["/bin/ls", "-ln", "/www/missing.html"]).output.decode().split()
    assert (rw[0], rw[2], rw[3], ro[0]) == ("-rw-r-----", "1234", "1234", "-r--r-----")
    volumes = {m["Destination"]: m for m in container.attrs["Mounts"] if m["Type"] == "volume"}
    assert sorted(volumes) == ["/cache", "/data", "/seen"]
    assert volumes["/data"]["Name"] == volumes["/seen"]["Name"] and not volumes["/seen"]["RW"]
    anonymous = [volumes["/cache"]]
    volume = anonymous[0]["Name"]
    write = container.exec_run(["/bin/sh", "-c", "echo mine > /srv/html/index.html"])
    assert write.exit_code == 0  # the instance writes to its own copy
    served(platform, app, "/", 200, "mine\n")

    assert platform.cli("rm", app, "--yes").code == 0
    kit.wait_until(lambda: not volume_there(volume))


def test_a_missing_file_is_named_before_anything_is_sent(
    platform: kit.Platform, plain_image: str, tmp_path: Path
) -> None:
    app = f"nofile-{secrets.token_hex(3)}"
    compose = project(tmp_path, "never served\n")
    (tmp_path / "conf" / "httpd.conf").unlink()
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code != 0
    assert "./conf/httpd.conf" in r.err and "not found" in r.err, r
    assert app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]


def test_an_external_volume_of_the_platform(platform: kit.Platform, plain_image: str, tmp_path: Path) -> None:
    app = f"ext-{secrets.token_hex(3)}"
    volume = f"mypaas-test-shared-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    ports: ['80']\n    volumes: ['shared:/www:ro']\n"
        f"volumes:\n  shared:\n    external: true\n    name: {volume}\n"
    )
    missing = platform.cli("deploy", app, "-f", str(compose))
    assert missing.code != 0 and volume in missing.err, missing
    client = kit.docker_client()
    client.volumes.create(volume, labels={kit.TEST_LABEL: "1"})
    try:
        client.containers.run(
            IMAGE,
            ["/bin/sh", "-c", "echo made by the admin > /v/index.html"],
            volumes={volume: {"bind": "/v", "mode": "rw"}},
            labels={kit.TEST_LABEL: "1"},
            remove=True,
        )
        r = platform.cli("deploy", app, "-f", str(compose))
        assert r.code == 0, r
        served(platform, app, "/", 200, "made by the admin\n")
        assert platform.cli("rm", app, "--yes").code == 0
        assert client.volumes.get(volume)  # the platform's volume outlives the app
    finally:
        platform.cli("rm", app, "--yes")
        with contextlib.suppress(docker.errors.APIError):
            client.volumes.get(volume).remove(force=True)


@pytest.mark.parametrize(
    ("mount", "setting"),
    [
        ("/srv:/srv", "allow_host_mounts"),
        ("/var/run/docker.sock:/var/run/docker.sock", "allow_docker_socket"),
    ],
)
def test_host_paths_and_the_docker_socket_need_the_admin(
    platform: kit.Platform, plain_image: str, tmp_path: Path, mount: str, setting: str
) -> None:
    app = f"host-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    ports: ['80']\n    volumes: ['{mount}']\n"
    )
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code != 0 and setting in r.err and "services.web.volumes[0]" in r.err, r
    assert app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]
