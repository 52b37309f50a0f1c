"""The event log (queue, flush, prune, long poll) and the metric store's downsampling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine

from mypaas.errors import InvalidSpec
from mypaas.manager.state.db import open_store
from mypaas.monitor.events import EventLog, parse_duration
from mypaas.monitor.metrics import Sample
from mypaas.monitor.series import MetricStore


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    bind = open_store(tmp_path / "state.db").engine
    assert isinstance(bind, Engine)
    return bind


def test_events_are_queued_then_written_oldest_first(engine: Engine) -> None:
    log = EventLog(engine)
    log.record("shop", "deploy_accepted", "deploy by admin", {"operation": "x"})
    log.record(None, "engine_unreachable", "the engine does not answer")
    assert log.query() == []  # queued, not yet written
    assert log.flush() == 2
    found = log.query()
    assert [(e.app, e.kind) for e in found] == [("shop", "deploy_accepted"), (None, "engine_unreachable")]
    assert found[0].data == {"operation": "x"}
    assert [e.kind for e in log.query(app="shop")] == ["deploy_accepted"]
    assert [e.kind for e in log.query(platform_only=True)] == ["engine_unreachable"]
    assert log.query(after=found[-1].id) == []


def test_prune_keeps_the_newest_per_app(engine: Engine) -> None:
    log = EventLog(engine, keep=3)
    for i in range(5):
        log.record("a", "scaled", f"a{i}")
        log.record("b", "scaled", f"b{i}")
        log.record(None, "engine_back", f"p{i}")
    log.flush()
    assert log.prune() == 6
    assert [e.message for e in log.query(app="a")] == ["a2", "a3", "a4"]
    assert [e.message for e in log.query(platform_only=True)] == ["p2", "p3", "p4"]


def test_wait_returns_events_as_they_arrive(engine: Engine) -> None:
    log = EventLog(engine)
    stop = threading.Event()
    writer = threading.Thread(target=log.run, args=(stop,), daemon=True)
    writer.start()
    try:
        assert log.wait(after=0, timeout=0.1) == []
        threading.Timer(0.2, lambda: log.record("shop", "scaled", "web=2")).start()
        started = time.monotonic()
        found = log.wait(after=0, timeout=5)
        assert [e.message for e in found] == ["web=2"]
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        writer.join(5)


def test_recording_is_cheap(engine: Engine) -> None:
    """The reconcile loop pays a queue put per event, never a database statement (the writer thread
    stores them); what that costs is bench/monitor_overhead.py's figure, not a timing here."""
    log = EventLog(engine)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        for i in range(10_000):
            log.record("shop", "instance_ready", f"web-{i} is ready")
        assert statements == []
        assert log.flush() == 10_000
        assert any(s.lstrip().upper().startswith("INSERT") for s in statements)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("1h") == 3600
    assert parse_duration("2d") == 172800
    assert parse_duration("30") == 30
    for bad in ("", "h", "-1h", "soon"):
        with pytest.raises(InvalidSpec):
            parse_duration(bad)


def _sample(at: float, instance: str, cpu: float, service: str = "web") -> Sample:
    return Sample(at=at, app="shop", service=service, instance=instance, cpu_pct=cpu, mem_bytes=100)


def test_rollup_averages_each_ended_minute_and_expires_points(engine: Engine) -> None:
    store = MetricStore(engine, raw_keep_s=3600, minute_keep_s=7200)
    base = 1_000_020.0 // 60 * 60  # the start of a minute
    for i in range(24):  # two minutes of 5 s rounds, two instances
        at = base + i * 5
        store.insert([_sample(at, "web-1", 10.0 + (i >= 12) * 20), _sample(at, "web-2", 30.0)])
    assert store.rollup(now=base + 125) == (4, 0)
    assert store.rollup(now=base + 125) == (0, 0)  # each minute once
    minutes = store.series("shop", 7200 * 2, now=base + 3600 * 2)
    assert minutes["resolution_s"] == 60
    assert [p["cpu_pct"] for p in minutes["total"]] == [40.0, 60.0]
    assert [p["instances"] for p in minutes["services"]["web"]] == [2.0, 2.0]
    # an hour later the raw points go; the minutes stay for their own (shorter here) window
    assert store.rollup(now=base + 3725) == (0, 48)
    assert store.count() == {60: 4}
    assert store.rollup(now=base + 7300)[1] == 4
    assert store.count() == {}


def test_series_sums_instances_per_service_and_app(engine: Engine) -> None:
    store = MetricStore(engine)
    now = 2_000_000.0
    store.insert([_sample(now - 10, "web-1", 10.0), _sample(now - 10, "worker-1", 5.0, "worker")])
    store.insert([_sample(now - 5, "web-1", 20.0), _sample(now - 5, "worker-1", 7.0, "worker")])
    data = store.series("shop", 3600, now=now)
    assert data["resolution_s"] is None
    assert [p["cpu_pct"] for p in data["services"]["web"]] == [10.0, 20.0]
    assert [p["cpu_pct"] for p in data["total"]] == [15.0, 27.0]
    assert store.series("other", 3600, now=now)["total"] == []


def test_a_long_range_ends_with_the_minutes_not_averaged_yet(engine: Engine) -> None:
    store = MetricStore(engine, raw_keep_s=3600)
    base = 3_000_000.0 // 60 * 60
    for i in range(18):  # a minute and a half of 5 s rounds
        store.insert([_sample(base + i * 5, "web-1", 10.0 if i < 12 else 40.0)])
    day = store.series("shop", 86400, now=base + 90)
    assert [p["cpu_pct"] for p in day["total"]] == [10.0] * 12 + [40.0] * 6  # nothing averaged yet
    store.rollup(now=base + 90)
    day = store.series("shop", 86400, now=base + 90)
    assert [(p["at"], p["cpu_pct"]) for p in day["total"]] == [(base, 10.0)] + [
        (base + 60 + i * 5, 40.0) for i in range(6)
    ]  # the averaged minute, then the raw points past it (counted once)
