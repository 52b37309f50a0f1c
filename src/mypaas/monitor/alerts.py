"""Alerts: rules over the monitor's figures, an evaluator that fires and resolves them, and the webhook
sender that POSTs each transition as JSON (retried with backoff on its own thread, never blocking).

Kinds: ``app_down`` (no ready instance for ``for_s``), ``memory_pct`` (an instance's memory over
``threshold`` % of its limit for ``for_s``), ``host_unreachable`` (the Docker engine does not answer) and
``error_rate`` (the 5xx share of an app's requests at the router over the last window, see
monitor/requests.py, over ``threshold`` %; an app without requests in the window has no value).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mypaas.domain import check_name
from mypaas.egress import Egress, Refused
from mypaas.errors import Conflict, InvalidSpec, NotFound
from mypaas.monitor.events import EventSink
from mypaas.monitor.metrics import Sample
from mypaas.monitor.tables import alert_rules as ar
from mypaas.monitor.tables import alert_states as ast
from mypaas.states import THRESHOLD_KINDS, AlertKind

log = logging.getLogger("mypaas.alerts")

KINDS = tuple(kind.value for kind in AlertKind)
NO_DATA_YET: tuple[str, ...] = ()  # kinds whose figures the platform cannot gather (none now)
PLATFORM = ""  # the target key of rules about the platform (host_unreachable)
PLATFORM_KINDS = ("host_unreachable",)  # about the hosts, whatever app the rule names


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    webhook: str
    app: str | None = None
    threshold: float = 0.0
    for_s: float = 0.0
    created_at: float = 0.0
    allow_private: bool = False  # the webhook may be on a private network (a platform admin's choice)

    def check(self) -> None:
        check_name(self.name, "name")
        if self.kind not in KINDS:
            kinds = ", ".join(KINDS)
            raise InvalidSpec(f"unknown alert kind {self.kind!r}: use one of {kinds}", field="kind")
        if self.app is not None:
            check_name(self.app, "app")
        try:
            url = urlsplit(self.webhook)
            httpx.URL(self.webhook)
            host = url.hostname
        except (ValueError, httpx.InvalidURL) as exc:
            raise InvalidSpec(f"webhook is not a valid URL: {exc}", field="webhook") from exc
        if url.scheme not in ("http", "https") or not host:
            raise InvalidSpec("webhook must be an http:// or https:// URL", field="webhook")
        if not (self.for_s >= 0 and math.isfinite(self.for_s)):
            raise InvalidSpec("for must be a number of seconds, 0 or more", field="for_s")
        if not math.isfinite(self.threshold):
            raise InvalidSpec("threshold must be a finite number", field="threshold")
        if self.kind in THRESHOLD_KINDS and not 0 < self.threshold <= 100:
            raise InvalidSpec(f"{self.kind} needs a threshold between 0 and 100 (%)", field="threshold")

    @property
    def subject(self) -> str | None:
        """The app the rule fires about (None: every app, or the hosts): what it takes to manage it."""
        return None if self.kind in PLATFORM_KINDS else self.app

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["has_data"] = self.kind not in NO_DATA_YET
        return data


class RuleStore:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def add(self, rule: Rule) -> Rule:
        rule.check()
        row = {**asdict(rule), "created_at": self._clock()}
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(ar).values(**row))
        except IntegrityError as exc:
            raise Conflict(f"an alert named {rule.name!r} exists already", field="name") from exc
        return Rule(**row)

    def update(self, rule: Rule) -> Rule:
        """Change rule ``rule.name`` in place: it keeps its creation time and where each of its targets
        stands (a condition that held counts on, a firing alert is not sent again, its history stays one
        rule's). A new ``kind`` is another condition: its targets start afresh, as a rule added again."""
        rule.check()
        with self._engine.begin() as conn:
            old = conn.execute(select(ar.c.kind, ar.c.created_at).where(ar.c.name == rule.name)).first()
            if old is None:
                raise NotFound(f"no alert named {rule.name!r}", field="name")
            created = float(old.created_at)
            if old.kind != rule.kind:
                created = self._clock()
                conn.execute(delete(ast).where(ast.c.rule == rule.name))
            row = {**asdict(rule), "created_at": created}
            conn.execute(update(ar).where(ar.c.name == rule.name).values(**row))
        return Rule(**row)

    def list(self) -> list[Rule]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(ar).order_by(ar.c.name)).mappings()
            return [Rule(**{**dict(r), "allow_private": bool(r["allow_private"])}) for r in rows]

    def remove(self, name: str) -> None:
        with self._engine.begin() as conn:
            if not conn.execute(delete(ar).where(ar.c.name == name)).rowcount:
                raise NotFound(f"no alert named {name!r}", field="name")
            conn.execute(delete(ast).where(ast.c.rule == name))

    def states(self) -> dict[tuple[str, str], tuple[float | None, bool]]:
        """Where each (rule, target) stood when last saved: (since, firing)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(ast.c.rule, ast.c.target, ast.c.since, ast.c.firing))
            return {(r.rule, r.target): (r.since, bool(r.firing)) for r in rows}

    def save_state(self, rule: str, target: str, since: float | None, firing: bool) -> None:
        """Keep a (rule, target)'s state; one that neither holds nor fires is forgotten."""
        key = (ast.c.rule == rule) & (ast.c.target == target)
        with self._engine.begin() as conn:
            conn.execute(delete(ast).where(key))
            if since is not None or firing:
                conn.execute(insert(ast).values(rule=rule, target=target, since=since, firing=int(firing)))


@dataclass
class Facts:
    """What one evaluation looks at, gathered by the manager."""

    ready: dict[str, int] = field(default_factory=dict)  # app (released, not stopped or deleting) -> ready
    memory_pct: dict[str, float] = field(default_factory=dict)  # app -> highest instance memory % of limit
    # app (with requests in the window) -> 5xx % of its requests; None: no request figures at all
    error_pct: dict[str, float] | None = None
    engine_up: bool = True
    hosts_down: dict[str, bool] = field(default_factory=dict)  # a cluster's host name -> down


def memory_by_app(samples: Iterable[Sample]) -> dict[str, float]:
    """The highest memory use, in % of its limit, of each app's instances that have a limit."""
    out: dict[str, float] = {}
    for s in samples:
        if s.app and s.mem_limit:
            out[s.app] = max(out.get(s.app, 0.0), 100.0 * s.mem_bytes / s.mem_limit)
    return out


def _values(rule: Rule, facts: Facts) -> dict[str, tuple[float, bool]]:
    """Per target (an app, or the platform): the rule's value and whether it is over the line."""
    if rule.kind == "host_unreachable":  # this machine's engine, and each host of a cluster
        hosts = {f"host {name}": (1.0 if down else 0.0, down) for name, down in facts.hosts_down.items()}
        return {PLATFORM: (0.0 if facts.engine_up else 1.0, not facts.engine_up), **hosts}
    if rule.kind == "app_down":
        found = {app: (float(n), n == 0) for app, n in facts.ready.items()}
    elif rule.kind == "memory_pct":
        found = {app: (round(pct, 1), pct > rule.threshold) for app, pct in facts.memory_pct.items()}
    else:
        found = {app: (round(pct, 2), pct > rule.threshold) for app, pct in (facts.error_pct or {}).items()}
    return found if rule.app is None else {k: v for k, v in found.items() if k == rule.app}


def _gathered(kind: str, facts: Facts) -> bool:
    """Whether ``facts`` hold any figures for rules of ``kind`` (right after a start they may not)."""
    if kind == "memory_pct":
        return bool(facts.memory_pct)
    if kind == "error_rate":
        return facts.error_pct is not None
    if kind == "host_unreachable":
        return bool(facts.hosts_down)
    return True  # app_down: the apps' ready counts come from the state store


@dataclass
class _State:
    since: float | None = None  # when the condition started holding
    firing: bool = False
    stored_firing: bool = False  # what the store says: changed once the webhook got the news
    rule_created: float | None = None  # the rule this state belongs to (a rule re-added starts afresh)


STARTUP_GRACE_S = 120.0  # after a start, a firing alert with no figures of its kind yet is not resolved


class Alerts:
    """The evaluator: ``evaluate(facts)`` fires a rule's target once its condition held ``for_s``, and
    resolves it when the condition no longer holds (or the target is gone).

    Where each target stands is kept in the store, so a restarted manager goes on where it stopped:
    the time a condition has held counts on, and an alert counts as fired (or resolved) once its
    webhook took the news; one the manager could not deliver before it stopped is sent again. For
    ``STARTUP_GRACE_S`` after a start, a firing alert with no figures of its kind gathered yet stays firing.
    """

    def __init__(
        self, *, store: RuleStore, sender: Webhooks, events: EventSink, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self._sender = sender
        self._events = events
        self._clock = clock
        self._states: dict[tuple[str, str], _State] | None = None  # loaded at the first evaluation
        self._started: float | None = None
        self._lock = threading.RLock()  # the monitor evaluates, the API lists, deliveries confirm

    def _loaded(self) -> dict[tuple[str, str], _State]:
        if self._states is None:
            self._states = {
                k: _State(since, firing, stored_firing=firing)
                for k, (since, firing) in self.store.states().items()
            }
        return self._states

    def evaluate(self, facts: Facts) -> None:
        with self._lock:
            self._evaluate(facts)

    def _evaluate(self, facts: Facts) -> None:
        now = self._clock()
        if self._started is None:
            self._started = now
        states = self._loaded()
        live: set[tuple[str, str]] = set()
        rules = self.store.list()
        for rule in rules:
            for target, (value, over) in _values(rule, facts).items():
                key = (rule.name, target)
                live.add(key)
                self._step(rule, target, value, over, now)
        by_name = {r.name: r for r in rules}
        for key in [k for k in states if k not in live]:
            owner, state = by_name.get(key[0]), states[key]
            if (
                owner is not None
                and state.firing
                and not _gathered(owner.kind, facts)
                and now - self._started < STARTUP_GRACE_S
            ):
                continue  # just started: no figures of its kind gathered yet
            states.pop(key)
            if owner is not None and state.firing:  # the app or host went away: its alert is over
                self._send(owner, key, "resolved", None, now)
            else:
                self.store.save_state(*key, since=None, firing=False)

    def firing(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(k for k, s in self._loaded().items() if s.firing)

    def firing_since(self) -> dict[tuple[str, str], float | None]:
        """The firing (rule, target)s with the time their condition started holding."""
        with self._lock:
            return {k: s.since for k, s in self._loaded().items() if s.firing}

    def _step(self, rule: Rule, target: str, value: float, over: bool, now: float) -> None:
        key = (rule.name, target)
        state = self._loaded().setdefault(key, _State(rule_created=rule.created_at))
        if state.rule_created is None:
            state.rule_created = rule.created_at
        elif state.rule_created != rule.created_at:  # removed and added again meanwhile
            state = self._loaded()[key] = _State(rule_created=rule.created_at)
        since = state.since
        if not over:
            state.since = None
            if state.firing:
                state.firing = False
                self._send(rule, key, "resolved", value, now)
        else:
            if state.since is None:
                state.since = now
            if not state.firing and now - state.since >= rule.for_s:
                state.firing = True
                self._send(rule, key, "firing", value, now)
        if state.since != since:
            self.store.save_state(rule.name, target, state.since, state.stored_firing)

    def _confirm(self, key: tuple[str, str], firing: bool) -> None:
        """The webhook took the news: the store now says so too (unless it changed meanwhile)."""
        with self._lock:
            state = self._loaded().get(key)
            if state is None:
                self.store.save_state(*key, since=None, firing=False)
            elif state.firing == firing:
                state.stored_firing = firing
                self.store.save_state(*key, since=state.since, firing=firing)

    def _send(self, rule: Rule, key: tuple[str, str], status: str, value: float | None, now: float) -> None:
        target = key[1]
        app = target or None
        payload = {
            "alert": rule.name,
            "kind": rule.kind,
            "status": status,
            "app": app,
            "value": value,
            "threshold": rule.threshold,
            "at": now,
        }
        what = f"{rule.kind} on {app}" if app else rule.kind
        self._events.record(app, f"alert_{status}", f"alert {rule.name} {status}: {what}", payload)
        firing = status == "firing"

        def refused(why: str) -> None:
            message = f"alert {rule.name}: webhook not sent, its address is refused: {why}"
            self._events.record(app, "alert_webhook_refused", message, {"alert": rule.name, "reason": why})

        self._sender.send(
            rule.webhook,
            payload,
            on_delivered=lambda: self._confirm(key, firing),
            allow_private=rule.allow_private,
            on_refused=refused,
        )


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    attempt: int = field(default=0, compare=False)
    on_delivered: Callable[[], None] | None = field(default=None, compare=False)
    allow_private: bool = field(default=False, compare=False)
    on_refused: Callable[[str], None] | None = field(default=None, compare=False)


class Webhooks:
    """Delivers JSON POSTs on its own thread (``run``); a failed one is retried ``retries`` times with
    doubling delays, then dropped with a log line. ``send`` only queues.

    Each delivery resolves the URL's host, checks every address with ``egress`` and connects to the checked
    one (see mypaas/egress.py): a refused address is not sent to, nor retried; redirects are not followed."""

    def __init__(
        self,
        *,
        timeout_s: float = 3.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        egress: Egress | None = None,
    ) -> None:
        self._client = httpx.Client(
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),  # a connection is for one checked name
        )
        self._egress = egress or Egress()
        self._retries = retries
        self._backoff_s = backoff_s
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self.delivered = 0
        self.failed = 0

    def send(
        self,
        url: str,
        payload: dict[str, Any],
        on_delivered: Callable[[], None] | None = None,
        *,
        allow_private: bool = False,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        """Queue a POST; ``on_delivered`` runs on the sender's thread once the receiver took it,
        ``on_refused`` (with the reason) when the URL's address is refused."""
        item = _Delivery(time.monotonic(), next(self._seq), url, payload, on_delivered=on_delivered)
        item.allow_private, item.on_refused = allow_private, on_refused
        with self._cond:
            heapq.heappush(self._queue, item)
            self._cond.notify()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            item = self._next(stop)
            if item is not None:
                self._deliver(item)
        self._client.close()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def _next(self, stop: threading.Event) -> _Delivery | None:
        with self._cond:
            if not self._queue:
                self._cond.wait(0.5)
                return None
            wait = self._queue[0].due - time.monotonic()
            if wait > 0:
                self._cond.wait(min(wait, 0.5))
                return None
            return heapq.heappop(self._queue)

    def _post(self, item: _Delivery) -> httpx.Response:
        target = self._egress.pin(item.url, allow_private=item.allow_private)
        extensions = {"sni_hostname": target.server_name} if target.server_name else None
        return self._client.post(
            target.url, json=item.payload, headers={"Host": target.host}, extensions=extensions
        )

    def _refused(self, item: _Delivery, why: str) -> None:
        self.failed += 1
        log.error("webhook %s refused, not sent: %s", item.url, why)
        if item.on_refused is not None:
            try:
                item.on_refused(why)
            except Exception:
                log.exception("recording a refused webhook failed")

    def _deliver(self, item: _Delivery) -> None:
        try:
            response = self._post(item)
            response.raise_for_status()
            self.delivered += 1
        except Refused as exc:  # not retried: the address will not get better
            self._refused(item, str(exc))
            return
        except Exception as exc:  # any failure (bad URL, network, server): retry, never kill the thread
            error = str(exc) or type(exc).__name__
        else:
            if item.on_delivered is not None:
                try:
                    item.on_delivered()
                except Exception:  # a locked database: the alert is sent again after a restart
                    log.exception("recording a delivered webhook failed")
            return
        if item.attempt >= self._retries:
            self.failed += 1
            log.error("webhook %s failed %d times, dropped: %s", item.url, item.attempt + 1, error)
            return
        item.attempt += 1
        delay = self._backoff_s * 2 ** (item.attempt - 1)
        item.due = time.monotonic() + delay
        log.warning("webhook %s failed (%s); retry %d in %.1fs", item.url, error, item.attempt, delay)
        with self._cond:
            heapq.heappush(self._queue, item)
