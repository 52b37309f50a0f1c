"""Hosts short of memory or disk: checked over each host's own connection (SSH, or this machine),
paused in the Swarm while short (no new instances placed there) and let go again once they recover.

A host still short of memory ``evict_after_s`` after it was paused (or after its last eviction) has
one instance moved off, as a kubelet evicts a pod. This module decides which; the move itself is the
composer's (``evict``, handed over by the manager: it stops the instance's container on the host, and
Swarm, which places nothing on a paused host, starts the replacement on another one). Replicas of
services with more than one are taken first, the largest in memory first; nothing is moved while no
other host takes new instances. Each change is an event (of the platform, or of the evicted
instance's app).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mypaas.errors import MyPaasError
from mypaas.monitor.events import EventSink
from mypaas.monitor.remote import Connection
from mypaas.states import HostState

log = logging.getLogger("mypaas.pressure")

# One round trip: memory from /proc/meminfo, then the disk holding the engine's data.
CHECK = ["sh", "-c", "cat /proc/meminfo; df -P /var/lib/docker 2>/dev/null || df -P /"]


@dataclass(frozen=True)
class Evictable:
    """An instance running on a host, as eviction weighs it."""

    task: str  # the Swarm task id
    name: str
    app: str
    service: str
    mem_bytes: int  # from the monitor's last sample (0: not sampled yet)
    replicas: int  # running replicas of its service on all hosts
    movable: bool = True  # False: held to its host (a volume), or Swarm would not start it again
    constraints: tuple[str, ...] = ()  # its service's placement constraints


_CONSTRAINT = re.compile(r"^\s*(node\.(?:role|hostname|id|labels\.[^=!\s]+))\s*(==|!=)\s*(\S+)\s*$")


def fits(constraints: tuple[str, ...], host: dict[str, Any]) -> bool:
    """Whether Swarm may place a task with ``constraints`` on ``host`` (an entry of the host list).
    A constraint this does not understand fits nowhere: such an instance is left where it is."""
    for constraint in constraints:
        m = _CONSTRAINT.match(constraint)
        if m is None:
            return False
        key, op, want = m.groups()
        known = {
            "node.role": host.get("role"),
            "node.hostname": host.get("name"),
            "node.id": host.get("node_id"),
        }
        have = (
            known[key] if key in known else (host.get("labels") or {}).get(key.removeprefix("node.labels."))
        )
        if (have == want) != (op == "=="):
            return False
    return True


def pick_victim(candidates: list[Evictable]) -> Evictable | None:
    """The instance to move first: a replica of a service that has others, the largest first. One
    whose service cannot run elsewhere is never taken: stopping it would only stop it."""
    movable = [c for c in candidates if c.movable]
    if not movable:
        return None
    return max(movable, key=lambda c: (c.replicas > 1, c.mem_bytes, c.name))


@dataclass(frozen=True)
class Usage:
    mem_pct: float  # memory in use (not available), % of the total
    disk_pct: float  # the engine's disk, % used


def parse_usage(text: str) -> Usage:
    """Read ``CHECK``'s output; raise ValueError when it does not hold both figures."""
    mem: dict[str, int] = {}
    disk: float | None = None
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key in ("MemTotal", "MemAvailable"):
            mem[key] = int(rest.split()[0])
            continue
        fields = line.split()
        if len(fields) >= 6 and fields[4].endswith("%") and fields[4][:-1].isdigit():
            disk = float(fields[4][:-1])
    if "MemTotal" not in mem or "MemAvailable" not in mem or not mem["MemTotal"] or disk is None:
        raise ValueError("no MemTotal/MemAvailable or df figures")
    return Usage(mem_pct=100.0 * (1 - mem["MemAvailable"] / mem["MemTotal"]), disk_pct=disk)


class Eviction(Protocol):
    """How instances are moved off a host (the manager's: it weighs them, the composer moves them)."""

    def instances_on(self, node_id: str) -> list[Evictable]:
        """The running instances of a Swarm node."""
        ...

    def evict(self, host: str, victim: Evictable) -> None:
        """Move ``victim`` off ``host`` (Swarm starts its replacement elsewhere)."""
        ...


class HostControl(Protocol):
    def list(self) -> list[dict[str, Any]]: ...

    def machine(self, name: str) -> Connection: ...

    def pause_for_pressure(self, name: str, why: str) -> None: ...

    def activate(self, name: str) -> dict[str, Any]: ...


class HostPressure:
    """One ``check()`` looks at every ready (or pressured) host once."""

    relief = 5.0  # percentage points under the line before a host is let go again

    def __init__(
        self,
        hosts: HostControl,
        events: EventSink,
        *,
        mem_pct: float,
        disk_pct: float,
        evict_after_s: float = 60.0,
        eviction: Eviction | None = None,
        usage: Callable[[Connection], Usage] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hosts = hosts
        self._events = events
        self.mem_pct = mem_pct
        self.disk_pct = disk_pct
        self.evict_after_s = evict_after_s
        self._eviction = eviction  # None: hosts are only paused, nothing is moved
        self._usage = usage or _read_usage
        self._clock = clock
        self.last: dict[str, Usage] = {}
        self._waiting: dict[str, float] = {}  # paused host -> since when its next eviction is due

    def check(self) -> None:
        """Measure every host first, then pause or let go each one, then move instances off those still
        short of memory (onto hosts known, after this round, to take instances)."""
        listed = self._hosts.list()
        measured: list[tuple[dict[str, Any], Usage]] = []
        for host in listed:
            if (
                host.get("state") not in (HostState.READY, HostState.PRESSURE)
                or host.get("driver") == "unmanaged"
            ):
                continue
            name = str(host["name"])
            try:
                usage = self._measure(name)
            except (MyPaasError, ValueError) as exc:
                log.info("checking %s: %s", name, getattr(exc, "message", exc))
                continue
            self.last[name] = usage
            measured.append((host, usage))
        states = {str(h["name"]): str(h.get("state")) for h in listed}
        for host, usage in measured:
            name = str(host["name"])
            try:
                states[name] = self._act(name, states[name], usage)
            except MyPaasError as exc:
                log.warning("host %s: %s", name, exc.message)
        # hosts that take instances now ("ready": active, or let go a moment ago in this round)
        takers = [h for h in listed if states[str(h["name"])] == HostState.READY]
        for host, usage in measured:
            name = str(host["name"])
            if states[name] != HostState.PRESSURE or usage.mem_pct < self.mem_pct:
                self._waiting.pop(name, None)
                continue
            try:
                self._maybe_evict(
                    name, str(host.get("node_id") or ""), [h for h in takers if h["name"] != name]
                )
            except Exception:  # one host's trouble (a locked database, a failing command) spares the others
                log.exception("moving an instance off host %s", name)

    def _measure(self, name: str) -> Usage:
        machine = self._hosts.machine(name)
        try:
            return self._usage(machine)
        finally:
            machine.close()

    def _act(self, name: str, state: str, usage: Usage) -> str:
        """Pause or let go the host as its usage says; return its state now."""
        short = self._short(usage, margin=0.0)
        if state == HostState.READY and short:
            why = f"short of {short}: no new instances placed here until it recovers"
            self._hosts.pause_for_pressure(name, why)
            self._events.record(None, "host_pressure", f"host {name} is {why}", _data(name, usage))
            return HostState.PRESSURE
        if state == HostState.PRESSURE and not self._short(usage, margin=self.relief):
            self._hosts.activate(name)
            self._events.record(None, "host_relieved", f"host {name} recovered", _data(name, usage))
            return HostState.READY
        return state

    def _maybe_evict(self, name: str, node_id: str, takers: list[dict[str, Any]]) -> None:
        """Move one instance off a host still short of memory, once ``evict_after_s`` has passed, and
        only one that another host taking instances may run."""
        now = self._clock()
        since = self._waiting.setdefault(name, now)
        if self._eviction is None or not node_id or now - since < self.evict_after_s:
            return
        candidates = [
            c for c in self._eviction.instances_on(node_id) if any(fits(c.constraints, h) for h in takers)
        ]
        victim = pick_victim(candidates)
        if victim is None:
            log.info("host %s is short of memory but none of its instances can move elsewhere", name)
            return
        self._eviction.evict(name, victim)
        self._waiting[name] = now  # the next one only after the host had time to recover
        self._events.record(
            victim.app,
            "instance_evicted",
            f"{victim.name} moved off host {name}, which is short of memory",
            {"host": name, "instance": victim.name, "service": victim.service, "mem_bytes": victim.mem_bytes},
        )

    def _short(self, usage: Usage, margin: float) -> str:
        """What the host is short of (empty: nothing), with ``margin`` points of hysteresis."""
        short = []
        if usage.mem_pct >= self.mem_pct - margin:
            short.append(f"memory ({usage.mem_pct:.0f}% used)")
        if usage.disk_pct >= self.disk_pct - margin:
            short.append(f"disk ({usage.disk_pct:.0f}% used)")
        return " and ".join(short)


def _data(name: str, usage: Usage) -> dict[str, Any]:
    return {"host": name, "mem_pct": round(usage.mem_pct, 1), "disk_pct": usage.disk_pct}


def _read_usage(machine: Connection) -> Usage:
    result = machine.run(CHECK, timeout=15)
    return parse_usage(result.stdout)
