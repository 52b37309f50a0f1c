"""Autoscaling: per-service policies (min/max replicas, a CPU and/or a requests/s target, cooldowns) and
the evaluator that turns the recent figures into a new replica count.

CPU is the sampler's average per replica; requests/s are the router's figures of the app (its web
service, the one routed), per ready replica. With both targets, the larger wanted count wins.
The evaluator never touches the backend: it asks its ``scale`` callback (the manager's ``Apps.scale``,
the same service the API uses) for a new desired count, so the reconcile loop does the work.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from mypaas.domain import MAX_REPLICAS
from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.monitor.events import EventSink
from mypaas.monitor.metrics import Sample
from mypaas.monitor.tables import autoscale_policies as ap

log = logging.getLogger("mypaas.autoscale")


TOLERANCE = 0.1  # no change while the load is within 10 % of the target (no flapping)
MIN_POINTS = 2  # rounds of figures needed since the last change before deciding


@dataclass(frozen=True)
class Policy:
    app: str
    service: str
    min_replicas: int = 1
    max_replicas: int = 1
    target_cpu_pct: float | None = None  # average % of one core per replica
    target_rps_per_replica: float | None = None  # requests/s per ready replica (the routed service)
    cooldown_up_s: float = 30.0
    cooldown_down_s: float = 120.0
    last_scaled_at: float = 0.0

    def check(self) -> None:
        if not 1 <= self.min_replicas <= MAX_REPLICAS:
            raise InvalidSpec(f"min must be between 1 and {MAX_REPLICAS}", field="min")
        if self.max_replicas < self.min_replicas:
            raise InvalidSpec(f"max ({self.max_replicas}) is below min ({self.min_replicas})", field="max")
        if self.max_replicas > MAX_REPLICAS:
            raise InvalidSpec(f"max must be at most {MAX_REPLICAS}", field="max")
        if self.target_cpu_pct is None and self.target_rps_per_replica is None:
            raise InvalidSpec("give a target: cpu (percent of one core per replica) or rps", field="cpu")
        for name, value in (("cpu", self.target_cpu_pct), ("rps", self.target_rps_per_replica)):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise InvalidSpec(f"{name} target must be a number above 0", field=name)
        for name, value in (("cooldown_up_s", self.cooldown_up_s), ("cooldown_down_s", self.cooldown_down_s)):
            if not (value >= 0 and math.isfinite(value)):
                raise InvalidSpec(f"{name} must be a number, 0 or more", field=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A target's verdict: (replicas it wants, why; why one fewer would do, or "" when it would not).
# None: the target is not set. A set target without figures wants no change and blocks a step down.
_Verdict = tuple[int, str, str]


@dataclass(frozen=True)
class Requests:
    """A service's requests over the window: per second in all, and the ready replicas serving them."""

    rps: float
    ready: int

    @property
    def per_replica(self) -> float:
        return self.rps / self.ready if self.ready > 0 else 0.0


def decide(
    policy: Policy, current: int, cpu_pct: float | None, now: float, requests: Requests | None = None
) -> tuple[int, str] | None:
    """The new replica count and why, or None to leave it. Up in proportion to the load (the larger
    count of the two targets), down one step when every target agrees."""
    if current < policy.min_replicas:
        return policy.min_replicas, f"below the minimum {policy.min_replicas}"
    if current > policy.max_replicas:
        return policy.max_replicas, f"above the maximum {policy.max_replicas}"
    if current <= 0:
        return None
    verdicts = [
        v
        for v in (_cpu_verdict(policy, current, cpu_pct), _rps_verdict(policy, current, requests))
        if v is not None
    ]
    return _by_verdicts(policy, current, now - policy.last_scaled_at, verdicts)


def _by_verdicts(
    policy: Policy, current: int, since: float, verdicts: list[_Verdict]
) -> tuple[int, str] | None:
    ups = [(want, why) for want, why, _ in verdicts if want > current]
    if ups and current < policy.max_replicas and since >= policy.cooldown_up_s:
        want, why = max(ups, key=lambda up: up[0])
        return min(policy.max_replicas, want), why
    downs = [down for _, _, down in verdicts]
    if downs and all(downs) and current > policy.min_replicas and since >= policy.cooldown_down_s:
        return current - 1, " and ".join(downs)
    return None


def _cpu_verdict(policy: Policy, current: int, cpu_pct: float | None) -> _Verdict | None:
    target = policy.target_cpu_pct
    if target is None:
        return None
    if cpu_pct is None:
        return current, "", ""
    want = math.ceil(current * cpu_pct / target) if cpu_pct > target * (1 + TOLERANCE) else current
    # step down when one replica fewer would still stay under the target (with the tolerance)
    fewer = current > 1 and current * cpu_pct / (current - 1) < target * (1 - TOLERANCE)
    return (
        want,
        f"cpu {cpu_pct:.0f}% > target {target:.0f}%",
        f"cpu {cpu_pct:.0f}% < target {target:.0f}%" if fewer else "",
    )


def _rps_verdict(policy: Policy, current: int, requests: Requests | None) -> _Verdict | None:
    """Enough replicas that each would serve at most the target: ``ceil(rps / target)`` (the
    proportional rule on the ready replicas' load, so replicas added but still starting are not added
    again). Without a ready replica (the router answers 503) there is no per-replica load."""
    target = policy.target_rps_per_replica
    if target is None:
        return None
    if requests is None or requests.ready <= 0:
        return current, "", ""
    per = requests.per_replica
    want = math.ceil(requests.rps / target) if per > target * (1 + TOLERANCE) else current
    fewer = current > 1 and requests.rps / (current - 1) < target * (1 - TOLERANCE)
    return (
        want,
        f"{per:.1f} req/s per replica > target {target:g}",
        f"{requests.rps / current:.1f} req/s per replica < target {target:g}" if fewer else "",
    )


class CpuWindow:
    """Per service, the average CPU % per replica of each sampling round over the last ``window_s``.
    An instance's first sample (no CPU rate yet) is left out."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._rounds: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)
        self._seen: set[str] = set()

    def add(self, samples: Iterable[Sample]) -> None:
        sums: dict[tuple[str, str], list[float]] = defaultdict(list)
        seen: set[str] = set()
        at = 0.0
        for s in samples:
            if not s.app:
                continue
            seen.add(s.instance)
            at = max(at, s.at)
            if s.instance in self._seen:
                sums[(s.app, s.service)].append(s.cpu_pct)
        self._seen = seen
        for key, values in sums.items():
            points = self._rounds[key]
            points.append((at, sum(values) / len(values)))
            while points and points[0][0] < at - self.window_s:
                points.popleft()

    def average(self, app: str, service: str, now: float) -> float | None:
        points = [p for at, p in self._rounds.get((app, service), ()) if at >= now - self.window_s]
        return sum(points) / len(points) if len(points) >= MIN_POINTS else None

    def reset(self, app: str, service: str) -> None:
        self._rounds.pop((app, service), None)


class PolicyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, policy: Policy) -> Policy:
        policy.check()
        row = policy.to_dict()
        with self._engine.begin() as conn:
            where = (ap.c.app == policy.app) & (ap.c.service == policy.service)
            old = conn.execute(select(ap.c.last_scaled_at).where(where)).scalar()
            if old is None:
                conn.execute(insert(ap).values(**row))
            else:
                row["last_scaled_at"] = old
                conn.execute(update(ap).where(where).values(**row))
        return Policy(**row)

    def list(self, app: str | None = None) -> list[Policy]:
        query = select(ap).order_by(ap.c.app, ap.c.service)
        if app is not None:
            query = query.where(ap.c.app == app)
        with self._engine.connect() as conn:
            return [Policy(**dict(r)) for r in conn.execute(query).mappings()]

    def remove(self, app: str, service: str | None = None) -> int:
        where = ap.c.app == app
        if service is not None:
            where = where & (ap.c.service == service)
        with self._engine.begin() as conn:
            return int(conn.execute(delete(ap).where(where)).rowcount)

    def scaled(self, app: str, service: str, at: float) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(ap).where(ap.c.app == app, ap.c.service == service).values(last_scaled_at=at))


# (app, service) -> the desired replica count, or None when the service should not be autoscaled now
# (the app is stopped, being deleted, or gone).
ReplicasOf = Callable[[str, str], int | None]
ScaleTo = Callable[[str, str, int], None]
# (app, service, since) -> the service's requests over the window, counting only what came after
# ``since`` (the last change); None when the router has no figures for it (not the routed service).
RequestsOf = Callable[[str, str, float], Requests | None]


class Autoscaler:
    """Evaluates every policy (``evaluate``, from the monitor's evaluation thread)."""

    def __init__(
        self,
        *,
        store: PolicyStore,
        window: CpuWindow,
        replicas: ReplicasOf,
        scale: ScaleTo,
        events: EventSink,
        requests: RequestsOf | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window = window
        self._requests = requests
        self._replicas = replicas
        self._scale = scale
        self._events = events
        self._clock = clock

    def evaluate(self) -> list[tuple[str, str, int, int]]:
        """One pass; returns the changes made as (app, service, before, after)."""
        changes = []
        for policy in self.store.list():
            try:
                change = self._one(policy)
            except MyPaasError as exc:
                log.warning("autoscaling %s/%s: %s", policy.app, policy.service, exc.message)
                continue
            if change is not None:
                changes.append(change)
        return changes

    def _one(self, policy: Policy) -> tuple[str, str, int, int] | None:
        current = self._replicas(policy.app, policy.service)
        if current is None:
            return None
        now = self._clock()
        cpu = self.window.average(policy.app, policy.service, now)
        requests = None
        if policy.target_rps_per_replica is not None and self._requests is not None:
            requests = self._requests(policy.app, policy.service, policy.last_scaled_at)
        decision = decide(policy, current, cpu, now, requests)
        if decision is None or decision[0] == current:
            return None
        want, why = decision
        self._scale(policy.app, policy.service, want)
        self.store.scaled(policy.app, policy.service, now)
        self.window.reset(policy.app, policy.service)
        self._events.record(
            policy.app,
            "autoscaled",
            f"autoscaled {policy.service} {current}→{want}: {why}",
            {
                "service": policy.service,
                "from": current,
                "to": want,
                "cpu_pct": cpu,
                "rps": None if requests is None else round(requests.rps, 3),
                "ready": None if requests is None else requests.ready,
            },
        )
        return policy.app, policy.service, current, want
