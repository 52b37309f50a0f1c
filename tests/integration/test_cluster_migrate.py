"""Apps deployed before the platform became a cluster keep running, and move to Swarm with
`mypaas cluster migrate` (or their next deploy), keeping their releases and domains."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.test_cluster import Loop
from tests.kit import busybox_image, docker_client, running_platform, wait_until

pytestmark = pytest.mark.integration


def test_apps_from_before_the_cluster_move_over(tmp_path: Path) -> None:
    """An app deployed on the docker backend keeps running when the platform becomes a cluster, and
    `mypaas cluster migrate` moves it to Swarm with its releases and domains."""
    busybox_image("mypaas-test/cl-web:1", files={"www/index.html": "v1"})
    client = docker_client()
    if client.info()["Swarm"]["LocalNodeState"] == "active":
        pytest.skip("this engine is in a Swarm already")
    try:
        with running_platform() as p:
            p.cli("deploy", "old", "--image", "mypaas-test/cl-web:1", "--port", "80", check=True)
            p.cli("domains", "add", "old", "old.example.com", check=True)
            before = p.instances("old")
            assert before and not before[0]["host"]
            p.cli("cluster", "init", "--advertise-addr", "127.0.0.1", check=True)
            assert p.get("old")[0] == 200  # still the container
            with Loop(p, "old") as loop:
                out = p.cli("cluster", "migrate", check=True, timeout=120)
                time.sleep(0.5)
            assert "old" in out.err + out.out
            assert loop.failed == []
            after = wait_until(lambda: [i for i in p.instances("old") if i["host"]], timeout=20)
            assert len(after) == 1 and after[0]["release"] == 1
            assert wait_until(lambda: len(p.instances("old")) == 1, timeout=20)
            assert p.get("old.example.com")[1] == "v1"
            assert [r["version"] for r in p.cli("releases", "old", "--json", check=True).json()] == [1]
            assert client.containers.list(filters={"label": "mypaas.app=old", "name": "old-web"}) == []
    finally:
        client.swarm.leave(force=True)
