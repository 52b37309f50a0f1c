"""Instance readiness, which gates rollouts and routing.

An instance is ready when its container health check says healthy; else when its service's probe
(``x-mypaas-probe``: an HTTP path and expected status, or a TCP port) passes; else when an HTTP request
to its routed port gets an answer below 500; without a port, once it has been running ``min_running_s``.
Probes run in a background thread, fast while an instance is starting and at the probe's interval once
it is ready. An instance that was ready and keeps failing is reported as *failed*, to be replaced,
with a back-off per service so that a broken service is not replaced in a tight loop.
HTTP probes say who they are (``User-Agent: MyPaas-probe/<version>``), so that the lines they leave in
an app's access log can be told apart (``logs`` leaves them out unless asked).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mypaas import __version__
from mypaas.domain import Instance, ProbeSpec
from mypaas.states import InstanceState

STARTING_PROBE_S = 0.05
READY_PROBE_S = 2.0
FAILS_TO_UNREADY = 2
REPLACE_AFTER_S = 10.0  # unhealthy this long (after having been ready): replace the instance
MAX_BACKOFF_S = 300.0
PROBE_AGENT_NAME = "MyPaas-probe"
PROBE_AGENT = f"{PROBE_AGENT_NAME}/{__version__}"  # the User-Agent of every HTTP probe


@dataclass
class _Probe:
    address: str
    first_seen: float
    spec: ProbeSpec | None = None
    ready: bool = False
    checked: bool = False
    fails: int = 0
    next_at: float = 0.0
    busy: bool = False
    was_ready: bool = False
    unready_since: float | None = None
    error: str | None = None  # why the last probe failed (None: it passed, or none ran yet)


def probe_address(inst: Instance, spec: ProbeSpec | None) -> str | None:
    """Where ``inst``'s probe connects (host:port). A Swarm task is routed at its node's address and the
    port Swarm published; a probe on a port of its own (``x-mypaas-probe: {tcp: 5432}``) must reach the
    container, not that node (where it would find the host's sshd, or scan the host's ports): it goes to
    the task's own address on the app's network, and finds nothing (not ready) when there is none."""
    if spec is not None and spec.port and inst.node is not None:
        return f"{inst.ip}:{spec.port}" if inst.ip else None
    return inst.address


def check_probe(spec: ProbeSpec, address: str) -> bool:
    """Run one configured probe against an instance at ``address`` (host:routed port)."""
    return probe_error(spec, address) is None


def probe_error(spec: ProbeSpec, address: str) -> str | None:
    """Run one configured probe; None when it passed, else what went wrong ("GET / -> HTTP 500")."""
    host, _, port = address.rpartition(":")
    if spec.kind == "tcp":
        target = spec.port or int(port)
        try:
            with socket.create_connection((host, target), timeout=spec.timeout_s):
                return None
        except OSError as exc:
            return f"TCP {target} -> {_reason(exc)}"
    return http_error(
        f"{host}:{spec.port or port}", timeout=spec.timeout_s, path=spec.path, status=spec.status
    )


def http_probe(address: str, timeout: float = 1.0, path: str = "/", status: int | None = None) -> bool:
    """One GET to ``host:port``; ``status`` expected, else any answer below 500 counts as alive."""
    return http_error(address, timeout, path, status) is None


def http_error(address: str, timeout: float = 1.0, path: str = "/", status: int | None = None) -> str | None:
    """As ``http_probe``: None when alive, else what went wrong ("GET / -> connection refused")."""
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": PROBE_AGENT, "Connection": "close"})
        got = conn.getresponse().status
        ok = got == status if status is not None else got < 500
        return None if ok else f"GET {path} -> HTTP {got}" + (f" (expected {status})" if status else "")
    except (OSError, http.client.HTTPException) as exc:
        return f"GET {path} -> {_reason(exc)}"
    finally:
        conn.close()


def _reason(exc: Exception) -> str:
    """A probe's failure in a few words: "connection refused", "timed out"."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


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
        self._replaced: dict[tuple[str, str], tuple[int, float]] = {}  # (app, service) -> (count, last)

    def observe(
        self,
        instances: Iterable[Instance],
        probes: Callable[[Instance], ProbeSpec | None] = lambda _inst: None,
    ) -> None:
        """Take the newest list of instances: start probing new ones, forget vanished ones."""
        now = self._clock()
        seen: set[str] = set()
        with self._lock:
            for inst in instances:
                seen.add(inst.id)
                self._follow(inst, probes, now)
            for gone in set(self._probes) - seen:
                del self._probes[gone]
            for gone in set(self._running_since) - seen:
                del self._running_since[gone]

    def started(self, inst: Instance, probe: ProbeSpec | None) -> None:
        """An instance just made and started: probe it at once, not only once a listing shows it (a
        new release's first verdict then comes while the loop is still on its pass)."""
        with self._lock:
            self._follow(inst, lambda _inst: probe, self._clock())

    def _follow(self, inst: Instance, probes: Callable[[Instance], ProbeSpec | None], now: float) -> None:
        """Start following ``inst`` if it runs and is new (a probe when it has an address and no health
        check of its own); forget it if it stopped. Under the lock."""
        if inst.state not in (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY):
            self._running_since.pop(inst.id, None)
            self._probes.pop(inst.id, None)
            return
        self._running_since.setdefault(inst.id, now)
        if inst.address and not inst.has_healthcheck and inst.id not in self._probes:
            spec = probes(inst)
            address = probe_address(inst, spec) or ""
            self._probes[inst.id] = _Probe(address=address, first_seen=now, spec=spec)
            self._wake.set()

    def ready(self, inst: Instance) -> bool:
        if inst.routed and not inst.address:
            return False  # a Swarm task whose published port is not known yet: no route reaches it
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

    def failed(self, inst: Instance) -> bool:
        """Was ready, has failed its probe for a while: replace it (with a back-off per service)."""
        with self._lock:
            p = self._probes.get(inst.id)
            if p is None or not p.was_ready or p.ready or p.unready_since is None:
                return False
            count, _ = self._replaced.get((inst.app, inst.service), (0, 0.0))
            wait = min(REPLACE_AFTER_S * 2.0**count, MAX_BACKOFF_S)
            return self._clock() - p.unready_since >= wait

    def replaced(self, inst: Instance) -> None:
        """Count a replacement of a failed instance (the back-off doubles; it resets after quiet)."""
        key = (inst.app, inst.service)
        now = self._clock()
        with self._lock:
            count, last = self._replaced.get(key, (0, 0.0))
            self._replaced[key] = (0 if now - last > MAX_BACKOFF_S * 2 else count + 1, now)

    def last_error(self, inst: Instance) -> str | None:
        """Why the instance's last probe failed (None: it passed, none ran, or it is not probed)."""
        with self._lock:
            p = self._probes.get(inst.id)
            return p.error if p is not None and p.checked else None

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

    def check_all(self) -> None:
        """Probe every tracked instance once now, in this thread (the probe loop does it on its own
        schedule; a test or a one-off pass that wants verdicts at once calls this)."""
        with self._lock:
            probes = [(iid, p) for iid, p in self._probes.items() if not p.busy]
            for _, p in probes:
                p.busy = True
        for iid, p in probes:
            self._check(iid, p)

    def _run_probe(self, p: _Probe) -> str | None:
        """One probe of ``p``: None when it passed, else why it failed."""
        if p.spec is not None:
            if not p.address:
                return "no address on the app's network to probe yet"
            return probe_error(p.spec, p.address)
        if self._probe is http_probe:  # the default: it can say why
            return http_error(p.address)
        return None if self._probe(p.address) else "the probe failed"

    def _check(self, iid: str, p: _Probe) -> None:
        error = self._run_probe(p)
        ok = error is None
        changed = False
        retries = p.spec.retries if p.spec is not None else FAILS_TO_UNREADY
        interval = p.spec.interval_s if p.spec is not None else READY_PROBE_S
        with self._lock:
            p.busy = False
            p.checked = True
            p.error = error
            if ok:
                p.fails = 0
                changed = not p.ready
                p.ready = p.was_ready = True
                p.unready_since = None
            else:
                p.fails += 1
                if p.ready and p.fails >= retries:
                    p.ready = False
                    p.unready_since = self._clock()
                    changed = True
            # after a failure a ready instance is re-checked at once, so it leaves the router quickly
            fast = not p.ready or p.fails
            p.next_at = self._clock() + (
                STARTING_PROBE_S * 4
                if fast and p.was_ready
                else STARTING_PROBE_S
                if not p.ready
                else interval
            )
        if changed:
            self._on_change()
