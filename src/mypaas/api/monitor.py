"""REST routes of the monitor: the event log (with a long-poll follow mode), an app's metric series, the
newest figures (for ``mypaas top``) and the Prometheus text endpoint ``/metrics``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import PlainTextResponse

from mypaas.api import scoping
from mypaas.api.deps import User, in_thread
from mypaas.api.longpoll import long_poll
from mypaas.api.scoping import narrowed_to, seen_apps
from mypaas.manager.platform import Platform


def monitor_routes(app: FastAPI, v1: APIRouter, platform: Platform) -> None:
    monitoring = platform.monitoring

    def any_event(app: str) -> bool:
        """Has ``app`` any event at all? A removed app's are still listed."""
        return bool(monitoring.query_events(app=app, since=None, after=None, limit=1))

    @v1.get("/events", tags=["monitor"])
    async def events(
        who: User,
        app: str | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        after: Annotated[int | None, Query(ge=0)] = None,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> list[dict[str, Any]]:
        """Events, oldest first (the newest ``limit``). With ``after`` (an event id) and ``wait``, held
        until newer events arrive or ``wait`` seconds pass: a client follows the log this way. A member
        sees the events of their teams' apps; the platform's and hosts' events are the admin's."""
        await in_thread(narrowed_to, platform, who, app, "events")
        seen = await in_thread(seen_apps, platform, who)
        found = await long_poll(
            lambda: monitoring.query_events(app=app, since=since, after=after, limit=limit, among=seen),
            bool,
            monitoring.events.changes,
            wait if after is not None else 0,
        )
        if app and not found and after is None and not any_event(app):
            platform.apps.get(app)  # nothing at all and no such app (a typo): 404, with the close name
        return [e.to_dict() for e in found]

    @v1.get("/apps/{name}/metrics", tags=["monitor"])
    def app_metrics(
        name: str,
        _: User,
        since: str = "1h",
        step: Annotated[
            int | None,
            Query(
                ge=1,
                le=86_400,
                description="average the points into buckets of this many seconds (a chart of 7 days: 3600)",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """An app's CPU, memory, network and disk figures over time, per service and in total, and the
        router's request figures (``requests``: count, errors, rps, error %, mean and p95 latency in ms).
        Raw points within the last hour, one-minute averages past it; ``step`` makes them coarser."""
        platform.apps.get(name)  # 404 for an unknown app
        return monitoring.series(name, since, step)

    @v1.get("/metrics/now", tags=["monitor"])
    def metrics_now(who: User) -> dict[str, Any]:
        """The newest sample of every instance and of this machine; the router's figures of each app
        over the last interval (``requests``: rps, error %, mean and p95 latency in ms); on a cluster,
        each host with its state, instances and memory/disk use as last checked (``hosts``). A member
        gets the figures of their teams' apps only; this machine's and the hosts' are the admin's."""
        seen = seen_apps(platform, who)
        answer = {
            **monitoring.now(),
            "hosts": platform.hosts.now(platform.pressure.last) if seen is None else [],
        }
        return scoping.metrics_now(answer, seen)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["monitor"])
    def prometheus(who: User) -> PlainTextResponse:
        """Prometheus text format: the platform's, the host's and every instance's figures, and the
        router's request counters and latency summary per app. A member's token gets the series of their
        teams' apps only (and ``mypaas_up``); the platform's and host series are the admin's."""
        observed = platform.reconciler.observed
        instances = sum(len(v) for v in observed.instances.values())
        text = monitoring.prometheus_text(
            apps=len(observed.instances), instances=instances, among=seen_apps(platform, who)
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
