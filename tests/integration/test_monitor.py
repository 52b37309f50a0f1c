"""The monitor on the real engine: metrics read from cgroup files (CLI, API and /metrics) and the event
log of deploys, scaling, a container killed from outside and an OOM kill."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import kit

pytestmark = pytest.mark.integration

OOM_COMPOSE = """
services:
  hog:
    image: mypaas-test/hog:1
    restart: "no"
    deploy:
      resources:
        limits: {memory: 8m}
"""


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform(metrics_interval_s=1) as p:
        yield p


def _events(p: kit.Platform, app: str) -> list[dict[str, Any]]:
    return list(p.api("GET", "/api/v1/events", params={"app": app, "limit": 1000}))


def _kinds(p: kit.Platform, app: str) -> list[str]:
    return [e["kind"] for e in _events(p, app)]


def _prometheus_value(text: str, name: str, app: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'app="{app}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_of_a_loaded_app(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"mon-{secrets.token_hex(3)}"
    platform.cli("deploy", app, "--image", images["v1"], "--port", "80", check=True)
    platform.wait_for(app, body="version one")
    for _ in range(300):
        platform.get(app)

    def figures() -> str | None:
        text = platform.raw("GET", "/metrics").text
        names = (
            "mypaas_instance_cpu_seconds_total",
            "mypaas_instance_memory_bytes",
            "mypaas_instance_network_receive_bytes_total",
            "mypaas_instance_network_transmit_bytes_total",
        )
        return text if all(_prometheus_value(text, n, app) > 0 for n in names) else None

    text = kit.wait_until(figures, timeout=15, interval=0.5)
    assert "mypaas_host_memory_total_bytes" in text
    assert "# TYPE mypaas_instance_cpu_seconds_total counter" in text
    assert platform.raw("GET", "/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401

    def series() -> dict[str, Any] | None:
        r = platform.cli("metrics", app, "--since", "10m", "--json", check=True)
        data: dict[str, Any] = r.json()
        total = data["total"]
        return data if len(total) >= 2 and total[-1]["mem_bytes"] > 0 else None

    data = kit.wait_until(series, timeout=15, interval=0.5)
    assert "web" in data["services"]
    assert any(p["rx_rate"] > 0 for p in data["total"])
    shown = platform.cli("metrics", app, check=True).out
    assert "web" in shown and "CPU" in shown
    frame = platform.cli("top", "--once", check=True).out
    assert app in frame and "host" in frame and "REQ/S" in frame
    assert "HOST" not in frame  # no cluster: no table of hosts


def test_events_of_deploy_scale_and_a_kill(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"ev-{secrets.token_hex(3)}"
    platform.cli("deploy", app, "--image", images["v1"], "--port", "80", check=True)

    # the event log is written in the background, and the monitor sees the instance ready on its own
    # clock: either event may be stored first
    def both() -> list[str] | None:
        kinds = _kinds(platform, app)
        return kinds if {"instance_ready", "release_activated"} <= set(kinds) else None

    kinds = kit.wait_until(both, timeout=10)
    assert kinds.index("deploy_accepted") < kinds.index("release_activated")
    platform.cli("scale", app, "web=2", check=True)
    platform.wait_ready(app, 2)
    scaled = [e for e in _events(platform, app) if e["kind"] == "scaled"]
    assert scaled and scaled[-1]["data"]["replicas"] == {"web": 2}

    victim = platform.instances(app)[0]["name"]
    kit.docker_client().containers.get(victim).kill()

    def exited() -> dict[str, Any] | None:
        found = [e for e in _events(platform, app) if e["kind"] == "instance_exited"]
        return found[-1] if found else None

    event = kit.wait_until(exited, timeout=10)
    assert event["data"]["instance"] == victim
    assert event["data"]["exit_code"] == 137
    assert event["data"]["expected"] is False
    shown = platform.cli("events", app, check=True).out
    assert "instance_exited" in shown and "scaled" in shown
    as_json = json.loads(platform.cli("events", app, "--json", check=True).out)
    assert as_json[-1]["id"] > as_json[0]["id"]


def test_follow_mode_returns_new_events(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"fo-{secrets.token_hex(3)}"
    newest = platform.api("GET", "/api/v1/events", params={"limit": 1})
    after = newest[-1]["id"] if newest else 0
    platform.cli("deploy", app, "--image", images["v1"], "--port", "80", "--no-wait", check=True)
    found = platform.api("GET", "/api/v1/events", params={"app": app, "after": after, "wait": 10})
    assert found and found[0]["kind"] == "deploy_accepted"


def test_an_oom_kill_is_an_event(platform: kit.Platform, tmp_path: Path) -> None:
    kit.busybox_image(
        "mypaas-test/hog:1", cmd=("/bin/sh", "-c", "sleep 2; x=a; while true; do x=$x$x; done"), expose=None
    )
    app = f"oom-{secrets.token_hex(3)}"
    (tmp_path / "compose.yml").write_text(OOM_COMPOSE)
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), "--no-wait", check=True)

    def oom() -> dict[str, Any] | None:
        found = [e for e in _events(platform, app) if e["kind"] == "oom_killed"]
        return found[-1] if found else None

    event = kit.wait_until(oom, timeout=30, interval=0.5)
    assert event["data"]["service"] == "hog"
    assert "out of memory" in event["message"]
