"""Metrics of instances on other hosts, for real: two netns hosts (their own engines, cgroup parent
``/docker-<host>``) run an app's Swarm tasks; the manager reads their cgroup files over SSH each round,
so `mypaas metrics`, /api/v1/metrics/now and /metrics show them like local instances."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Platform, busybox_image, cluster_platform, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: mypaas-test/cm-web:1
    expose: [80]
    deploy:
      replicas: 2
      placement:
        constraints: [node.role==worker]
  burn:
    image: mypaas-test/cm-burn:1
    deploy:
      replicas: 1
      placement:
        constraints: [node.role==worker]
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    busybox_image("mypaas-test/cm-web:1")
    busybox_image("mypaas-test/cm-burn:1", cmd=("/bin/sh", "-c", "while :; do :; done"), expose=None)
    with cluster_platform(2, prefix="mpm", subnet="10.200.10", metrics_interval_s=1) as pair:
        yield pair


def _running(p: Platform, app: str) -> list[dict[str, Any]]:
    return [i for i in p.instances(app) if i["state"] in ("starting", "healthy", "unhealthy")]


def test_instances_on_other_hosts_have_figures(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, cluster = cl
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE)
    p.cli("deploy", "far", "-f", str(compose), check=True, timeout=180)
    insts = wait_until(lambda: (r := _running(p, "far")) and len(r) == 3 and r, timeout=60)
    workers = {h.name for h in cluster.hosts}
    assert {i["host"] for i in insts} <= workers  # every instance runs on another host than the manager
    names = {i["name"]: i["service"] for i in insts}
    started = time.monotonic()

    def now_figures() -> dict[str, dict[str, Any]] | None:
        latest = p.api("GET", "/api/v1/metrics/now")["instances"]
        mine = {s["instance"]: s for s in latest if s["app"] == "far"}
        if set(mine) != set(names) or any(s["mem_bytes"] <= 0 for s in mine.values()):
            return None
        burner = next(s for name, s in mine.items() if names[name] == "burn")
        return mine if burner["cpu_pct"] > 20 else None

    latest = wait_until(now_figures, timeout=15, interval=0.5)
    elapsed = time.monotonic() - started
    for name, sample in latest.items():
        assert sample["cpu_seconds"] > 0, name
        # no limit in the file: the platform's default (default_memory, 1 GiB) is the one reported
        assert sample["rx_bytes"] >= 0 and sample["mem_limit"] == 2**30, name
    idle = [s for name, s in latest.items() if names[name] == "web"]
    assert all(s["cpu_pct"] < 20 for s in idle), idle

    def series() -> dict[str, Any] | None:
        data: dict[str, Any] = p.cli("metrics", "far", "--since", "5m", "--json", check=True).json()
        web, burn = data["services"].get("web") or [], data["services"].get("burn") or []
        if not web or not burn:
            return None
        ok_web = web[-1]["instances"] == 2 and web[-1]["mem_bytes"] > 0
        ok_burn = burn[-1]["mem_bytes"] > 0 and burn[-1]["cpu_pct"] > 20
        return data if ok_web and ok_burn else None

    data = wait_until(series, timeout=15, interval=0.5)
    assert data["total"][-1]["instances"] == 3
    text = p.raw("GET", "/metrics").text
    burner_name = next(name for name, svc in names.items() if svc == "burn")
    assert f'mypaas_instance_memory_bytes{{app="far",service="burn",instance="{burner_name}"' in text
    table = p.cli("metrics", "far", check=True).out
    assert "burn" in table and "web" in table
    hosts_now = {h["name"]: h for h in p.api("GET", "/api/v1/metrics/now")["hosts"]}
    assert workers <= set(hosts_now) and all(hosts_now[w]["state"] == "ready" for w in workers)
    frame = p.cli("top", "--once", check=True).out
    assert "HOST" in frame and all(w in frame for w in workers)
    print(f"figures of the other hosts' instances within {elapsed:.1f}s")
