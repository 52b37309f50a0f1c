"""Metric points in the state store, with downsampling: raw points for ``raw_keep_s`` (1 h), one-minute
averages for ``minute_keep_s`` (7 days). ``rollup`` (run every minute) makes the averages of the minutes
that ended and deletes what is past its time, so the table stays bounded.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Integer, and_, cast, delete, func, insert, select

from mypaas.monitor.metrics import Sample
from mypaas.monitor.tables import metric_points as mp

MINUTE = 60
RAW_KEEP_S = 3600.0
MINUTE_KEEP_S = 7 * 86400.0
_GAUGES = ("cpu_pct", "mem_bytes", "mem_limit", "rx_rate", "tx_rate", "read_rate", "write_rate")


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
    }


class MetricStore:
    def __init__(
        self, engine: Engine, *, raw_keep_s: float = RAW_KEEP_S, minute_keep_s: float = MINUTE_KEEP_S
    ) -> None:
        self._engine = engine
        self.raw_keep_s = raw_keep_s
        self.minute_keep_s = minute_keep_s

    def insert(self, samples: Sequence[Sample]) -> None:
        """Store one round; every point of a round gets the same time so that sums line up."""
        if not samples:
            return
        at = round(max(s.at for s in samples), 3)
        with self._engine.begin() as conn:
            conn.execute(insert(mp), [_row(s, at) for s in samples])

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
        memory limits too) and for the whole app. Raw points within the raw window, else minutes."""
        now = time.time() if now is None else now
        res = 0 if since_s <= self.raw_keep_s else MINUTE
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(mp).where(mp.c.app == app, mp.c.res == res, mp.c.at >= now - since_s).order_by(mp.c.at)
            ).mappings()
            per: dict[str, dict[float, dict[str, float]]] = defaultdict(dict)
            for r in rows:
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
        }


def _points(points: dict[float, dict[str, float]]) -> list[dict[str, float]]:
    return [{"at": at, **{k: round(v, 3) for k, v in p.items()}} for at, p in sorted(points.items())]
