"""Autoscaling: per-service policies (min/max replicas, a CPU target, cooldowns) and the evaluator that
turns the sampler's recent CPU figures into a new replica count.

The evaluator never touches the backend: it asks its ``scale`` callback (the manager's ``Apps.scale``,
the same service the API uses) for a new desired count, so the reconcile loop does the work.
Requests per second per replica can be stored in a policy, but the router gives no request figures yet
(Caddy 2.6 here), so only the CPU target acts.
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

from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.monitor.events import EventSink
from mypaas.monitor.metrics import Sample
from mypaas.monitor.tables import autoscale_policies as ap

log = logging.getLogger("mypaas.autoscale")

MAX_REPLICAS = 100
TOLERANCE = 0.1  # no change while the load is within 10 % of the target (no flapping)
MIN_POINTS = 2  # rounds of figures needed since the last change before deciding


@dataclass(frozen=True)
class Policy:
    app: str
    service: str
    min_replicas: int = 1
    max_replicas: int = 1
    target_cpu_pct: float | None = None  # average % of one core per replica
    target_rps_per_replica: float | None = None  # stored; no data source yet
    cooldown_up_s: float = 30.0
    cooldown_down_s: float = 120.0
    last_scaled_at: float = 0.0

    def check(self) -> None:
        if not 1 <= self.min_replicas <= MAX_REPLICAS:
            raise InvalidSpec(f"min must be between 1 and {MAX_REPLICAS}", field="min")
        if not self.min_replicas <= self.max_replicas <= MAX_REPLICAS:
            raise InvalidSpec(
                f"max must be between min ({self.min_replicas}) and {MAX_REPLICAS}", field="max"
            )
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


def decide(policy: Policy, current: int, cpu_pct: float | None, now: float) -> tuple[int, str] | None:
    """The new replica count and why, or None to leave it. Up proportionally, down one step."""
    if current < policy.min_replicas:
        return policy.min_replicas, f"below the minimum {policy.min_replicas}"
    if current > policy.max_replicas:
        return policy.max_replicas, f"above the maximum {policy.max_replicas}"
    target = policy.target_cpu_pct
    if target is None or cpu_pct is None or current <= 0:
        return None
    ratio = cpu_pct / target
    since = now - policy.last_scaled_at
    if ratio > 1 + TOLERANCE and current < policy.max_replicas and since >= policy.cooldown_up_s:
        want = min(policy.max_replicas, math.ceil(current * ratio))
        return want, f"cpu {cpu_pct:.0f}% > target {target:.0f}%"
    # step down when one replica fewer would still stay under the target (with the tolerance)
    down = current > policy.min_replicas and since >= policy.cooldown_down_s
    if down and current * cpu_pct / (current - 1) < target * (1 - TOLERANCE):
        return current - 1, f"cpu {cpu_pct:.0f}% < target {target:.0f}%"
    return None


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window = window
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
        decision = decide(policy, current, cpu, now)
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
            {"service": policy.service, "from": current, "to": want, "cpu_pct": cpu},
        )
        return policy.app, policy.service, current, want
