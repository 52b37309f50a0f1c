"""The router's request figures on the real platform: requests through Caddy land in its access log (with
MYPAAS_ROUTER=haproxy: HAProxy's per-app counters and its ring of durations), the monitor reads them each
sampling round into `mypaas metrics APP`, /metrics and the error_rate alert
(POSTed to a local webhook receiver), and a requests/s autoscaling target scales the routed service.

Errors are 5xx answers: here the app's own 500 (a busybox CGI script); the app's 404 is not one, and
requests for a host of no app (the router's 404 catch-all) are not counted at all."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests import kit
from tests.integration.test_autoscale_alerts import Receiver

pytestmark = pytest.mark.integration

FAIL_CGI = (  # busybox httpd passes a CGI answer that starts with its own status line as it is
    "#!/bin/sh\n"
    'printf "HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\\n"\n'
)


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform(metrics_interval_s=1, monitor_eval_s=1, autoscale_window_s=5) as p:
        yield p


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def failing_image() -> str:
    """A web server whose /cgi-bin/fail answers 500."""
    tag = "mypaas-test/fail500:1"
    kit.busybox_image(
        tag,
        files={"www/index.html": "fine\n", "www/cgi-bin/fail": FAIL_CGI},
        executable=("www/cgi-bin/fail",),
    )
    return tag


def _totals(p: kit.Platform, app: str) -> tuple[int, int]:
    data = p.cli("metrics", app, "--since", "1h", "--json", check=True).json()
    points = data["requests"]
    return sum(x["requests"] for x in points), sum(x["errors"] for x in points)


def _until_served(p: kit.Platform, app: str, timeout: float = 20) -> tuple[int, int]:
    """Request / through the router until the app answers it; returns how many of those requests the
    app's figures count (not the catch-all's 404s, from before its route was there), and how many of
    them were errors (a 502 while its instance was not reachable yet)."""
    counted, errors = 0, 0

    def served() -> bool:
        nonlocal counted, errors
        status, body = p.get(app)
        if status not in (0, 404):
            counted += 1
            errors += status >= 500
        return status == 200 and "fine" in body

    kit.wait_until(served, timeout=timeout, interval=0.05)
    return counted, errors


def test_requests_errors_and_latency_reach_metrics_and_the_error_rate_alert(
    platform: kit.Platform, receiver: Receiver, failing_image: str
) -> None:
    app = f"rq-{secrets.token_hex(3)}"
    platform.cli("deploy", app, "--image", failing_image, "--port", "80", check=True)
    base_requests, base_errors = _until_served(platform, app)
    name = f"{app}-errors"
    rule = ["--kind", "error_rate", "--app", app, "--threshold", "20", "--for", "1"]
    added = platform.cli("alerts", "add", name, *rule, *receiver.webhook)
    assert added.code == 0 and "no data source" not in added.out, added

    assert [platform.get("nobody-here.localhost")[0] for _ in range(4)] == [404] * 4  # not an app's
    statuses = [platform.get(app, "/")[0] for _ in range(10)]
    statuses += [platform.get(app, "/missing")[0] for _ in range(3)]
    statuses += [platform.get(app, "/cgi-bin/fail")[0] for _ in range(5)]
    assert statuses == [200] * 10 + [404] * 3 + [500] * 5

    # The access log is read in order: exactly these 18 once they are in, so the catch-all's 4, logged
    # before them, were read and not counted; one more request, counted alone, shows that the rounds
    # after them add nothing else.
    kit.wait_until(lambda: _totals(platform, app) == (base_requests + 18, base_errors + 5), timeout=10)
    assert platform.get(app, "/")[0] == 200
    kit.wait_until(lambda: _totals(platform, app) == (base_requests + 19, base_errors + 5), timeout=10)

    fired = kit.wait_until(lambda: receiver.find(name, "firing"), timeout=10)
    assert fired["app"] == app and fired["kind"] == "error_rate" and fired["value"] > 20
    # no requests in the window any more: nothing to rate, the alert is over
    resolved = kit.wait_until(lambda: receiver.find(name, "resolved"), timeout=15)
    assert resolved["app"] == app

    def now_busy() -> dict[str, Any] | None:  # the newest interval's figures, as `mypaas top` shows them
        platform.get(app, "/")
        figures: dict[str, Any] | None = platform.api("GET", "/api/v1/metrics/now")["requests"].get(app)
        return figures if figures and figures["rps"] > 0 else None

    busy_now = kit.wait_until(now_busy, timeout=10, interval=0.2)
    assert busy_now["latency_p95_ms"] is not None and busy_now["error_pct"] is not None

    data = platform.cli("metrics", app, "--json", check=True).json()
    busy = [x for x in data["requests"] if x["requests"]]
    assert all(x["latency_ms"] > 0 and x["latency_p95_ms"] > 0 for x in busy)
    assert any(x["error_pct"] for x in busy) and all(x["rps"] > 0 for x in busy)
    text = platform.cli("metrics", app, check=True).out
    assert "requests (the router's figures of the app, last minute):" in text and "p95" in text
    assert "(all)" in text

    metrics = platform.raw("GET", "/metrics").text
    assert f'mypaas_app_requests_total{{app="{app}"}}' in metrics
    errors = f'mypaas_app_request_errors_total{{app="{app}"}}'
    assert int(next(x for x in metrics.splitlines() if x.startswith(errors)).split()[-1]) >= 5
    assert f'mypaas_app_request_duration_seconds_count{{app="{app}"}}' in metrics

    if platform.env.get("MYPAAS_ROUTER") == "haproxy":  # counters and an in-memory ring: no file
        assert not (platform.home / "logs" / "access.log").exists()
    else:
        access = (platform.home / "logs" / "access.log").read_text()
        assert '"status":500' in access and f'"host":"{app}.localhost"' in access
        assert '"headers"' not in access  # filtered out: small lines, no cookies
        assert "handled request" not in (platform.home / "logs" / "caddy.log").read_text()
    platform.cli("alerts", "rm", name, check=True)


def test_requests_per_second_target_scales_the_routed_service(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"rps-{secrets.token_hex(3)}"
    platform.cli("deploy", app, "--image", images["v1"], "--port", "80", check=True)
    platform.wait_for(app, 200)
    web = platform.api("GET", f"/api/v1/apps/{app}")["web"]
    policy = {"min": 1, "max": 3, "target_rps_per_replica": 2, "cooldown_up_s": 1, "cooldown_down_s": 600}
    platform.api("PUT", f"/api/v1/apps/{app}/autoscale/{web}", json=policy)

    stop = threading.Event()

    def load() -> None:  # about 20 requests/s: 10 times the target of one replica
        while not stop.is_set():
            platform.get(app)
            stop.wait(0.05)  # the load's pace, not a wait for anything

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:

        def replicas() -> int:
            return int(platform.api("GET", f"/api/v1/apps/{app}")["services"][web]["replicas"])

        kit.wait_until(lambda: replicas() == 3, timeout=30, interval=0.5)
    finally:
        stop.set()
        thread.join(5)

    def autoscaled() -> list[dict[str, Any]]:
        events = platform.api("GET", "/api/v1/events", params={"app": app, "limit": 1000})
        return [e for e in events if e["kind"] == "autoscaled"]

    [event] = kit.wait_until(autoscaled, timeout=5)
    assert "req/s per replica > target 2" in event["message"] and event["data"]["rps"] > 2
    platform.api("DELETE", f"/api/v1/apps/{app}/autoscale/{web}", expect=204)
