"""The compose project's own files on Swarm: the derived image (the service's image plus its ``./``
files) reaches another host through the platform's registry, and the task there serves them; a change
is a new release there too. Anonymous volumes and tmpfs do not keep the task on the manager's host."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Platform, busybox_image, cluster_platform, wait_served, wait_until

pytestmark = pytest.mark.integration

IMAGE = "mypaas-test/cl-plain:1"
COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["/bin/httpd", "-f", "-p", "80", "-h", "/srv/html", "-c", "/etc/httpd.conf"]
    expose: [80]
    volumes:
      - ./conf/httpd.conf:/etc/httpd.conf:ro
      - ./html:/srv/html
      - /cache
    tmpfs: /scratch
    deploy:
      placement:
        constraints: [node.role==worker]
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    busybox_image(IMAGE, files={"www/index.html": "the image's own page\n"})
    with cluster_platform(1, prefix="mpfiles", subnet="10.200.57") as pair:
        yield pair


def served(p: Platform, app: str, path: str, status: int, body: str, timeout: float = 60) -> None:
    wait_served(p, app, path, status, body, timeout)


def test_project_files_served_from_another_host(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, cluster = cl
    worker = cluster.hosts[0]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "httpd.conf").write_text("E404:missing.html\n")
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("from the project\n")
    (tmp_path / "html" / "missing.html").write_text("the project's 404\n")
    (tmp_path / "compose.yml").write_text(COMPOSE)
    compose = str(tmp_path / "compose.yml")

    p.cli("deploy", "files", "-f", compose, check=True, timeout=180)
    served(p, "files", "/", 200, "from the project\n")
    served(p, "files", "/nope", 404, "the project's 404\n")
    assert wait_until(lambda: [i["host"] for i in p.instances("files") if i["ready"]], timeout=30) == [
        worker.name
    ]
    ps = worker.docker("ps", "--format", "{{.ID}}", "--filter", "label=mypaas.app=files")
    container = ps.stdout.split()[0]
    mounts = worker.docker("exec", container, "/bin/cat", "/proc/mounts").stdout
    assert any(line.split()[1:3] == ["/scratch", "tmpfs"] for line in mounts.splitlines()), mounts
    inspected = json.loads(worker.docker("inspect", "--format", "{{json .Mounts}}", container).stdout)
    assert sorted((m["Type"], m["Destination"]) for m in inspected) == [
        ("tmpfs", "/scratch"),
        ("volume", "/cache"),
    ]

    (tmp_path / "html" / "index.html").write_text("changed in the project\n")
    p.cli("deploy", "files", "-f", compose, check=True, timeout=180)
    served(p, "files", "/", 200, "changed in the project\n")
    p.cli("rollback", "files", check=True, timeout=180)
    served(p, "files", "/", 200, "from the project\n")
    p.cli("rm", "files", "--yes", check=True)
