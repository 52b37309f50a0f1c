"""Shared bits of the benchmarks: the repo on sys.path (for tests.kit) and small timing helpers."""

from __future__ import annotations

import http.client
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MYPAAS = str(Path(sys.executable).parent / "mypaas")


def until(check: Callable[[], bool], timeout: float = 30, interval: float = 0.005) -> float:
    """Seconds until ``check()`` is true (polling fast); raises on timeout."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("condition not met")
        time.sleep(interval)
    return time.perf_counter() - start


def ok(port: int, host: str, timeout: float = 2) -> bool:
    """One request through the router on ``port`` for ``host``: did it answer 200?"""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def durations(steps: tuple[tuple[str, str], ...], points: dict[str, float], start: float) -> dict[str, float]:
    """Seconds each of ``steps`` (name, what ends it) took: from the end of the step before (``start``
    for the first) to its own point in time (epoch s); a step without a point is left out."""
    took, last = {}, start
    for name, _ in steps:
        if name in points:
            took[name] = max(0.0, points[name] - last)
            last = max(last, points[name])
    return took


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
