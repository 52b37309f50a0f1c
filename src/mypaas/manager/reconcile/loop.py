"""The reconcile loop: compares desired state with the instances the backend reports, and converges.

Woken by API changes, engine events and readiness changes, with a periodic resync. Every step is
idempotent and nothing is kept only in memory: killing the manager loses no desired state.

Per app, the app's backend kind (kinds.py) plans and carries out its steps; the loop owns the error
policy: a permanent failure gives the rollout up, a temporary one is reported once (in the manager's
log and the operation's) and tried again after a growing pause. Removals (drain, then stop) and the
routes are the loop's for every kind. The routes are pushed before any outcome is recorded: an
operation succeeds only once the router serves what it rolled out (but in the few seconds after a
restart while the first probes run, when Caddy keeps serving its last config).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import Backend
from mypaas.domain import Instance, ProbeSpec
from mypaas.errors import Conflict, MyPaasError
from mypaas.manager.reconcile.errors import PermanentFailure, StepFailed, TemporaryFailure, step
from mypaas.manager.reconcile.failures import RolloutWatch
from mypaas.manager.reconcile.kinds import AppKind
from mypaas.manager.reconcile.outcomes import Outcomes
from mypaas.manager.reconcile.plan import DesiredApp, Plan
from mypaas.manager.reconcile.quiet import Quiet
from mypaas.manager.reconcile.view import LoopView, Observed
from mypaas.manager.state.db import reading
from mypaas.manager.state.desired import Unchanged, load_desired
from mypaas.monitor.health import HealthTracker
from mypaas.router.base import Router
from mypaas.router.config import Route
from mypaas.settings import Settings
from mypaas.states import AppState, BackendMode

log = logging.getLogger("mypaas.reconcile")

WARM_UP_S = 5.0
RETRY_FIRST_S = 0.5  # a temporary failure is tried again after this, doubling up to RETRY_MAX_S
RETRY_MAX_S = 10.0


def _probe_specs(desired: dict[str, DesiredApp]) -> Callable[[Instance], ProbeSpec | None]:
    """Each instance's probe, from its app's target spec (a new release's probe applies at once)."""

    def probe(inst: Instance) -> ProbeSpec | None:
        app = desired.get(inst.app)
        svc = app.spec.services.get(inst.service) if app is not None and app.spec is not None else None
        return svc.probe if svc is not None else None

    return probe


@dataclass
class _Pass:
    """What one pass gathers while it goes over the apps."""

    removals: list[Instance] = field(default_factory=list)
    waiting: dict[str, list[str]] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)  # apps mid-rollout: the router keeps the current revision
    planned: list[tuple[DesiredApp, Plan]] = field(default_factory=list)  # to settle once routed
    again: bool = False


# What an app's route is made of: its desired state, custom domains, instances, which of these are
# ready, have an address and are not leaving, and whether its rollout holds traffic on the current revision.
_RouteKey = tuple[DesiredApp, tuple[str, ...], tuple[Instance, ...], tuple[bool, ...], bool]


@dataclass(frozen=True)
class _Routed:
    """An app's route as last made (None: the app routes no service), and the instances it names."""

    key: _RouteKey
    route: Route | None
    ids: tuple[str, ...]


@dataclass
class _Failing:
    """An app whose steps failed temporarily: reported once, tried again at ``retry_at``."""

    message: str
    tries: int
    retry_at: float  # time.monotonic()


@dataclass(frozen=True)
class LoopParts:
    """The reconcile loop's collaborators (built by manager/platform.py)."""

    sessions: sessionmaker[Session]
    backend: Backend
    kinds: dict[BackendMode, AppKind]  # the docker kind always; the swarm kind when the backend has it
    router: Router
    outcomes: Outcomes
    tracker: HealthTracker  # the monitor's readiness verdicts
    view: LoopView  # what the loop saw last, for its readers
    wakeup: threading.Event  # set by whoever changes desired state or readiness


class Reconciler:
    def __init__(
        self,
        parts: LoopParts,
        *,
        platform_id: str,
        settings: Settings,
        on_observed: Callable[[list[Instance]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = parts.sessions
        self._backend = parts.backend
        self._kinds = parts.kinds
        self._router = parts.router
        self._outcomes = parts.outcomes
        self.tracker = parts.tracker
        self.view = parts.view
        self._wake = parts.wakeup
        self.platform = platform_id
        self._base_domain = settings.base_domain
        self._drain_s = settings.drain_s
        self._grace_s = settings.stop_grace_s
        self._resync_s = settings.resync_s
        self._on_observed = on_observed  # each pass's instances (the monitor follows them)
        self._clock = clock
        self._lock = threading.Lock()  # one pass at a time
        self._routed: set[str] = set()  # instance ids in the router's last config
        self._removals = ThreadPoolExecutor(max_workers=8, thread_name_prefix="remove")
        self._pending: set[Future[None]] = set()
        self._failing: dict[str, _Failing] = {}
        self._unchanged = Unchanged()  # the desired state's reader gives an unchanged app's object again
        self._quiet = Quiet(self.tracker)  # apps at rest, not planned again while nothing changes
        self._route_of: dict[str, _Routed] = {}  # each app's route, made again only when its inputs change
        self._born = time.monotonic()
        self._watch = RolloutWatch(
            report=self._backend.instance_report,
            tail=self._backend.tail,
            ready=self.tracker.ready,
            probe_error=self.tracker.last_error,
        )

    def wake(self) -> None:
        self._wake.set()

    @property
    def observed(self) -> Observed:
        return self.view.observed

    # -- the loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Reconcile until ``stop`` is set; a failing pass is logged and retried with backoff."""
        backoff = 0.5
        while not stop.is_set():
            self._wake.clear()
            try:
                again = self.pass_once()
                backoff = 0.5
                self.view.error = None
            except Exception as exc:  # a bug must not kill the loop either; log it whole
                if isinstance(exc, MyPaasError):
                    log.warning("reconcile pass failed: %s", exc.message)
                    self.view.error = exc.message
                else:
                    log.exception("reconcile pass crashed")
                    self.view.error = f"internal error: {exc}"
                again = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            if not again:
                self._wake.wait(self._next_wait())

    def _next_wait(self) -> float:
        """Until the next resync, the next probe verdict due, or the next retry of a failing app."""
        waits = [self._resync_s]
        soon = self.tracker.next_deadline()
        if soon is not None:
            waits.append(soon + 0.05)
        if self._failing:
            waits.append(min(f.retry_at for f in self._failing.values()) - time.monotonic())
        return max(0.0, min(waits))

    def pass_once(self) -> bool:
        """One pass over every app. Returns True when another pass should follow at once."""
        with self._lock:
            return self._pass()

    def join_removals(self) -> None:
        """Wait for the removals started so far (drained, stopped, removed)."""
        while self._pending:
            for fut in list(self._pending):
                fut.result()

    def _pass(self) -> bool:
        with reading(self._sessions) as s:
            desired, domains = load_desired(s, self._unchanged)
        listed = self._backend.list_instances(self.platform)
        for kind in self._kinds.values():
            kind.begin(set(desired))
        self.tracker.observe(listed, _probe_specs(desired))
        removing = self.view.removing()
        instances = [i for i in listed if i.id not in removing]
        if self._on_observed is not None:
            self._on_observed(instances)
        by_app: dict[str, list[Instance]] = defaultdict(list)
        for inst in instances:
            by_app[inst.app].append(inst)
        done = _Pass(removals=[i for name, insts in by_app.items() if name not in desired for i in insts])
        now = self._clock()
        for app in desired.values():
            insts = by_app.get(app.name, [])
            if self._quiet.unchanged(app, insts):
                done.waiting[app.name] = []  # at rest, as at its last plan: planning it again finds nothing
                continue
            self._reconcile(app, insts, now, done)
        self._failing = {name: f for name, f in self._failing.items() if name in desired}
        self._watch.retain(set(desired))
        self._quiet.retain(set(desired))
        routes, drain = self._push_routes(
            desired, domains, by_app, {i.id for i in done.removals}, done.holding
        )
        for app, plan in done.planned:  # after the push: a rollout is done once the router serves it
            self._settle_one(app, plan, done)
        for inst in done.removals:
            self._start_removal(inst, self._drain_s if inst.id in drain else 0.0)
        self.view.observed = Observed(
            instances=dict(by_app), waiting=done.waiting, routes=routes, at=time.time()
        )
        return done.again

    def _kind(self, app: DesiredApp) -> AppKind:
        return self._kinds.get(app.backend) or self._kinds[BackendMode.DOCKER]

    def _reconcile(self, app: DesiredApp, instances: list[Instance], now: float, done: _Pass) -> None:
        """Plan one app and carry its steps out (it is settled once the routes are pushed); one app's
        failure never holds up the others."""
        kind = self._kind(app)
        self._quiet.forget(app.name)
        try:
            plan = kind.plan(app, instances, now)
        except PermanentFailure as exc:
            self._outcomes.abandon(app, reason=exc.message)
            done.again = True
            return
        if self._crash_loop(app, instances, plan):
            done.again = True
            return
        for inst in plan.replaced:
            self.tracker.replaced(inst)
            self._outcomes.replaced(app, inst)
        done.waiting[app.name] = plan.waiting
        if plan.swapping:
            done.holding.add(app.name)
        try:
            if self._due(app.name):
                done.again |= kind.apply(app, plan)
                self._recovered(app.name)
        except PermanentFailure as exc:  # the engine refuses the spec itself: retrying cannot help
            self._outcomes.abandon(app, reason=exc.message)
            done.again = True
            return
        except TemporaryFailure as exc:
            self._failed(app, exc)
        done.removals.extend(plan.remove)
        done.planned.append((app, plan))
        self._quiet.planned(app, instances, plan, retrying=app.name in self._failing)

    def _crash_loop(self, app: DesiredApp, instances: list[Instance], plan: Plan) -> bool:
        """Count the target's exits and say how often it restarted (in the plan's waiting lines, and
        the operation's log as the count grows); give the rollout up at once when a service
        crash-loops (True)."""
        gone = self._kind(app).failures(app) if app.rolling and app.state == AppState.RUNNING else []
        grew = self._watch.observe(app, instances, gone)
        plan.waiting = self._watch.annotate(app, plan.waiting)
        for service in grew:
            line = next((w for w in plan.waiting if w.startswith(f"{service}: ")), None)
            self._outcomes.progress(app, line or f"{service}: {self._watch.restarted(app, service)}")
        looping = self._watch.crash_loop(app)
        if looping is None:
            return False
        self._outcomes.abandon(app, reason=looping, tail=self._watch.tail(app))
        return True

    def _settle_one(self, app: DesiredApp, plan: Plan, done: _Pass) -> None:
        try:
            with step():
                done.again |= self._settle(app, plan)
        except StepFailed as exc:
            self._failed(app, TemporaryFailure(exc.message))

    # -- the error policy -----------------------------------------------------------------------

    def _due(self, app: str) -> bool:
        failing = self._failing.get(app)
        return failing is None or time.monotonic() >= failing.retry_at

    def _recovered(self, app: str) -> None:
        self._failing.pop(app, None)

    def _failed(self, app: DesiredApp, exc: TemporaryFailure) -> None:
        """Report a temporary failure once (not on every try), then try again after a growing pause."""
        self._quiet.forget(app.name)
        before = self._failing.get(app.name)
        tries = before.tries + 1 if before is not None else 1
        delay = exc.delay if exc.delay is not None else min(RETRY_FIRST_S * 2 ** (tries - 1), RETRY_MAX_S)
        self._failing[app.name] = _Failing(exc.message, tries, time.monotonic() + delay)
        if before is not None and before.message == exc.message:
            return
        log.warning("%s: %s", app.name, exc.message)
        self._outcomes.error(app, exc.message)

    # -- settling ---------------------------------------------------------------------------------

    def _settle(self, app: DesiredApp, plan: Plan) -> bool:
        """Record the end of a rollout, a stop or a removal; abandon a rollout past its deadline."""
        if plan.abandon:
            self._outcomes.abandon(app, detail=self._watch.why_unready(app), tail=self._watch.tail(app))
            return True
        if plan.overdue:
            self._outcomes.overdue(app, plan)
            return False
        if not plan.converged:
            return False
        if app.state != AppState.RUNNING and self.view.removing_any(app.name):
            return False  # a stop or removal is done once its instances are gone for good
        if app.state == AppState.DELETING:
            self._remove_app(app)
            return False
        if app.rolling or app.operation_id:
            self._outcomes.complete(app)
        return False

    def _remove_app(self, app: DesiredApp) -> None:
        """Remove the app's engine resources, then forget it. What blocks it (a Conflict: a foreign
        container on its network, say) is recorded; either way it is tried again. A forced removal
        gives up on what is left and forgets the app all the same."""
        try:
            self._backend.remove_app_resources(
                self.platform, app.name, volumes=app.remove_volumes, force=app.remove_force
            )
        except MyPaasError as exc:
            if not app.remove_force:
                if isinstance(exc, Conflict):  # held by something that will not go by itself
                    self._outcomes.blocked(app, exc.message)
                raise  # tried again after a pause
            log.warning("%s: forced removal leaves %s", app.name, exc.message)
            self._outcomes.removed(app, left=exc.message)
            return
        self._outcomes.removed(app)

    # -- routes and removals ----------------------------------------------------------------------

    def _push_routes(
        self,
        desired: dict[str, DesiredApp],
        domains: dict[str, list[str]],
        by_app: dict[str, list[Instance]],
        leaving: set[str],
        holding: set[str],
    ) -> tuple[list[Route], set[str]]:
        """Push the routes of ready instances; return them, and the leaving instances that were routed
        (to drain).

        During a rollout the current revision keeps the traffic until the whole target is ready; then
        one push swaps old for new. Every push reloads Caddy, so fewer pushes mean fewer chances of
        a connection caught by a reload."""
        routes: list[Route] = []
        routed: set[str] = set()
        made: dict[str, _Routed] = {}
        for app in desired.values():
            if app.state == AppState.DELETING:
                continue
            insts = by_app.get(app.name, [])
            ok = self._routable(insts, leaving)
            key = (app, tuple(domains.get(app.name, [])), tuple(insts), ok, app.name in holding)
            last = self._route_of.get(app.name)
            if last is None or last.key != key:
                last = self._route(app, key)
            made[app.name] = last
            if last.route is not None:  # a stopped app keeps its route, answering 503 without instances
                routed.update(last.ids)
                routes.append(last.route)
        self._route_of = made
        if not self._warming_up():
            self._router.apply(routes)
        drain = self._routed & leaving
        self._routed = routed
        return routes, drain

    def _routable(self, insts: list[Instance], leaving: set[str]) -> tuple[bool, ...]:
        """Which of an app's instances are candidates for its route (its routed service's are chosen
        among them): ready, with an address, and not leaving."""
        return tuple(bool(i.address) and i.id not in leaving and self.tracker.ready(i) for i in insts)

    def _route(self, app: DesiredApp, key: _RouteKey) -> _Routed:
        """The app's route (None: it routes no service) and the instances it sends requests to."""
        _, domains, insts, ok, holding = key
        web = app.spec.web if app.spec else None
        if web is None:
            return _Routed(key, None, ())
        ups = [i for i, good in zip(insts, ok, strict=True) if good and i.service == web]
        if holding:
            serving = [i for i in ups if (i.release, i.generation) == app.current]
            ups = serving or ups  # nothing of the current revision ready: take what is
        hosts = (f"{app.name}.{self._base_domain}", *domains)
        upstreams = tuple(sorted(i.address or "" for i in ups))
        stopped = app.state == AppState.STOPPED
        route = Route(app.name, hosts, upstreams, stopped=stopped, plain_http=app.plain_http)
        return _Routed(key, route, tuple(i.id for i in ups))

    def _warming_up(self) -> bool:
        """Just after a (re)start no instance is probed yet: pushing routes now would empty them.
        Caddy keeps serving its last config until the first verdicts are in (a few seconds at most)."""
        return self.tracker.unverified() > 0 and time.monotonic() - self._born < WARM_UP_S

    def _start_removal(self, inst: Instance, drain_s: float) -> None:
        self.view.start_removing(inst)
        fut = self._removals.submit(self._remove, inst, drain_s)
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)

    def _remove(self, inst: Instance, drain_s: float) -> None:
        """Drain (let requests already sent finish), stop and remove one instance; then wake the loop."""
        try:
            if drain_s:
                time.sleep(drain_s)
            self._backend.remove_instance(inst.id, self._grace_s)
        except MyPaasError as exc:
            log.warning("removing %s failed: %s", inst.name, exc.message)
        finally:
            self.view.done_removing(inst.id)
            self.wake()
