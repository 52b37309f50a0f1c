"""The router's per-app request figures, read from Caddy's JSON access log (see router/config.py).

``LogFollower`` follows the file like ``tail -F``: it remembers its place, reads at most ``max_bytes`` a
time, keeps a partial last line for the next read, finishes a rotated file before moving to the new one
and starts over after a truncation. ``RequestMeter`` maps each line's host to its app and makes, per app
and per sampling interval, the number of requests, the errors (5xx answers: the app's own, a failed
proxying 502/504, the router's 503 when the app has no ready instance) and the latency (mean and p95).
``RequestWindow`` keeps the last intervals for alerts (error %) and autoscaling (requests/s).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_READ_BYTES = 8 * 2**20  # per read: a busy router's backlog is read over several rounds
MAX_LINE_BYTES = 64 * 2**10  # a longer "line" is not one of Caddy's: dropped
MIN_POINTS = 2  # intervals needed before the request rate of a window means something
_ROTATED, _TRUNCATED = "rotated", "truncated"


class LogFollower:
    """Reads the lines appended to ``path`` since the last read.

    The first read starts at the end of a file that is already there (its lines are from before this
    process); a file that appears later, or replaces a rotated one, is read from its start."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_READ_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: IO[bytes] | None = None
        self._id: tuple[int, int] | None = None  # (device, inode) of the open file
        self._partial = b""
        self._started = False
        self._seen = False
        self.rotations = 0
        self.dropped_bytes = 0  # partial lines lost to a rotation or truncation, over-long lines

    @property
    def exists(self) -> bool:
        """Whether there was a file to follow since this follower started."""
        return self._seen

    def read(self) -> list[bytes]:
        """The complete lines written since the last read (without their newline), oldest first."""
        budget = self.max_bytes
        lines: list[bytes] = []
        for _ in range(3):  # the open file, then (after a rotation or truncation) the new start
            if self._file is None and not self._open():
                break
            assert self._file is not None
            data = self._file.read(budget)
            budget -= len(data)
            lines += self._lines(data)
            if budget <= 0:
                break
            moved = self._moved()
            if moved is None:
                break
            if moved == _TRUNCATED:
                self._drop_partial()
                self._file.seek(0)
                continue
            rest = self._file.read(budget)  # written between our read and the rename: Caddy is done
            budget -= len(rest)
            lines += self._lines(rest)
            if budget <= 0:
                break  # the old file's end, then the new one, next time
            self.rotations += 1
            self._drop_partial()
            self.close()
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except OSError:
            self._started = True  # a file that appears later is read from its first line
            return False
        st = os.fstat(handle.fileno())
        if not self._started:
            handle.seek(st.st_size)
            self._started = True
        self._file, self._id, self._seen = handle, (st.st_dev, st.st_ino), True
        return True

    def _moved(self) -> str | None:
        """At the end of the open file: has another file taken its name (rotated), or was it cut?"""
        assert self._file is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # removed, not replaced (yet): Caddy may still write to the open one
        if (st.st_dev, st.st_ino) != self._id:
            return _ROTATED
        if st.st_size < self._file.tell():
            return _TRUNCATED
        return None

    def _drop_partial(self) -> None:
        self.dropped_bytes += len(self._partial)
        self._partial = b""

    def _lines(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            self._drop_partial()
        return [line for line in lines if line]


@dataclass(frozen=True)
class Hit:
    """One request of the access log."""

    host: str  # lower case, without a port
    status: int  # 0: the client went away before any answer
    duration_s: float


def parse_line(line: bytes) -> Hit | None:
    """One of Caddy's JSON access lines (``request.host``, ``status``, ``duration`` in seconds); None
    for anything else."""
    try:
        entry = json.loads(line)
        host = entry["request"]["host"]
        status = int(entry["status"])
        duration = float(entry["duration"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(host, str) or not math.isfinite(duration):
        return None
    return Hit(host=bare_host(host), status=status, duration_s=max(0.0, duration))


def bare_host(host: str) -> str:
    """``Shop.Example.com:8080`` -> ``shop.example.com``; ``[::1]:80`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        host = name
    return host.rstrip(".")


def is_error(status: int) -> bool:
    """A 5xx answer: the app's own, the router's 502/504 (proxying failed) or 503 (no ready instance).
    A client that went away before the answer (status 0) is a request, not an error."""
    return status >= 500


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class RequestFigures:
    """One app's requests over one interval of ``span_s`` seconds ending at ``at``."""

    at: float
    app: str
    span_s: float
    requests: int = 0
    errors: int = 0
    latency_ms: float | None = None  # mean; None without requests
    latency_p95_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.span_s if self.span_s > 0 else 0.0

    @property
    def error_pct(self) -> float | None:
        return 100.0 * self.errors / self.requests if self.requests else None


@dataclass
class Totals:
    """An app's counts since this process started (Prometheus counters)."""

    requests: int = 0
    errors: int = 0
    duration_s: float = 0.0


def aggregate(
    hits: Iterable[Hit], hosts: Mapping[str, str], *, at: float, span_s: float
) -> tuple[dict[str, RequestFigures], int]:
    """Per app (every app of ``hosts``, with or without requests) its figures; and the number of hits
    for a host of no app (the router's 404s, a removed app's last requests)."""
    durations: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    unmatched = 0
    for hit in hits:
        app = hosts.get(hit.host)
        if app is None:
            unmatched += 1
            continue
        durations[app].append(hit.duration_s * 1000.0)
        errors[app] += is_error(hit.status)
    figures = {}
    for app in {*hosts.values(), *durations}:
        ms = durations.get(app, [])
        figures[app] = RequestFigures(
            at=at,
            app=app,
            span_s=span_s,
            requests=len(ms),
            errors=errors.get(app, 0),
            latency_ms=round(sum(ms) / len(ms), 3) if ms else None,
            latency_p95_ms=round(percentile(ms, 95), 3) if ms else None,
        )
    return figures, unmatched


class RequestMeter:
    """Reads the access log once per sampling round (``read``) into per-app figures for that interval.

    ``hosts_to_app`` gives the routed host names (lower case) and their app: the reconcile loop's
    routes, ``APP.<base_domain>`` and custom domains. Until the log file exists there are no figures
    at all (no router logging here), rather than figures of zero requests."""

    def __init__(
        self,
        path: Path,
        *,
        hosts_to_app: Callable[[], dict[str, str]],
        clock: Callable[[], float] = time.time,
        max_bytes: int = MAX_READ_BYTES,
    ) -> None:
        self.follower = LogFollower(path, max_bytes=max_bytes)
        self._hosts_to_app = hosts_to_app
        self._clock = clock
        self._last: float | None = None  # when the previous interval ended
        self._lock = threading.Lock()
        self.totals: dict[str, Totals] = {}
        self.latest: dict[str, RequestFigures] = {}
        self.unmatched = 0  # requests for hosts of no app (the 404 catch-all), since start
        self.bad_lines = 0  # lines that are not access lines

    def read(self) -> list[RequestFigures]:
        """One interval: the figures of every routed app since the previous read (the first read
        only finds its place in the log)."""
        lines = self.follower.read()
        now = self._clock()
        last, self._last = self._last, now
        if last is None or not self.follower.exists:
            return []
        span = max(0.0, now - last)
        hits = []
        for line in lines:
            hit = parse_line(line)
            if hit is None:
                self.bad_lines += 1
            else:
                hits.append(hit)
        figures, unmatched = aggregate(hits, self._hosts_to_app(), at=now, span_s=span)
        with self._lock:
            self.unmatched += unmatched
            for f in figures.values():
                total = self.totals.setdefault(f.app, Totals())
                total.requests += f.requests
                total.errors += f.errors
                total.duration_s += (f.latency_ms or 0.0) * f.requests / 1000.0
            for app in [a for a in self.totals if a not in figures]:
                del self.totals[app]  # no longer routed (deleted): its counters go
            self.latest = figures
        return sorted(figures.values(), key=lambda f: f.app)

    def snapshot(self) -> tuple[dict[str, Totals], dict[str, RequestFigures]]:
        """Copies of the totals and of the newest interval's figures (for ``/metrics``)."""
        with self._lock:
            totals = {app: Totals(t.requests, t.errors, t.duration_s) for app, t in self.totals.items()}
            return totals, dict(self.latest)


@dataclass
class Interval:
    """One sampling interval of an app's requests (ended at ``at``, ``span_s`` long)."""

    at: float
    span_s: float
    requests: int
    errors: int


class RequestWindow:
    """Per app, the intervals of the last ``window_s`` seconds: its error % and request rate.
    Fed by the sampler's thread, read by the evaluation thread."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._points: dict[str, deque[Interval]] = defaultdict(deque)
        self._lock = threading.Lock()

    def add(self, figures: Iterable[RequestFigures]) -> None:
        with self._lock:
            for f in figures:
                points = self._points[f.app]
                points.append(Interval(f.at, f.span_s, f.requests, f.errors))
                while points and points[0].at < f.at - self.window_s:
                    points.popleft()

    def intervals(self, app: str) -> list[Interval]:
        """The app's intervals in the window, oldest first."""
        with self._lock:
            return list(self._points.get(app, ()))

    def _recent(self, app: str, now: float, after: float = 0.0) -> list[Interval]:
        """The intervals that lie in the window and began after ``after``."""
        start = max(now - self.window_s, after) - 1e-6
        return [p for p in self._points.get(app, ()) if p.at - p.span_s >= start and p.at <= now]

    def error_pct(self, now: float) -> dict[str, float]:
        """Per app with requests in the window: the % of them that were errors. An app without
        figures in the window (no longer routed) is forgotten."""
        out = {}
        with self._lock:
            for app in list(self._points):
                points = self._recent(app, now)
                if not points:
                    del self._points[app]
                    continue
                requests = sum(p.requests for p in points)
                if requests:
                    out[app] = 100.0 * sum(p.errors for p in points) / requests
        return out

    def rps(self, app: str, now: float, after: float = 0.0) -> float | None:
        """The app's requests per second over the window, from the intervals that began after
        ``after`` (the last scaling); None with fewer than MIN_POINTS of them."""
        with self._lock:
            points = self._recent(app, now, after)
        span = sum(p.span_s for p in points)
        if len(points) < MIN_POINTS or span <= 0:
            return None
        return sum(p.requests for p in points) / span
