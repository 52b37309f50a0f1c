"""The platform's background work: recovery from the previous run at start, then one thread per loop —
the reconcile loop, the health probes, the engine's events, the router's and the registry's supervision,
the cluster's hosts, the monitor's sampling and evaluation, the registry publisher."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import Backend
from mypaas.errors import MyPaasError
from mypaas.manager.backup.service import Backups
from mypaas.manager.builds import Builds
from mypaas.manager.git.sources import GitSources
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.publishing import Publisher
from mypaas.manager.reconcile.loop import Reconciler
from mypaas.manager.state.desired import drop_failed_first_deploy
from mypaas.manager.state.models import AppRow, OperationRow
from mypaas.monitor.automation import Automation
from mypaas.monitor.host_events import HostEvents
from mypaas.monitor.pressure import HostPressure
from mypaas.monitor.service import Monitoring
from mypaas.registry.images import Images
from mypaas.registry.mirror import Mirror
from mypaas.router.base import Router
from mypaas.states import OperationStatus

log = logging.getLogger("mypaas.manager")

RESTART_GRACE_S = 15.0  # a rollout interrupted by a restart gets at least this long to finish
CHECK_S = 2.0  # how often the router, the registry and the hosts are looked at


@dataclass(frozen=True)
class Parts:
    """What the supervisor runs and watches (built by manager/platform.py)."""

    sessions: sessionmaker[Session]
    backend: Backend
    router: Router
    reconciler: Reconciler
    hosts: Hosts
    builds: Builds
    monitoring: Monitoring
    automation: Automation
    host_events: HostEvents
    pressure: HostPressure
    images: Images | None
    publisher: Publisher | None
    mirror: Mirror
    host_check_s: float
    backups: Backups  # the schedule's backups
    git: GitSources  # the watched repositories' polling


class Supervisor:
    def __init__(self, parts: Parts, *, base_image: Callable[[], object]) -> None:
        self._p = parts
        self._base_image = base_image  # makes the tiny base image when the engine lacks it
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Recover from a previous run, then start the background threads."""
        p = self._p
        self.recover()
        self.supervise_registry()
        try:
            self._base_image()
        except MyPaasError as exc:
            log.warning("base image: %s", exc.message)
        self.supervise_router()
        stop = self._stop
        targets: dict[str, Callable[[], None]] = {
            "reconcile": lambda: p.reconciler.run(stop),
            "probes": lambda: p.reconciler.tracker.run(stop),
            "events": lambda: p.backend.watch(
                p.reconciler.platform, p.reconciler.wake, stop, p.monitoring.on_engine_event
            ),
            "router": self._router_loop,
            "hosts": self._hosts_loop,
            "backups": lambda: p.backups.schedule.run(stop),
            "git-poll": lambda: p.git.run(stop),
            **p.monitoring.threads(stop),
            **p.automation.threads(stop),
        }
        leftovers = p.builds.leftovers()
        if leftovers:
            targets["sweep"] = lambda: p.builds.sweep(leftovers)
        if p.publisher is not None:
            p.publisher.enqueue_unpublished()
            targets["publisher"] = lambda: p.publisher.run(stop) if p.publisher else None
        for name, target in targets.items():
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._p.reconciler.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def recover(self) -> None:
        """Builds and host changes cannot resume after a restart; rollouts can, with a fresh grace
        period."""
        self._p.hosts.recover()
        now = time.time()
        with self._p.sessions.begin() as s:
            for op in s.scalars(select(OperationRow).where(OperationRow.status == OperationStatus.BUILDING)):
                op.status, op.finished_at = OperationStatus.FAILED, now
                op.message = "the manager restarted during the build"
                app = s.scalar(select(AppRow).where(AppRow.name == op.app))
                if app is not None:
                    drop_failed_first_deploy(app, target_failed=False)
                if app is not None and app.operation_id == op.id:
                    app.operation_id = None
            s.execute(
                update(OperationRow)
                .where(
                    OperationRow.status == OperationStatus.RUNNING,
                    OperationRow.deadline < now + RESTART_GRACE_S,
                )
                .values(deadline=now + RESTART_GRACE_S)
            )

    def supervise_registry(self) -> None:
        if self._p.images is None:
            return
        try:
            self._p.images.ensure_running()
            self._p.mirror.ensure_running()
        except MyPaasError as exc:
            log.error("registry: %s", exc.message)

    def supervise_router(self) -> None:
        if self._p.router.healthy():
            return
        try:
            self._p.router.ensure_running()
            self._p.reconciler.wake()
        except MyPaasError as exc:
            log.error("router: %s", exc.message)

    def _router_loop(self) -> None:
        while not self._stop.wait(CHECK_S):
            self.supervise_router()
            self.supervise_registry()

    def _hosts_loop(self) -> None:
        """A cluster's hosts: their state changes every few seconds, their resources less often."""
        last_check = 0.0
        while not self._stop.wait(CHECK_S):
            try:
                if not self._p.host_events.check():
                    continue
                if time.monotonic() - last_check >= self._p.host_check_s:
                    last_check = time.monotonic()
                    self._p.pressure.check()
            except Exception:  # a locked database or an engine hiccup: the loop goes on next round
                log.exception("watching the hosts failed")
