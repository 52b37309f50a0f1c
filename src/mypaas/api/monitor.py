"""REST routes of the monitor: the event log (with a long-poll follow mode), an app's metric series, the
newest figures (for ``mypaas top``) and the Prometheus text endpoint ``/metrics``."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import PlainTextResponse

from mypaas.api.deps import User
from mypaas.api.longpoll import long_poll
from mypaas.manager.platform import Platform
from mypaas.monitor import prometheus
from mypaas.monitor.events import parse_duration


def monitor_routes(app: FastAPI, v1: APIRouter, platform: Platform) -> None:
    monitoring = platform.monitoring

    @v1.get("/events", tags=["monitor"])
    async def events(
        _: User,
        app: str | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        after: Annotated[int | None, Query(ge=0)] = None,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> list[dict[str, Any]]:
        """Events, oldest first (the newest ``limit``). With ``after`` (an event id) and ``wait``, held
        until newer events arrive or ``wait`` seconds pass: a client follows the log this way."""
        log = monitoring.events
        start = time.time() - parse_duration(since) if since else None
        found = await long_poll(
            lambda: log.query(app=app, since=start, after=after, limit=limit),
            bool,
            log.changes,
            wait if after is not None else 0,
        )
        return [e.to_dict() for e in found]

    @v1.get("/apps/{name}/metrics", tags=["monitor"])
    def app_metrics(name: str, _: User, since: str = "1h") -> dict[str, Any]:
        """An app's CPU, memory, network and disk figures over time, per service and in total, and the
        router's request figures (``requests``: count, errors, rps, error %, mean and p95 latency in ms)."""
        platform.apps.get(name)  # 404 for an unknown app
        return monitoring.store.series(name, parse_duration(since))

    @v1.get("/metrics/now", tags=["monitor"])
    def now(_: User) -> dict[str, Any]:
        """The newest sample of every instance and of this machine; the router's figures of each app
        over the last interval (``requests``: rps, error %, mean and p95 latency in ms); on a cluster,
        each host with its state, instances and memory/disk use as last checked (``hosts``)."""
        latest = dict(monitoring.sampler.latest)
        host = latest.pop("host", None)
        return {
            "interval_s": monitoring.sampler.interval_s,
            "host": dataclasses.asdict(host) if host else None,
            "instances": [dataclasses.asdict(s) for s in latest.values()],
            "requests": {
                app: {
                    "rps": round(f.rps, 3),
                    "error_pct": None if f.error_pct is None else round(f.error_pct, 2),
                    "latency_ms": f.latency_ms,
                    "latency_p95_ms": f.latency_p95_ms,
                }
                for app, f in dict(monitoring.requests.latest).items()
            },
            "hosts": platform.hosts.now(platform.pressure.last),
        }

    @app.get("/metrics", response_class=PlainTextResponse, tags=["monitor"])
    def metrics(_: User) -> PlainTextResponse:
        """Prometheus text format: the platform's, the host's and every instance's figures, and the
        router's request counters and latency summary per app."""
        observed = platform.reconciler.observed
        figures = {
            "mypaas_up": 1.0,
            "mypaas_apps": float(len(observed.instances)),
            "mypaas_instances": float(sum(len(v) for v in observed.instances.values())),
            "mypaas_events_dropped": float(monitoring.events.dropped),
            "mypaas_metrics_rounds": float(monitoring.sampler.rounds),
        }
        text = prometheus.render(
            monitoring.sampler.latest, platform=figures, requests=monitoring.requests.snapshot()
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
