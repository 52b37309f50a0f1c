"""Metric points in the state store, with downsampling: raw points for ``raw_keep_s`` (1 h), one-minute
averages for ``minute_keep_s`` (7 days). ``rollup`` (run every minute) makes the averages of the minutes
that ended and deletes what is past its time, so the table stays bounded.

The router's request figures of an app are rows of instance ``router``: a minute sums their counts,
averages the request rate, weights the mean latency by the requests and keeps the highest p95 (the
minute's p95 is at most that).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Integer, and_, cast, delete, func, insert, select

from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import RequestFigures
from mypaas.monitor.tables import metric_points as mp

MINUTE = 60
RAW_KEEP_S = 3600.0
MINUTE_KEEP_S = 7 * 86400.0
ROUTER = "router"  # the instance name of an app's request figures
_GAUGES = ("cpu_pct", "mem_bytes", "mem_limit", "rx_rate", "tx_rate", "read_rate", "write_rate")
_REQUEST_FIGURES = ("requests", "errors", "rps", "latency_ms", "latency_p95_ms")  # NULL for instances


def _row(sample: Sample, at: float) -> dict[str, Any]:
    return {
        "at": at,
        "res": 0,
        "app": sample.app,
        "service": sample.service,
        "instance": sample.instance,
        "cpu_pct": sample.cpu_pct,
        "mem_bytes": sample.mem_bytes,
        "mem_limit": sample.mem_limit or 0,
        "rx_rate": sample.rx_rate,
        "tx_rate": sample.tx_rate,
        "read_rate": sample.read_rate,
        "write_rate": sample.write_rate,
        "restarts": sample.restarts,
        **dict.fromkeys(_REQUEST_FIGURES),
    }


def _request_row(figures: RequestFigures, at: float) -> dict[str, Any]:
    return {
        "at": at,
        "res": 0,
        "app": figures.app,
        "service": "",
        "instance": ROUTER,
        **dict.fromkeys(_GAUGES, 0.0),
        "restarts": 0,
        "requests": figures.requests,
        "errors": figures.errors,
        "rps": round(figures.rps, 3),
        "latency_ms": figures.latency_ms,
        "latency_p95_ms": figures.latency_p95_ms,
    }


class MetricStore:
    def __init__(
        self, engine: Engine, *, raw_keep_s: float = RAW_KEEP_S, minute_keep_s: float = MINUTE_KEEP_S
    ) -> None:
        self._engine = engine
        self.raw_keep_s = raw_keep_s
        self.minute_keep_s = minute_keep_s

    def insert(self, samples: Sequence[Sample], requests: Sequence[RequestFigures] = ()) -> None:
        """Store one round (and the router's figures of that interval); every point of a round gets
        the same time so that sums line up."""
        if not samples and not requests:
            return
        at = round(max([s.at for s in samples] + [f.at for f in requests]), 3)
        rows = [_row(s, at) for s in samples] + [_request_row(f, at) for f in requests]
        with self._engine.begin() as conn:
            conn.execute(insert(mp), rows)

    def rollup(self, now: float | None = None) -> tuple[int, int]:
        """Average the raw points of each ended minute not yet rolled up; delete expired points.
        Returns (minute points made, points deleted)."""
        now = time.time() if now is None else now
        end = now // MINUTE * MINUTE
        with self._engine.begin() as conn:
            done = conn.execute(select(func.max(mp.c.at)).where(mp.c.res == MINUTE)).scalar()
            start = done + MINUTE if done is not None else 0.0
            minute = cast(mp.c.at / MINUTE, Integer) * MINUTE
            groups = conn.execute(
                select(
                    minute.label("minute"),
                    mp.c.app,
                    mp.c.service,
                    mp.c.instance,
                    *(func.avg(getattr(mp.c, g)).label(g) for g in _GAUGES),
                    func.max(mp.c.restarts).label("restarts"),
                    func.sum(mp.c.requests).label("requests"),
                    func.sum(mp.c.errors).label("errors"),
                    func.avg(mp.c.rps).label("rps"),
                    (
                        func.sum(mp.c.latency_ms * mp.c.requests) / func.nullif(func.sum(mp.c.requests), 0)
                    ).label("latency_ms"),
                    func.max(mp.c.latency_p95_ms).label("latency_p95_ms"),
                )
                .where(mp.c.res == 0, mp.c.at >= start, mp.c.at < end)
                .group_by(minute, mp.c.app, mp.c.service, mp.c.instance)
            ).mappings()
            rows = [{**dict(g), "at": float(g["minute"]), "res": MINUTE} for g in groups]
            for row in rows:
                del row["minute"]
            if rows:
                conn.execute(insert(mp), rows)
            gone = conn.execute(
                delete(mp).where(
                    (and_(mp.c.res == 0, mp.c.at < now - self.raw_keep_s))
                    | (and_(mp.c.res == MINUTE, mp.c.at < now - self.minute_keep_s))
                )
            ).rowcount
        return len(rows), gone

    def count(self) -> dict[int, int]:
        with self._engine.connect() as conn:
            return {
                int(res): int(n)
                for res, n in conn.execute(select(mp.c.res, func.count()).group_by(mp.c.res)).all()
            }

    def series(self, app: str, since_s: float, now: float | None = None) -> dict[str, Any]:
        """An app's figures over the last ``since_s`` seconds: per service (summed over instances,
        memory limits too) and for the whole app. Raw points within the raw window, else minutes and
        then the raw points of the minutes not averaged yet (a new app has figures at once)."""
        now = time.time() if now is None else now
        res = 0 if since_s <= self.raw_keep_s else MINUTE
        with self._engine.connect() as conn:
            of_app = select(mp).where(mp.c.app == app).order_by(mp.c.at)
            rows = list(conn.execute(of_app.where(mp.c.res == res, mp.c.at >= now - since_s)).mappings())
            if res:
                start = max(rows[-1]["at"] + MINUTE if rows else now - since_s, now - self.raw_keep_s)
                rows += conn.execute(of_app.where(mp.c.res == 0, mp.c.at >= start)).mappings()
            per: dict[str, dict[float, dict[str, float]]] = defaultdict(dict)
            requests: list[dict[str, Any]] = []
            for r in rows:
                if r["instance"] == ROUTER and not r["service"]:
                    requests.append(_request_point(r))
                    continue
                for key in (r["service"], ""):
                    point = per[key].setdefault(r["at"], {"instances": 0.0, "restarts": 0.0})
                    point["instances"] += 1
                    for g in (*_GAUGES, "restarts"):
                        point[g] = point.get(g, 0.0) + float(r[g])
        services = {svc: _points(points) for svc, points in per.items() if svc}
        return {
            "app": app,
            "since_s": since_s,
            "resolution_s": res or None,
            "services": services,
            "total": _points(per.get("", {})),
            "requests": requests,
        }


def _points(points: dict[float, dict[str, float]]) -> list[dict[str, float]]:
    return [{"at": at, **{k: round(v, 3) for k, v in p.items()}} for at, p in sorted(points.items())]


def _request_point(r: Any) -> dict[str, Any]:
    """One point of the router's figures: counts, rate, error % and latencies (None without requests)."""
    requests = int(r["requests"] or 0)
    errors = int(r["errors"] or 0)

    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value), 3)

    return {
        "at": r["at"],
        "requests": requests,
        "errors": errors,
        "rps": round(float(r["rps"] or 0.0), 3),
        "error_pct": round(100.0 * errors / requests, 2) if requests else None,
        "latency_ms": ms(r["latency_ms"]),
        "latency_p95_ms": ms(r["latency_p95_ms"]),
    }
