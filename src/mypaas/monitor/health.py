"""Instance readiness, which gates rollouts and routing.

An instance is ready when its container health check says healthy; without one, when an HTTP request
to its routed port gets an answer below 500; without a port, once it has been running ``min_running_s``.
Probes run in a background thread, fast while an instance is starting and slower once it is ready.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mypaas.domain import Instance, InstanceState

STARTING_PROBE_S = 0.05
READY_PROBE_S = 2.0
FAILS_TO_UNREADY = 2


@dataclass
class _Probe:
    address: str
    first_seen: float
    ready: bool = False
    checked: bool = False
    fails: int = 0
    next_at: float = 0.0
    busy: bool = False


def http_probe(address: str, timeout: float = 1.0) -> bool:
    """One GET / to ``host:port``; any answer below 500 counts as alive."""
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/", headers={"User-Agent": "mypaas-health/1", "Connection": "close"})
        return conn.getresponse().status < 500
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class HealthTracker:
    """Keeps a readiness verdict per instance id; calls ``on_change`` when a verdict flips."""

    def __init__(
        self,
        *,
        min_running_s: float,
        on_change: Callable[[], None],
        probe: Callable[[str], bool] = http_probe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_running_s = min_running_s
        self._on_change = on_change
        self._probe = probe
        self._clock = clock
        self._lock = threading.Lock()
        self._probes: dict[str, _Probe] = {}
        self._running_since: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self._wake = threading.Event()

    def observe(self, instances: Iterable[Instance]) -> None:
        """Take the newest list of instances: start probing new ones, forget vanished ones."""
        now = self._clock()
        seen: set[str] = set()
        with self._lock:
            for inst in instances:
                seen.add(inst.id)
                running = inst.state in (
                    InstanceState.STARTING,
                    InstanceState.HEALTHY,
                    InstanceState.UNHEALTHY,
                )
                if not running:
                    self._running_since.pop(inst.id, None)
                    self._probes.pop(inst.id, None)
                    continue
                self._running_since.setdefault(inst.id, now)
                if inst.address and not inst.has_healthcheck and inst.id not in self._probes:
                    self._probes[inst.id] = _Probe(address=inst.address, first_seen=now)
                    self._wake.set()
            for gone in set(self._probes) - seen:
                del self._probes[gone]
            for gone in set(self._running_since) - seen:
                del self._running_since[gone]

    def ready(self, inst: Instance) -> bool:
        if inst.state == InstanceState.HEALTHY:
            return True
        if inst.has_healthcheck or inst.state != InstanceState.STARTING:
            return False
        with self._lock:
            probe = self._probes.get(inst.id)
            if inst.address:
                return probe is not None and probe.ready
            since = self._running_since.get(inst.id)
        return since is not None and self._clock() - since >= self._min_running_s

    def unverified(self) -> int:
        """How many probed instances have no verdict yet."""
        with self._lock:
            return sum(1 for p in self._probes.values() if not p.checked)

    def next_deadline(self) -> float | None:
        """Seconds until a "running for N s" instance becomes ready (so the loop can wake for it)."""
        now = self._clock()
        with self._lock:
            waits = [since + self._min_running_s - now for since in self._running_since.values()]
        pending = [w for w in waits if w > 0]
        return min(pending) if pending else None

    def run(self, stop: threading.Event) -> None:
        """The probe loop: runs until ``stop`` is set."""
        while not stop.is_set():
            now = self._clock()
            with self._lock:
                due = [(iid, p) for iid, p in self._probes.items() if not p.busy and p.next_at <= now]
                for _, p in due:
                    p.busy = True
            for iid, p in due:
                self._pool.submit(self._check, iid, p)
            self._wake.wait(STARTING_PROBE_S)
            self._wake.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _check(self, iid: str, p: _Probe) -> None:
        ok = self._probe(p.address)
        changed = False
        with self._lock:
            p.busy = False
            p.checked = True
            if ok:
                p.fails = 0
                changed = not p.ready
                p.ready = True
            else:
                p.fails += 1
                if p.ready and p.fails >= FAILS_TO_UNREADY:
                    p.ready = False
                    changed = True
            p.next_at = self._clock() + (READY_PROBE_S if p.ready else STARTING_PROBE_S)
        if changed:
            self._on_change()
