"""Wires the monitor to the manager: the event log and the metrics sampler, fed by the reconcile loop's
observed instances and the engine's events, and the events of user actions (recorded in manager/apps.py);
each sampling round also reads the router's access log into per-app request figures. On a cluster, the
instances on the other hosts are read over each host's connection (``read_other_hosts``).

Nothing here blocks the reconcile loop: ``observe`` diffs two in-memory lists and queues events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine

from mypaas.composer.base import Backend, EngineEvent
from mypaas.domain import Instance, InstanceState
from mypaas.manager.reconcile.loop import Reconciler
from mypaas.monitor.events import EventLog
from mypaas.monitor.metrics import Sample, Sampler
from mypaas.monitor.remote import Connection, RemoteSampler
from mypaas.monitor.requests import RequestFigures, RequestMeter
from mypaas.monitor.series import MINUTE, MetricStore
from mypaas.router.config import ACCESS_LOG, Route
from mypaas.settings import Settings

log = logging.getLogger("mypaas.monitoring")

_RUNNING = (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY)


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
        self, *, engine: Engine, backend: Backend, reconciler: Reconciler, settings: Settings
    ) -> None:
        self._backend = backend
        self._reconciler = reconciler
        self.events = EventLog(engine, keep=settings.events_keep)
        self.store = MetricStore(
            engine, raw_keep_s=settings.metrics_raw_keep_s, minute_keep_s=settings.metrics_minute_keep_s
        )
        self.sampler = Sampler(
            resolve=backend.instance_process, interval_s=settings.metrics_interval_s, on_sample=self._stored
        )
        # the router (router/caddy.py) logs to access.log next to its own log in the log folder
        self.requests = RequestMeter(settings.log_dir / ACCESS_LOG, hosts_to_app=self.hosts_to_app)
        self.enabled = settings.metrics_enabled
        self._ready: dict[str, bool] = {}
        self._states: dict[str, Instance] = {}
        self._engine_down = False
        self._rounds_to_rollup = 0
        self.listeners: list[Callable[[list[Sample]], None]] = []  # e.g. the autoscaler's CPU window
        self.request_listeners: list[Callable[[list[RequestFigures]], None]] = []  # its request window
        reconciler.events = self.events
        reconciler.on_observed = self.observe

    def read_other_hosts(self, hosts: HostDirectory) -> None:
        """Sample the instances on the cluster's other hosts too (Swarm tasks), over their connections."""
        self.sampler.remote = RemoteSampler(
            platform=self._reconciler.platform,
            nodes=lambda: nodes_to_hosts(hosts),
            connect=hosts.machine,
            timeout_s=min(10.0, max(1.0, self.sampler.interval_s * 0.8)),
        )

    def threads(self, stop: threading.Event) -> dict[str, Callable[[], None]]:
        targets: dict[str, Callable[[], None]] = {"events-writer": lambda: self.events.run(stop)}
        if self.enabled:
            targets["metrics"] = lambda: self.sampler.run(stop)
        return targets

    # -- from the reconcile loop ----------------------------------------------------------------

    def observe(self, insts: list[Instance]) -> None:
        """A reconcile pass listed the instances: refresh the sampler's targets, record readiness changes."""
        self.sampler.track(insts)
        ready = self._reconciler.tracker.ready
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
        return {host.lower(): route.app for route in self._reconciler.observed.routes for host in route.hosts}

    def route(self, app: str) -> Route | None:
        """The app's route as last pushed (its upstreams are its ready, routed instances)."""
        return next((r for r in self._reconciler.observed.routes if r.app == app), None)

    # -- from the engine ------------------------------------------------------------------------

    def on_engine_event(self, event: EngineEvent) -> None:
        if not event.app:
            return
        data: dict[str, Any] = {"instance": event.name, "service": event.service}
        if event.action == "oom":
            self.events.record(event.app, "oom_killed", f"{event.name} ran out of memory (OOM kill)", data)
        elif event.action == "die":
            data["exit_code"] = event.exit_code
            data["expected"] = event.instance_id in self._reconciler.removing()
            why = "stopped by the platform" if data["expected"] else "exited"
            self.events.record(
                event.app, "instance_exited", f"{event.name} {why} with code {event.exit_code}", data
            )
        elif event.action == "start" and event.instance_id in self._ready:
            info = self._safe_process(event.instance_id)
            if info is not None:
                data["restarts"] = info.restarts
            self.events.record(event.app, "instance_restarted", f"{event.name} was restarted", data)

    def _safe_process(self, instance_id: str) -> Any:
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
            log.exception("reading the router's access log failed")
            return []

    def _check_engine(self) -> None:
        """Only when the loop reports a failure: is the engine itself unreachable?"""
        if self._reconciler.observed.error is None or self._engine_down:
            return
        if not self._backend.ping():
            self._engine_down = True
            self.events.record(None, "engine_unreachable", "the Docker engine does not answer")
