"""The monitor's service: the event log and the metrics sampler, fed by the reconcile loop's observed
instances and the engine's events, and the events of user actions (recorded by the manager); each
sampling round also reads the router's request figures per app (Caddy's access log, or HAProxy's counters
and duration ring). On a cluster, the
instances on the other hosts are read over each host's connection (a ``RemoteSampler`` given at
construction).

What it needs of the rest of the platform it names here as protocols (``LoopFacts``, ``EngineFacts``);
the manager's composition root hands them over. Nothing here blocks the reconcile loop: ``observe``
diffs two in-memory lists and queues events.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from mypaas.domain import EngineEvent, Instance, ProcessInfo
from mypaas.monitor import prometheus
from mypaas.monitor.buckets import bucketed
from mypaas.monitor.events import Event, EventLog, parse_duration
from mypaas.monitor.metrics import RemoteSource, Sample, Sampler
from mypaas.monitor.remote import Connection
from mypaas.monitor.request_counters import CounterMeter, CounterSource
from mypaas.monitor.requests import RequestFigures, RequestMeter
from mypaas.monitor.series import MINUTE, MetricStore
from mypaas.settings import Settings
from mypaas.states import InstanceState

log = logging.getLogger("mypaas.monitoring")

_RUNNING = (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY)


class RouteFacts(Protocol):
    """A route as the router serves it (router/config.py Route)."""

    @property
    def app(self) -> str: ...

    @property
    def hosts(self) -> tuple[str, ...]: ...

    @property
    def upstreams(self) -> tuple[str, ...]: ...


class LoopFacts(Protocol):
    """What the reconcile loop saw last (manager/reconcile/view.py LoopView)."""

    @property
    def routes(self) -> Sequence[RouteFacts]: ...

    @property
    def error(self) -> str | None: ...

    def removing(self) -> set[str]: ...


class EngineFacts(Protocol):
    """What the monitor asks of the engine (the composer's Backend)."""

    def ping(self) -> bool: ...

    def instance_process(self, instance_id: str) -> ProcessInfo | None: ...


class HostDirectory(Protocol):
    """The cluster's hosts (manager/hosts/service.py Hosts): listed, and reached over their connection."""

    def list(self) -> list[dict[str, Any]]: ...

    def machine(self, name: str) -> Connection: ...


def nodes_to_hosts(hosts: HostDirectory) -> dict[str, str | None]:
    """Swarm node id -> the name of the host to read its instances over (None: this machine, read
    locally, or a node that joined by hand, which MyPaas has no connection to)."""
    return {
        str(h["node_id"]): str(h["name"]) if h["driver"] not in ("local", "unmanaged") else None
        for h in hosts.list()
        if h.get("node_id")
    }


class Monitoring:
    """The platform's event log (``events``), sampler (``sampler``), the router's request figures
    (``requests``) and the metric store (``store``)."""

    def __init__(
        self,
        *,
        engine: Engine,
        backend: EngineFacts,
        loop: LoopFacts,
        ready: Callable[[Instance], bool],
        settings: Settings,
        access_log: Path,
        remote: RemoteSource | None = None,
        counters: CounterSource | None = None,
    ) -> None:
        self._backend = backend
        self._loop = loop
        self._is_ready = ready
        self.events = EventLog(engine, keep=settings.events_keep)
        self.store = MetricStore(
            engine, raw_keep_s=settings.metrics_raw_keep_s, minute_keep_s=settings.metrics_minute_keep_s
        )
        self.sampler = Sampler(
            resolve=backend.instance_process,
            interval_s=settings.metrics_interval_s,
            on_sample=self._stored,
            remote=remote,
        )
        # the router's request figures: its per-app counters when it keeps them (HAProxy), else its log
        self.requests: RequestMeter | CounterMeter = (
            CounterMeter(counters, hosts_to_app=self.hosts_to_app)
            if counters is not None
            else RequestMeter(access_log, hosts_to_app=self.hosts_to_app)
        )
        self.enabled = settings.metrics_enabled
        self._ready: dict[str, bool] = {}
        self._states: dict[str, Instance] = {}
        self._engine_down = False
        self._rounds_to_rollup = 0
        self.listeners: list[Callable[[list[Sample]], None]] = []  # e.g. the autoscaler's CPU window
        self.request_listeners: list[Callable[[list[RequestFigures]], None]] = []  # its request window

    def threads(self, stop: threading.Event) -> dict[str, Callable[[], None]]:
        targets: dict[str, Callable[[], None]] = {"events-writer": lambda: self.events.run(stop)}
        if self.enabled:
            targets["metrics"] = lambda: self.sampler.run(stop)
        return targets

    # -- what the API reads ----------------------------------------------------------------------

    def query_events(
        self,
        *,
        app: str | None,
        since: str | None,
        after: int | None,
        limit: int,
        among: Collection[str] | None = None,
    ) -> list[Event]:
        """Events, oldest first (the newest ``limit``); ``since`` is a duration such as 10m or 2h;
        ``among``: only the events of these apps (None: every event, the platform's too)."""
        start = time.time() - parse_duration(since) if since else None
        return self.events.query(app=app, since=start, after=after, limit=limit, among=among)

    def series(self, app: str, since: str, step: float | None = None) -> dict[str, Any]:
        """An app's figures over the last ``since`` (a duration such as 1h); with ``step``, averaged
        into buckets of that many seconds."""
        series = self.store.series(app, parse_duration(since))
        return bucketed(series, step) if step else series

    def now(self) -> dict[str, Any]:
        """The newest sample of every instance and of this machine, and the router's figures of each
        app over the last interval."""
        latest = dict(self.sampler.latest)
        host = latest.pop("host", None)
        return {
            "interval_s": self.sampler.interval_s,
            "host": dataclasses.asdict(host) if host else None,
            "instances": [dataclasses.asdict(s) for s in latest.values()],
            "requests": {
                app: {
                    "rps": round(f.rps, 3),
                    "error_pct": None if f.error_pct is None else round(f.error_pct, 2),
                    "latency_ms": f.latency_ms,
                    "latency_p95_ms": f.latency_p95_ms,
                }
                for app, f in dict(self.requests.latest).items()
            },
        }

    def prometheus_text(self, apps: int, instances: int, among: Collection[str] | None = None) -> str:
        """Prometheus text format: the platform's (``apps`` and ``instances`` it runs), the host's and
        every instance's figures, and the router's request counters and latency summary per app.
        ``among``: only the series of these apps (no platform or host series but ``mypaas_up``)."""
        if among is not None:
            return self._prometheus_of(among)
        figures = {
            "mypaas_up": 1.0,
            "mypaas_apps": float(apps),
            "mypaas_instances": float(instances),
            "mypaas_events_dropped": float(self.events.dropped),
            "mypaas_metrics_rounds": float(self.sampler.rounds),
        }
        return prometheus.render(self.sampler.latest, platform=figures, requests=self.requests.snapshot())

    def _prometheus_of(self, among: Collection[str]) -> str:
        latest = {k: s for k, s in self.sampler.latest.items() if k != "host" and s.app in among}
        totals, newest = self.requests.snapshot()
        requests = (
            {a: t for a, t in totals.items() if a in among},
            {a: f for a, f in newest.items() if a in among},
        )
        return prometheus.render(latest, platform={"mypaas_up": 1.0}, requests=requests)

    # -- from the reconcile loop ----------------------------------------------------------------

    def observe(self, insts: list[Instance]) -> None:
        """A reconcile pass listed the instances: refresh the sampler's targets, record readiness changes."""
        self.sampler.track(insts)
        ready = self._is_ready
        seen: dict[str, bool] = {}
        for inst in insts:
            now_ready = inst.state in _RUNNING and ready(inst)
            seen[inst.id] = now_ready
            before = self._ready.get(inst.id)
            if before is None and not now_ready:
                continue  # a new instance starting: its readiness will be news, not its start
            if before != now_ready:
                kind = "instance_ready" if now_ready else "instance_unready"
                state = "ready" if now_ready else f"not ready ({inst.state.value})"
                self.events.record(
                    inst.app,
                    kind,
                    f"{inst.name} is {state}",
                    {"instance": inst.name, "service": inst.service},
                )
        self._ready = seen
        if self._engine_down:
            self._engine_down = False
            self.events.record(None, "engine_back", "the Docker engine answers again")

    def hosts_to_app(self) -> dict[str, str]:
        """Every routed host name (lower case) and its app, from the reconcile loop's last routes."""
        return {host.lower(): route.app for route in self._loop.routes for host in route.hosts}

    def route(self, app: str) -> RouteFacts | None:
        """The app's route as last pushed (its upstreams are its ready, routed instances)."""
        return next((r for r in self._loop.routes if r.app == app), None)

    # -- from the engine ------------------------------------------------------------------------

    def on_engine_event(self, event: EngineEvent) -> None:
        if not event.app:
            return
        data: dict[str, Any] = {"instance": event.name, "service": event.service}
        if event.action == "oom":
            self.events.record(event.app, "oom_killed", f"{event.name} ran out of memory (OOM kill)", data)
        elif event.action == "die":
            data["exit_code"] = event.exit_code
            data["expected"] = event.instance_id in self._loop.removing()
            why = "stopped by the platform" if data["expected"] else "exited"
            self.events.record(
                event.app, "instance_exited", f"{event.name} {why} with code {event.exit_code}", data
            )
        elif event.action == "start" and event.instance_id in self._ready:
            info = self._safe_process(event.instance_id)
            if info is not None:
                data["restarts"] = info.restarts
            self.events.record(event.app, "instance_restarted", f"{event.name} was restarted", data)

    def _safe_process(self, instance_id: str) -> ProcessInfo | None:
        try:
            return self._backend.instance_process(instance_id)
        except Exception:  # the engine went away meanwhile: the event stands without the count
            return None

    # -- from the sampler -----------------------------------------------------------------------

    def _stored(self, samples: list[Sample]) -> None:
        self._check_engine()
        figures = self._read_requests()
        for listener in self.listeners:
            try:
                listener(samples)
            except Exception:  # a listener's bug must not stop storing the figures
                log.exception("a metrics listener failed")
        for request_listener in self.request_listeners:
            try:
                request_listener(figures)
            except Exception:
                log.exception("a request figures listener failed")
        try:
            self.store.insert(samples, figures)
            self._rounds_to_rollup -= 1
            if self._rounds_to_rollup <= 0:
                self._rounds_to_rollup = max(1, int(MINUTE / max(self.sampler.interval_s, 0.1)))
                self.store.rollup()
        except Exception:  # a locked or full database: keep sampling, the points are only figures
            log.exception("storing metrics failed")

    def _read_requests(self) -> list[RequestFigures]:
        try:
            return self.requests.read()
        except Exception:  # an unreadable log must not stop sampling
            log.exception("reading the router's request figures failed")
            return []

    def _check_engine(self) -> None:
        """Only when the loop reports a failure: is the engine itself unreachable?"""
        if self._loop.error is None or self._engine_down:
            return
        if not self._backend.ping():
            self._engine_down = True
            self.events.record(None, "engine_unreachable", "the Docker engine does not answer")
