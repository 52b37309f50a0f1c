"""Coarser points for long ranges: an app's series (see series.py) averaged into buckets of ``step``
seconds, so a chart of 7 days reads a few hundred points rather than ten thousand per series."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

_MAX = ("restarts",)  # the most seen in the bucket; other gauges are averaged


def bucketed(series: dict[str, Any], step: float) -> dict[str, Any]:
    """``series`` with its points in buckets of ``step`` seconds (each at its bucket's start); as it is
    when ``step`` is not coarser than its resolution."""
    if step <= (series.get("resolution_s") or 0):
        return series
    return {
        **series,
        "resolution_s": step,
        "services": {svc: _gauges(points, step) for svc, points in series["services"].items()},
        "total": _gauges(series["total"], step),
        "requests": _requests(series["requests"], step),
    }


def _groups(points: list[dict[str, Any]], step: float) -> list[tuple[float, list[dict[str, Any]]]]:
    groups: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for p in points:
        groups[p["at"] // step * step].append(p)
    return sorted(groups.items())


def _gauges(points: list[dict[str, Any]], step: float) -> list[dict[str, Any]]:
    out = []
    for at, group in _groups(points, step):
        point: dict[str, Any] = {"at": at}
        for key in group[0]:
            if key == "at":
                continue
            values = [float(p.get(key) or 0.0) for p in group]
            point[key] = round(max(values) if key in _MAX else sum(values) / len(values), 3)
        out.append(point)
    return out


def _requests(points: list[dict[str, Any]], step: float) -> list[dict[str, Any]]:
    out = []
    for at, group in _groups(points, step):
        requests = sum(int(p["requests"]) for p in group)
        errors = sum(int(p["errors"]) for p in group)
        timed = [p for p in group if p.get("latency_ms") is not None and p["requests"]]
        weight = sum(p["requests"] for p in timed)
        p95s = [p["latency_p95_ms"] for p in group if p.get("latency_p95_ms") is not None]
        out.append(
            {
                "at": at,
                "requests": requests,
                "errors": errors,
                "rps": round(sum(float(p["rps"]) for p in group) / len(group), 3),
                "error_pct": round(100.0 * errors / requests, 2) if requests else None,
                "latency_ms": round(sum(p["latency_ms"] * p["requests"] for p in timed) / weight, 3)
                if weight
                else None,
                "latency_p95_ms": max(p95s) if p95s else None,  # the bucket's p95 is at most that
            }
        )
    return out
