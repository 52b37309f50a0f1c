"""Autoscaling and alerts on the real engine: a CPU-burning service is scaled up and back down through
desired state; alert rules POST to a local webhook receiver when an app is down (and resolve when it
is stopped) and when a container's memory nears its limit."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import kit

pytestmark = pytest.mark.integration

BURN_COMPOSE = """
services:
  burn:
    image: {image}
"""

WEB_WITH_A_LIMIT_COMPOSE = """
services:
  web:
    image: {image}
    expose: [80]
    deploy:
      resources:
        limits: {{memory: 64m}}
"""

MEM_COMPOSE = """
services:
  fill:
    image: mypaas-test/fill:1
    deploy:
      resources:
        limits: {memory: 16m}
"""


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform(metrics_interval_s=1, monitor_eval_s=1, autoscale_window_s=3) as p:
        yield p


class Receiver:
    """A webhook receiver on the Docker bridge (an address of this machine, not loopback) that keeps
    every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        address = kit.host_address()
        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/hook"
        # a private address: the rule must allow it (loopback would be refused outright)
        self.webhook = ("--webhook", self.url, "--allow-private")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, alert: str, status: str) -> dict[str, Any] | None:
        found = [b for b in self.bodies if b["alert"] == alert and b["status"] == status]
        return found[-1] if found else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _replicas(p: kit.Platform, app: str, service: str) -> int:
    return int(p.api("GET", f"/api/v1/apps/{app}")["services"][service]["replicas"])


def test_cpu_load_scales_up_then_back_down(platform: kit.Platform, tmp_path: Path) -> None:
    burn_until = int(time.time()) + 30  # every replica burns one core until then, then idles
    tag = f"mypaas-test/burn:{burn_until}"
    script = (
        f"(while :; do :; done) & b=$!; t=$(( {burn_until} - $(busybox date +%s) )); "
        '[ "$t" -gt 0 ] && sleep "$t"; kill $b; exec sleep 100000'
    )
    kit.busybox_image(tag, cmd=("/bin/sh", "-c", script), expose=None)
    app = f"as-{secrets.token_hex(3)}"
    (tmp_path / "compose.yml").write_text(BURN_COMPOSE.format(image=tag))
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), check=True)

    r = platform.cli("autoscale", app, "burn", "--min", "1", "--max", "3", "--cpu", "40", "--cooldown", "1/2")
    assert r.code == 0, r
    listed = platform.cli("autoscale", app, "--json", check=True).json()
    assert listed[0]["service"] == "burn" and listed[0]["target_cpu_pct"] == 40

    kit.wait_until(lambda: _replicas(platform, app, "burn") >= 2, timeout=25, interval=0.5)

    def autoscaled() -> list[dict[str, Any]]:  # the event log is written within 0.2 s
        events = platform.api("GET", "/api/v1/events", params={"app": app, "limit": 1000})
        return [e for e in events if e["kind"] == "autoscaled"]

    up = kit.wait_until(autoscaled, timeout=5)
    events = platform.api("GET", "/api/v1/events", params={"app": app, "limit": 1000})
    assert "burn 1→" in up[0]["message"] and "> target 40%" in up[0]["message"]
    scaled = [e for e in events if e["kind"] == "scaled"]
    assert scaled and "by autoscaler" in scaled[-1]["message"]  # through Apps.scale, like the API

    kit.wait_until(lambda: _replicas(platform, app, "burn") == 1, timeout=60, interval=0.5)
    kit.wait_until(lambda: any("< target 40%" in e["message"] for e in autoscaled()), timeout=5)
    kit.wait_until(lambda: len(platform.instances(app)) == 1, timeout=20)

    platform.cli("autoscale", app, "burn", "--off", check=True)
    assert platform.cli("autoscale", app, "--json", check=True).json() == []
    bad = platform.cli("autoscale", app, "burn", "--min", "3", "--max", "2", "--cpu", "50")
    assert bad.code == 1 and "max (2) is below min (3)" in bad.err
    assert platform.cli("autoscale", app, "nope", "--max", "2", "--cpu", "50").code == 1


def test_app_down_fires_and_resolves(
    platform: kit.Platform, images: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    app = f"al-{secrets.token_hex(3)}"
    (tmp_path / "compose.yml").write_text(WEB_WITH_A_LIMIT_COMPOSE.format(image=images["v1"]))
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), check=True)
    name = f"{app}-down"
    added = platform.cli(
        "alerts", "add", name, "--kind", "app_down", "--app", app, "--for", "1", *receiver.webhook
    )
    assert added.code == 0, added
    # A rule that surely fires (any memory use of the app) after as long: rules are evaluated by name,
    # `name` first, and their webhooks go out in order, so once this one came, `name` would have come
    # before it, were the app seen as down.
    seen = f"{app}-seen"
    rule = ["--kind", "memory_pct", "--app", app, "--threshold", "0.01", "--for", "1"]
    platform.cli("alerts", "add", seen, *rule, *receiver.webhook, check=True)
    kit.wait_until(lambda: receiver.find(seen, "firing"), timeout=15)
    assert receiver.find(name, "firing") is None  # it is up
    platform.cli("alerts", "rm", seen, check=True)

    platform.cli("scale", app, "web=0", check=True)  # down, not stopped: a stop pages no one
    fired = kit.wait_until(lambda: receiver.find(name, "firing"), timeout=15)
    assert fired["app"] == app and fired["value"] == 0 and fired["at"] > 0
    listed = platform.cli("alerts", "ls", "--json", check=True).json()
    assert [r["firing"] for r in listed if r["name"] == name] == [[app]]

    platform.cli("stop", app, check=True)  # a planned stop: the firing alert is over
    resolved = kit.wait_until(lambda: receiver.find(name, "resolved"), timeout=20)
    assert resolved["app"] == app
    listed = platform.cli("alerts", "ls", "--json", check=True).json()
    assert [r["firing"] for r in listed if r["name"] == name] == [[]]

    def both_events() -> bool:
        events = platform.api("GET", "/api/v1/events", params={"app": app, "limit": 1000})
        kinds = [e["kind"] for e in events]
        return "alert_firing" in kinds and "alert_resolved" in kinds

    kit.wait_until(both_events, timeout=5)
    platform.cli("alerts", "rm", name, check=True)
    assert platform.cli("alerts", "rm", name).code == 1


def test_memory_near_its_limit_fires(platform: kit.Platform, receiver: Receiver, tmp_path: Path) -> None:
    kit.busybox_image(
        "mypaas-test/fill:1",
        cmd=("/bin/sh", "-c", "busybox head -c 12000000 /dev/zero > /dev/shm/fill; exec sleep 100000"),
        expose=None,
    )
    app = f"mem-{secrets.token_hex(3)}"
    (tmp_path / "compose.yml").write_text(MEM_COMPOSE)
    name = f"{app}-mem"
    platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), check=True)  # a rule needs its app
    platform.cli(
        "alerts",
        "add",
        name,
        "--kind",
        "memory_pct",
        "--app",
        app,
        "--threshold",
        "50",
        "--for",
        "1",
        *receiver.webhook,
        check=True,
    )
    fired = kit.wait_until(lambda: receiver.find(name, "firing"), timeout=20)
    assert fired["app"] == app and fired["value"] > 50 and fired["threshold"] == 50
    bad = platform.cli("alerts", "add", "x", "--kind", "nope", *receiver.webhook)
    assert bad.code == 1 and "unknown alert kind" in bad.err
    platform.cli("alerts", "rm", name, check=True)


def test_webhooks_to_the_platforms_insides_are_refused(platform: kit.Platform, receiver: Receiver) -> None:
    """Issue 13 (SSRF): a rule cannot point its webhook at the platform's API on loopback (Caddy's admin
    API, the old target, is on a unix socket now) nor, even with --allow-private, at the platform's own
    ports on another address of this machine; a receiver on a private address of this machine works once
    the rule allows private targets."""
    admin = f"127.0.0.1:{platform.api_port}"
    stop = platform.cli(
        "alerts", "add", "stop", "--kind", "host_unreachable", "--webhook", f"http://{admin}/stop"
    )
    assert (
        stop.code == 1
        and stop.err.strip()
        == f"error: webhook refused: {admin.split(':', maxsplit=1)[0]} is a loopback address"
    )
    local = platform.cli(
        "alerts", "add", "l", "--kind", "host_unreachable", "--webhook", "http://localhost:2019/"
    )
    assert local.code == 1 and local.err.strip().startswith("error: webhook refused: localhost: ")
    inside = f"http://{kit.host_address()}:{platform.api_port}/api/v1/apps"
    api = platform.cli(
        "alerts", "add", "a", "--kind", "host_unreachable", "--webhook", inside, "--allow-private"
    )
    assert api.code == 1 and "one of the platform's own endpoints" in api.err
    plain = platform.cli("alerts", "add", "p", "--kind", "host_unreachable", "--webhook", receiver.url)
    assert plain.code == 1 and "--allow-private" in plain.err
    assert platform.api("GET", "/api/v1/alerts") == []
