"""The router's per-app request figures from counters the router keeps (HAProxy's per-backend
``req_tot``, ``hrsp_5xx`` and ``ttime``) and the durations it logged, instead of a JSON line per
request (monitor/requests.py).

``CounterMeter`` has RequestMeter's surface (``read``, ``snapshot``, ``totals``, ``latest``) and makes
the same RequestFigures: per sampling interval, the difference of each app's counters. Counters that
started again from zero (``epoch`` changed: HAProxy's new worker after a reload) count their whole
value in the interval; the requests the old worker answered since the previous read are lost. The
latency (mean and p95) is that of the requests the router logged in the interval (``durations_ms``:
HAProxy's in-memory ring of the newest ones, so a sample of the newest when the interval had more);
without any (a router that logs none), the mean is HAProxy's over its last 1024 requests and there is
no p95.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mypaas.monitor.requests import RequestFigures, Totals, percentile


class AppCounters(Protocol):
    """One app's counters since the router (its worker) started."""

    @property
    def requests(self) -> int: ...

    @property
    def errors(self) -> int: ...  # 5xx answers

    @property
    def mean_ms(self) -> float | None: ...

    @property
    def epoch(self) -> int: ...  # changes when the counters start again from zero (a new worker)

    @property
    def durations_ms(self) -> Sequence[float]: ...  # of the requests logged since the previous read


CounterSource = Callable[[], Mapping[str, AppCounters] | None]


class CounterMeter:
    """Reads the router's counters once per sampling round (``read``) into per-app figures for that
    interval. Until the router answers there are no figures at all; an app routed but not counted yet
    (a new backend) has an interval of zero requests."""

    def __init__(
        self,
        source: CounterSource,
        *,
        hosts_to_app: Callable[[], dict[str, str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._hosts_to_app = hosts_to_app
        self._clock = clock
        self._last: float | None = None
        self._seen: dict[str, tuple[int, int, int]] = {}  # app -> (epoch, requests, errors) last read
        self._lock = threading.Lock()
        self.totals: dict[str, Totals] = {}
        self.latest: dict[str, RequestFigures] = {}
        self.unmatched = 0  # kept for RequestMeter's surface: the router's 404s are not counted here
        self.bad_lines = 0

    def read(self) -> list[RequestFigures]:
        """One interval: the figures of every routed app since the previous read (the first read only
        takes the counters as they are)."""
        counters = self._source()
        now = self._clock()
        if counters is None:
            return []
        last, self._last = self._last, now
        seen, self._seen = self._seen, {app: (c.epoch, c.requests, c.errors) for app, c in counters.items()}
        if last is None:
            return []
        span = max(0.0, now - last)
        figures = {}
        for app in {*self._hosts_to_app().values()}:
            count = counters.get(app)
            requests, errors = _delta(seen.get(app), count)
            mean, p95 = _latency(count) if requests else (None, None)
            figures[app] = RequestFigures(
                at=now,
                app=app,
                span_s=span,
                requests=requests,
                errors=errors,
                latency_ms=round(mean, 3) if mean is not None else None,
                latency_p95_ms=round(p95, 3) if p95 is not None else None,
            )
        with self._lock:
            for f in figures.values():
                total = self.totals.setdefault(f.app, Totals())
                total.requests += f.requests
                total.errors += f.errors
                total.duration_s += (f.latency_ms or 0.0) * f.requests / 1000.0
            for app in [a for a in self.totals if a not in figures]:
                del self.totals[app]
            self.latest = figures
        return sorted(figures.values(), key=lambda f: f.app)

    def snapshot(self) -> tuple[dict[str, Totals], dict[str, RequestFigures]]:
        with self._lock:
            totals = {app: Totals(t.requests, t.errors, t.duration_s) for app, t in self.totals.items()}
            return totals, dict(self.latest)


def _latency(count: AppCounters | None) -> tuple[float | None, float | None]:
    """The mean and p95 of the durations logged; else the counters' mean and no p95."""
    if count is None:
        return None, None
    if count.durations_ms:
        ms = list(count.durations_ms)
        return sum(ms) / len(ms), percentile(ms, 95)
    return count.mean_ms, None


def _delta(before: tuple[int, int, int] | None, now: AppCounters | None) -> tuple[int, int]:
    """Requests and errors since ``before``; counters that started again count from zero."""
    if now is None:
        return 0, 0
    if before is None or before[0] != now.epoch:
        return now.requests, now.errors  # a new backend, or a new worker: all its requests are new
    requests, errors = now.requests - before[1], now.errors - before[2]
    if requests < 0 or errors < 0:
        return now.requests, now.errors
    return requests, errors
