"""Compose service options on Swarm, for real (two netns hosts and this machine's engine as the manager):
``deploy.mode: global`` runs one task on each host, ``deploy.update_config`` becomes the service's update
policy and a stop-first rollout, ``deploy.labels`` label the service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Platform, busybox_image, cluster_platform, docker_client, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: mypaas-test/cl-web:{version}
    expose: [80]
    deploy:
      mode: global
      labels: {{team: shop}}
      update_config: {{parallelism: 2, delay: 1s, order: stop-first, failure_action: pause}}
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    for version in ("1", "2"):
        busybox_image(f"mypaas-test/cl-web:{version}", files={"www/index.html": f"v{version}"})
    with cluster_platform(2, prefix="mpo", subnet="10.200.12") as pair:
        yield pair


def deploy(p: Platform, tmp: Path, app: str, version: str) -> None:
    path = tmp / f"compose-{time.monotonic_ns()}.yml"
    path.write_text(COMPOSE.format(version=version))
    r = p.cli("deploy", app, "-f", str(path), timeout=180)
    assert r.code == 0, r


def ready_on(p: Platform, app: str, release: int) -> list[str]:
    """The hosts ("" for the manager's engine) of the app's ready instances of ``release``."""
    return sorted(i["host"] for i in p.instances(app) if i["ready"] and i["release"] == release)


def test_global_mode_and_update_config(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, cluster = cl
    nodes = len(cluster.hosts) + 1  # the workers and this machine, the manager
    deploy(p, tmp_path, "glob", "1")
    on = wait_until(lambda: len(hosts := ready_on(p, "glob", 1)) == nodes and hosts, timeout=120)
    assert len(set(on)) == nodes  # one instance on each host
    assert p.get("glob")[1] == "v1"

    service = next(iter(docker_client().services.list(filters={"label": "mypaas.app=glob"})))
    spec = service.attrs["Spec"]
    assert spec["Mode"] == {"Global": {}}
    assert spec["Labels"]["team"] == "shop"
    update = spec["UpdateConfig"]
    assert (update["Parallelism"], update["Order"], update["FailureAction"]) == (2, "stop-first", "pause")
    assert update["Delay"] == 1_000_000_000

    deploy(p, tmp_path, "glob", "2")  # stop-first: release 1 goes, then release 2 runs on every host
    on = wait_until(lambda: len(hosts := ready_on(p, "glob", 2)) == nodes and hosts, timeout=120)
    assert len(set(on)) == nodes
    assert wait_until(lambda: all(i["release"] == 2 for i in p.instances("glob")), timeout=60)
    assert p.get("glob")[1] == "v2"
    p.cli("rm", "glob", "--yes", check=True)


OPTIONS = """
services:
  web:
    image: mypaas-test/cl-web:1
    expose: [80]
    container_name: legacy-web
    hostname: front
    user: "1000:1000"
    working_dir: /tmp
    init: false
    stop_signal: SIGINT
    stop_grace_period: 3s
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    cap_drop: [NET_RAW]
    sysctls: {net.core.somaxconn: 512}
    extra_hosts: ["db.local:10.1.2.3"]
    shm_size: 16m
    logging: {driver: local}
    restart: on-failure:2
"""


def test_container_options_reach_the_swarm_service(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, _ = cl
    path = tmp_path / "options.yml"
    path.write_text(OPTIONS)
    r = p.cli("deploy", "opts", "-f", str(path), timeout=180)
    assert r.code == 0, r
    wait_until(lambda: ready_on(p, "opts", 1), timeout=120)  # the engine took the spec and runs it
    assert p.get("opts")[1] == "v1"
    service = next(iter(docker_client().services.list(filters={"label": "mypaas.app=opts"})))
    task = service.attrs["Spec"]["TaskTemplate"]
    spec = task["ContainerSpec"]
    assert (spec["User"], spec["Dir"], spec["Hostname"], spec["StopSignal"]) == (
        "1000:1000",
        "/tmp",
        "front",
        "SIGINT",
    )
    assert spec["StopGracePeriod"] == 3_000_000_000 and spec["Init"] is False
    assert spec["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert spec["CapabilityDrop"] == ["CAP_NET_RAW"] and spec["Sysctls"] == {"net.core.somaxconn": "512"}
    assert spec["Hosts"] == ["10.1.2.3 db.local"]
    assert any(m["Target"] == "/dev/shm" and m["Type"] == "tmpfs" for m in spec["Mounts"])
    assert task["LogDriver"]["Name"] == "local"
    assert task["RestartPolicy"]["Condition"] == "on-failure" and task["RestartPolicy"]["MaxAttempts"] == 2
    assert "legacy-web" in task["Networks"][0]["Aliases"]
    p.cli("rm", "opts", "--yes", check=True)
