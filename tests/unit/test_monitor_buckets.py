"""Coarser metric points for long ranges (monitor/buckets.py) and GET /apps/NAME/metrics?step=."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.monitor.buckets import bucketed
from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import RequestFigures


def _gauge(at: float, cpu: float, restarts: float) -> dict[str, float]:
    return {"at": at, "instances": 1.0, "restarts": restarts, "cpu_pct": cpu, "mem_bytes": 100.0}


def _req(
    at: float, requests: int, errors: int, latency: float | None, p95: float | None
) -> dict[str, object]:
    return {
        "at": at,
        "requests": requests,
        "errors": errors,
        "rps": requests / 60,
        "error_pct": None,
        "latency_ms": latency,
        "latency_p95_ms": p95,
    }


def test_points_are_averaged_into_buckets() -> None:
    series = {
        "app": "shop",
        "since_s": 7200.0,
        "resolution_s": 60,
        "services": {"web": [_gauge(0, 10, 0), _gauge(60, 30, 2), _gauge(3600, 5, 1)]},
        "total": [_gauge(0, 10, 0), _gauge(60, 30, 2), _gauge(3600, 5, 1)],
        "requests": [_req(0, 30, 3, 10.0, 50.0), _req(60, 10, 0, 30.0, 90.0), _req(3600, 0, 0, None, None)],
    }
    out = bucketed(series, 3600)
    assert out["resolution_s"] == 3600
    first, second = out["total"]
    assert (first["at"], first["cpu_pct"], first["restarts"], first["mem_bytes"]) == (0, 20.0, 2.0, 100.0)
    assert (second["at"], second["cpu_pct"]) == (3600, 5.0)
    assert out["services"]["web"] == out["total"]
    busy, idle = out["requests"]
    assert (busy["requests"], busy["errors"], busy["error_pct"]) == (40, 3, 7.5)
    assert busy["latency_ms"] == 15.0  # weighted by the requests
    assert busy["latency_p95_ms"] == 90.0
    assert (idle["requests"], idle["error_pct"], idle["latency_ms"], idle["latency_p95_ms"]) == (
        0,
        None,
        None,
        None,
    )
    assert bucketed(series, 60) is series  # not coarser than it is


def test_the_metrics_route_takes_a_step(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    backend.add_image("web:1", exposed=(80,))
    assert api.post("/api/v1/apps/shop/deploys", json={"image": "web:1"}).status_code == 202
    now = time.time()
    for k in range(12):
        at = now - 120 + k * 10
        sample = Sample(at=at, app="shop", service="web", instance="shop-web-1", cpu_pct=float(k))
        figures = RequestFigures(at=at, app="shop", span_s=10, requests=10, errors=1, latency_ms=5.0)
        platform.monitoring.store.insert([sample], [figures])
    raw = api.get("/api/v1/apps/shop/metrics", params={"since": "1h"}).json()
    assert len(raw["total"]) == 12 and raw["resolution_s"] is None
    coarse = api.get("/api/v1/apps/shop/metrics", params={"since": "1h", "step": 3600}).json()
    assert coarse["resolution_s"] == 3600
    assert 1 <= len(coarse["total"]) <= 2 and 1 <= len(coarse["requests"]) <= 2
    assert sum(p["requests"] for p in coarse["requests"]) == 120
    bad = api.get("/api/v1/apps/shop/metrics", params={"step": 0})
    assert bad.status_code == 400 and bad.json()["field"] == "step"
