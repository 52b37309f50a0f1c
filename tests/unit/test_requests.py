"""The router's request figures: following the access log (rotation, truncation, partial lines), turning
lines into per-app figures (unknown hosts, 5xx, percentiles), storing and rolling them up, the Prometheus
lines, the error_rate alert and the requests/s autoscaling target (no engine, no Caddy)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mypaas.api.app import create_app
from mypaas.manager.state.db import open_engine, open_store
from mypaas.monitor import prometheus
from mypaas.monitor.alerts import Alerts, Facts, Rule, RuleStore
from mypaas.monitor.autoscale import Autoscaler, CpuWindow, Policy, PolicyStore, Requests, decide
from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import (
    Hit,
    LogFollower,
    RequestFigures,
    RequestMeter,
    RequestWindow,
    Totals,
    aggregate,
    bare_host,
    parse_line,
    percentile,
)
from mypaas.monitor.series import MetricStore
from mypaas.monitor.tables import metadata
from mypaas.router.config import ACCESS_LOG_KEEP, ACCESS_LOG_ROLL_MB, Route, render
from tests.unit.fakes import WebhookSender
from tests.unit.test_reconcile import World


def line(host: str, status: int = 200, duration: float = 0.01) -> bytes:
    """One access line as Caddy 2.6.2 writes it (headers filtered out), with its newline."""
    entry = {
        "level": "info",
        "ts": 1.0,
        "logger": "http.log.access.mypaas",
        "msg": "handled request",
        "request": {"remote_ip": "127.0.0.1", "proto": "HTTP/1.1", "method": "GET", "host": host, "uri": "/"},
        "user_id": "",
        "duration": duration,
        "size": 2,
        "status": status,
    }
    return json.dumps(entry).encode() + b"\n"


# -- following the file -------------------------------------------------------------------------


def test_follower_starts_at_the_end_and_keeps_a_partial_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"old line from before the start\n")
    follower = LogFollower(log)
    assert follower.read() == []  # what was there is from before this process
    with log.open("ab") as f:
        f.write(b"one\ntw")
    assert follower.read() == [b"one"]
    with log.open("ab") as f:
        f.write(b"o\n\nthree\n")
    assert follower.read() == [b"two", b"three"]
    assert follower.read() == []


def test_follower_reads_a_file_that_appears_later_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    follower = LogFollower(log)
    assert follower.read() == [] and not follower.exists
    log.write_bytes(b"first\n")
    assert follower.read() == [b"first"] and follower.exists


def test_follower_finishes_a_rotated_file_then_reads_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    follower = LogFollower(log)
    follower.read()
    with log.open("ab") as f:
        f.write(b"a\n")
    assert follower.read() == [b"a"]
    with log.open("ab") as f:  # written after our read, just before Caddy's roll renames the file
        f.write(b"b\n")
    log.rename(tmp_path / "access-2026-01-01T00-00-00.000.log")
    log.write_bytes(b"c\nd\n")
    assert follower.read() == [b"b", b"c", b"d"]
    assert follower.rotations == 1
    (tmp_path / "access-2026-01-01T00-00-00.000.log").unlink()  # gzipped and removed by Caddy
    with log.open("ab") as f:
        f.write(b"e\n")
    assert follower.read() == [b"e"]


def test_follower_starts_over_after_a_truncation(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    follower = LogFollower(log)
    follower.read()
    with log.open("ab") as f:
        f.write(b"a long first line\nhalf")
    assert follower.read() == [b"a long first line"]
    log.write_bytes(b"x\n")  # truncated in place (same inode), then written again
    assert follower.read() == [b"x"]
    assert follower.dropped_bytes == 4  # the half line of before


def test_follower_reads_a_backlog_in_bounded_steps(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    follower = LogFollower(log, max_bytes=10)
    follower.read()
    with log.open("ab") as f:
        f.write(b"".join(b"line%d\n" % i for i in range(6)))  # 36 bytes
    reads = [follower.read() for _ in range(5)]
    assert reads[0] == [b"line0"]  # 10 bytes: one line and a partial one
    assert [x for r in reads for x in r] == [b"line%d" % i for i in range(6)]


def test_follower_drops_an_endless_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    follower = LogFollower(log)
    follower.read()
    with log.open("ab") as f:
        f.write(b"x" * 100_000)
    assert follower.read() == []
    with log.open("ab") as f:
        f.write(b"tail of it\nok\n")
    assert follower.read() == [b"tail of it", b"ok"]  # the cut line's end is not an access line


# -- lines into figures -------------------------------------------------------------------------


def test_parse_line_takes_host_status_and_duration() -> None:
    assert parse_line(line("Shop.Localhost:8080", 503, 0.25).strip()) == Hit("shop.localhost", 503, 0.25)
    assert parse_line(b"not json") is None
    assert parse_line(b'{"msg": "no request"}') is None
    assert parse_line(b'{"request": {"host": 3}, "status": 200, "duration": 0.1}') is None
    assert parse_line(b'{"request": {"host": "a"}, "status": "x", "duration": 0.1}') is None


def test_bare_host() -> None:
    assert bare_host("WWW.Example.com") == "www.example.com"
    assert bare_host("shop.localhost:80") == "shop.localhost"
    assert bare_host("example.com.") == "example.com"
    assert bare_host("[::1]:8080") == "[::1]"
    assert bare_host("127.0.0.1") == "127.0.0.1"


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 95) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_aggregate_counts_5xx_per_app_and_skips_unknown_hosts() -> None:
    hosts = {
        "shop.localhost": "shop",
        "www.shop.example": "shop",
        "blog.localhost": "blog",
        "x.localhost": "x",
    }
    hits = [
        Hit("shop.localhost", 200, 0.010),
        Hit("www.shop.example", 500, 0.030),  # the app's own error
        Hit("shop.localhost", 502, 0.002),  # proxying failed
        Hit("shop.localhost", 404, 0.004),  # the app's 404 is not an error
        Hit("blog.localhost", 503, 0.001),  # the router's "no healthy instance"
        Hit("blog.localhost", 0, 0.1),  # the client went away: a request, not an error
        Hit("nope.localhost", 404, 0.001),  # the router's catch-all
    ]
    figures, unmatched = aggregate(hits, hosts, at=100.0, span_s=5.0)
    assert unmatched == 1
    shop = figures["shop"]
    assert (shop.requests, shop.errors, shop.latency_ms, shop.latency_p95_ms) == (4, 2, 11.5, 30.0)
    assert shop.rps == 0.8 and shop.error_pct == 50.0
    assert (figures["blog"].requests, figures["blog"].errors) == (2, 1)
    assert figures["x"] == RequestFigures(at=100.0, app="x", span_s=5.0)  # routed, no requests
    assert figures["x"].error_pct is None and figures["x"].latency_ms is None


def test_meter_reads_each_interval_and_keeps_totals(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    now = [1000.0]
    hosts = {"shop.localhost": "shop"}
    meter = RequestMeter(log, hosts_to_app=lambda: dict(hosts), clock=lambda: now[0])
    assert meter.read() == []  # the first read only finds its place
    now[0] = 1005.0
    assert meter.read() == []  # no log file: no figures at all, not zeros
    log.write_bytes(line("shop.localhost", 200, 0.1) + line("shop.localhost:80", 500, 0.3) + line("other"))
    now[0] = 1010.0
    [shop] = meter.read()
    assert (shop.requests, shop.errors, shop.span_s, shop.rps) == (2, 1, 5.0, 0.4)
    assert shop.latency_ms == pytest.approx(200.0) and shop.latency_p95_ms == pytest.approx(300.0)
    assert meter.unmatched == 1
    with log.open("ab") as f:
        f.write(b"garbage\n" + line("shop.localhost", 200, 0.2))
    now[0] = 1015.0
    [shop] = meter.read()
    assert shop.requests == 1 and meter.bad_lines == 1
    totals, latest = meter.snapshot()
    assert (totals["shop"].requests, totals["shop"].errors) == (3, 1)
    assert totals["shop"].duration_s == pytest.approx(0.6)
    assert latest["shop"].latency_p95_ms == pytest.approx(200.0)
    hosts.clear()  # the app was deleted: its counters go
    now[0] = 1020.0
    assert meter.read() == [] and meter.snapshot()[0] == {}


def test_window_gives_error_pct_of_apps_with_requests_and_rps() -> None:
    window = RequestWindow(window_s=30)
    for at in (100.0, 105.0, 110.0):
        window.add(
            [
                RequestFigures(at=at, app="shop", span_s=5.0, requests=50, errors=5 if at == 110 else 0),
                RequestFigures(at=at, app="idle", span_s=5.0),
            ]
        )
    assert window.error_pct(110.0) == {"shop": pytest.approx(100 * 5 / 150)}  # idle: no requests
    assert window.rps("shop", 110.0) == pytest.approx(10.0)
    assert window.rps("shop", 110.0, after=104.0) is None  # one interval since the last change
    assert window.rps("shop", 110.0, after=100.0) == pytest.approx(10.0)
    assert window.rps("nope", 110.0) is None
    assert window.error_pct(200.0) == {}  # all of it older than the window


# -- storing --------------------------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    bind = open_store(tmp_path / "state.db").engine
    assert isinstance(bind, Engine)
    return bind


def test_store_and_rollup_of_request_figures(engine: Engine) -> None:
    store = MetricStore(engine)
    base = 1_000_020.0 // 60 * 60
    for i in range(12):  # one minute of 5 s rounds: 10 requests each, the last 4 rounds slower
        at = base + i * 5
        slow = i >= 8
        figures = RequestFigures(
            at=at,
            app="shop",
            span_s=5.0,
            requests=10,
            errors=1 if slow else 0,
            latency_ms=40.0 if slow else 10.0,
            latency_p95_ms=90.0 if slow else 20.0,
        )
        sample = Sample(at=at, app="shop", service="web", instance="web-1", cpu_pct=10.0)
        store.insert([sample], [figures])
    store.insert([], [RequestFigures(at=base + 60, app="shop", span_s=5.0)])  # an idle round: no latency
    raw = store.series("shop", 3600, now=base + 61)
    assert [p["instances"] for p in raw["total"]][:2] == [1.0, 1.0]  # the router is no instance
    first, last = raw["requests"][0], raw["requests"][-1]
    assert first == {
        "at": base,
        "requests": 10,
        "errors": 0,
        "rps": 2.0,
        "error_pct": 0.0,
        "latency_ms": 10.0,
        "latency_p95_ms": 20.0,
    }
    assert (last["requests"], last["error_pct"], last["latency_ms"]) == (0, None, None)
    assert store.rollup(now=base + 61) == (2, 0)  # the instance's minute and the router's
    minute = store.series("shop", 7200, now=base + 7200)
    assert minute["resolution_s"] == 60
    [point] = minute["requests"]
    assert (point["requests"], point["errors"], point["rps"]) == (120, 4, 2.0)
    assert point["latency_ms"] == pytest.approx((8 * 10 * 10.0 + 4 * 10 * 40.0) / 120)  # weighted
    assert point["latency_p95_ms"] == 90.0  # the highest of the minute's
    assert point["error_pct"] == pytest.approx(100 * 4 / 120, abs=0.01)
    assert [p["cpu_pct"] for p in minute["total"]] == [10.0]


# -- Prometheus -----------------------------------------------------------------------------------


def test_prometheus_request_counters_and_summary() -> None:
    totals = {"shop": Totals(requests=12, errors=2, duration_s=1.5), "idle": Totals()}
    latest = {
        "shop": RequestFigures(at=1.0, app="shop", span_s=5, requests=3, latency_ms=10, latency_p95_ms=250.0),
        "idle": RequestFigures(at=1.0, app="idle", span_s=5),
    }
    text = prometheus.render({}, requests=(totals, latest))
    assert "# TYPE mypaas_app_requests_total counter" in text
    assert 'mypaas_app_requests_total{app="shop"} 12' in text
    assert 'mypaas_app_request_errors_total{app="shop"} 2' in text
    assert "# TYPE mypaas_app_request_duration_seconds summary" in text
    assert 'mypaas_app_request_duration_seconds{app="shop",quantile="0.95"} 0.25' in text
    assert 'mypaas_app_request_duration_seconds_sum{app="shop"} 1.5' in text
    assert 'mypaas_app_request_duration_seconds_count{app="shop"} 12' in text
    assert 'mypaas_app_request_duration_seconds{app="idle"' not in text  # no requests: no quantile
    assert 'mypaas_app_request_duration_seconds_count{app="idle"} 0' in text


# -- the router's config --------------------------------------------------------------------------


def test_router_config_logs_requests_only_into_the_access_log() -> None:
    route = Route(app="shop", hosts=("shop.localhost",), upstreams=("10.0.0.1:80",))
    plain = render([route], listen_port=80, admin="127.0.0.1:2019")
    assert "logging" not in plain and "logs" not in plain["apps"]["http"]["servers"]["mypaas"]
    config = render([route], listen_port=80, admin="127.0.0.1:2019", access_log="/var/log/mypaas/access.log")
    assert config["apps"]["http"]["servers"]["mypaas"]["logs"] == {"default_logger_name": "mypaas"}
    logs = config["logging"]["logs"]
    assert logs["default"] == {"exclude": ["http.log.access.mypaas"]}
    access = logs["access"]
    assert access["include"] == ["http.log.access.mypaas"]
    assert access["writer"] == {
        "output": "file",
        "filename": "/var/log/mypaas/access.log",
        "roll_size_mb": ACCESS_LOG_ROLL_MB,
        "roll_keep": ACCESS_LOG_KEEP,
    }
    assert access["encoder"]["wrap"] == {"format": "json"}


# -- alerts and autoscaling -----------------------------------------------------------------------


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str, str, dict[str, Any] | None]] = []

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.seen.append((app, kind, message, data))


def test_error_rate_fires_from_the_window_and_resolves(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine)
    store.add(Rule(name="errors", kind="error_rate", threshold=10, for_s=4, webhook="http://h/x"))
    now = [100.0]
    sender = WebhookSender()
    alerts = Alerts(store=store, sender=sender, events=_Events(), clock=lambda: now[0])  # type: ignore[arg-type]
    window = RequestWindow(window_s=10)

    def round_(errors: int, requests: int = 20) -> None:
        now[0] += 5
        window.add([RequestFigures(at=now[0], app="shop", span_s=5, requests=requests, errors=errors)])
        window.add([RequestFigures(at=now[0], app="quiet", span_s=5)])
        alerts.evaluate(Facts(ready={"shop": 1, "quiet": 1}, error_pct=window.error_pct(now[0])))

    round_(0)
    round_(10)  # 10 of 40 in the window: 25 %
    assert sender.sent == []  # for 4 s first
    round_(10)
    [fired] = sender.sent
    assert (fired["alert"], fired["app"], fired["status"], fired["value"]) == (
        "errors",
        "shop",
        "firing",
        50.0,
    )
    round_(0)
    round_(0)
    assert [(p["app"], p["status"], p["value"]) for p in sender.sent[1:]] == [("shop", "resolved", 0.0)]
    assert all(p["app"] != "quiet" for p in sender.sent)


RPS = Policy(
    app="a", service="web", min_replicas=1, max_replicas=8, target_rps_per_replica=50.0, cooldown_up_s=0
)


def test_decide_by_requests_per_ready_replica() -> None:
    assert decide(RPS, 2, None, 100.0, Requests(rps=300.0, ready=2)) == (
        6,
        "150.0 req/s per replica > target 50",
    )
    assert decide(RPS, 2, None, 100.0, Requests(rps=105.0, ready=2)) is None  # within the tolerance
    # two of four replicas still starting: 4 will do, no more
    assert decide(RPS, 4, None, 100.0, Requests(rps=120.0, ready=2)) is None
    assert decide(RPS, 3, None, 1000.0, Requests(rps=40.0, ready=3)) == (
        2,
        "13.3 req/s per replica < target 50",
    )
    assert decide(RPS, 2, None, 1000.0, Requests(rps=60.0, ready=2)) is None  # one would carry 60
    assert decide(RPS, 3, None, 1000.0, None) is None  # no figures: no change
    assert decide(RPS, 1, None, 100.0, Requests(rps=300.0, ready=0)) is None  # all 503: no load per replica


def test_decide_with_both_targets_takes_the_larger_count() -> None:
    both = Policy(**{**RPS.to_dict(), "target_cpu_pct": 50.0})
    assert decide(both, 2, 100.0, 100.0, Requests(rps=300.0, ready=2)) == (
        6,
        "150.0 req/s per replica > target 50",
    )
    assert decide(both, 2, 200.0, 100.0, Requests(rps=120.0, ready=2)) == (8, "cpu 200% > target 50%")
    assert decide(both, 2, 200.0, 100.0, None) == (8, "cpu 200% > target 50%")  # rps without data
    # down only when both agree
    assert decide(both, 3, 5.0, 1000.0, Requests(rps=140.0, ready=3)) is None
    assert decide(both, 3, 5.0, 1000.0, None) is None
    assert decide(both, 3, 5.0, 1000.0, Requests(rps=10.0, ready=3)) == (
        2,
        "cpu 5% < target 50% and 3.3 req/s per replica < target 50",
    )


def test_autoscaler_scales_by_requests(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = PolicyStore(engine)
    store.put(RPS)
    replicas = {("a", "web"): 1}
    asked: list[tuple[str, str, float]] = []

    def requests(app: str, service: str, since: float) -> Requests | None:
        asked.append((app, service, since))
        return Requests(rps=200.0, ready=1)

    def scale(app: str, service: str, n: int) -> None:
        replicas[(app, service)] = n

    events = _Events()
    scaler = Autoscaler(
        store=store,
        window=CpuWindow(30),
        replicas=lambda app, svc: replicas.get((app, svc)),
        scale=scale,
        events=events,
        requests=requests,
        clock=lambda: 50.0,
    )
    assert scaler.evaluate() == [("a", "web", 1, 4)]
    assert asked == [("a", "web", 0.0)]
    [(_, kind, message, data)] = events.seen
    assert kind == "autoscaled"
    assert message == "autoscaled web 1→4: 200.0 req/s per replica > target 50"
    assert data is not None and data["rps"] == 200.0 and data["ready"] == 1
    scaler.evaluate()
    assert asked[-1] == ("a", "web", 50.0)  # figures since the change only


# -- wired into the manager -----------------------------------------------------------------------


def test_platform_reads_the_access_log_each_round(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend.add_image("web:1")
    world.deploy("shop", "web:1")
    world.settle()
    platform = world.platform
    monitoring = platform.monitoring
    assert monitoring.hosts_to_app() == {"shop.localhost": "shop"}
    log = platform.settings.log_dir / "access.log"
    assert monitoring.requests.follower.path == log
    monitoring.sampler.sample_once()  # no access log yet: no figures
    monitoring.sampler.sample_once()
    log.write_bytes(
        b"".join(line("shop.localhost", s) for s in (200, 200, 500, 404)) + line("nope.localhost")
    )
    monitoring.sampler.sample_once()
    [figures] = platform.automation.requests.intervals("shop")
    assert (figures.requests, figures.errors) == (4, 1)
    assert platform.automation.requests.error_pct(figures.at) == {"shop": 25.0}
    route = monitoring.route("shop")
    assert route is not None and len(route.upstreams) == 1
    client = TestClient(create_app(platform))
    client.headers["Authorization"] = f"Bearer {platform.admin_token}"
    series = client.get("/api/v1/apps/shop/metrics").json()
    assert [(p["requests"], p["errors"], p["error_pct"]) for p in series["requests"]] == [(4, 1, 25.0)]
    text = client.get("/metrics").text
    assert 'mypaas_app_requests_total{app="shop"} 4' in text
    assert 'mypaas_app_request_errors_total{app="shop"} 1' in text
    os.unlink(log)


def test_cli_shows_the_last_minute_of_request_figures() -> None:
    from mypaas.cli.monitor import _request_columns

    def point(at: float, requests: int, errors: int, mean: float | None, p95: float | None) -> dict[str, Any]:
        return {
            "at": at,
            "requests": requests,
            "errors": errors,
            "rps": requests / 5,
            "latency_ms": mean,
            "latency_p95_ms": p95,
        }

    points = [point(0, 500, 500, 900.0, 900.0)]  # more than a minute before the newest: left out
    points += [point(100, 10, 1, 10.0, 20.0), point(105, 30, 0, 30.0, 80.0), point(110, 0, 0, None, None)]
    assert _request_columns(points) == [f"{(2 + 6 + 0) / 3:.1f}", "2.5%", "25ms", "80ms"]
    assert _request_columns([point(1, 0, 0, None, None)]) == ["0.0", "-", "-", "-"]
    assert _request_columns([]) == ["-"] * 4


def test_caddy_router_logs_next_to_its_own_log(tmp_path: Path) -> None:
    from mypaas.router.caddy import CaddyRouter

    router = CaddyRouter(
        admin="127.0.0.1:1",
        listen_port=1,
        config_dir=tmp_path / "router",
        log_path=tmp_path / "logs" / "caddy.log",
    )
    try:
        assert router.access_log == tmp_path / "logs" / "access.log"
        config = router.render([])
        assert config["logging"]["logs"]["access"]["writer"]["filename"] == str(router.access_log)
    finally:
        router.close()
