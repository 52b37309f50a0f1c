"""Hosts short of memory or disk: checked over each host's own connection (SSH, or this machine),
paused in the Swarm while short (no new instances placed there; the running ones stay) and let go
again once they recover. Each change is an event of the platform."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mypaas.errors import MyPaasError
from mypaas.iaas.base import Machine
from mypaas.monitor.events import EventSink

log = logging.getLogger("mypaas.pressure")

# One round trip: memory from /proc/meminfo, then the disk holding the engine's data.
CHECK = ["sh", "-c", "cat /proc/meminfo; df -P /var/lib/docker 2>/dev/null || df -P /"]


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


class HostControl(Protocol):
    def list(self) -> list[dict[str, Any]]: ...

    def machine(self, name: str) -> Machine: ...

    def pause_for_pressure(self, name: str, why: str) -> None: ...

    def activate(self, name: str) -> dict[str, Any]: ...


class HostPressure:
    """One ``check()`` looks at every ready (or pressured) host once."""

    def __init__(
        self,
        hosts: HostControl,
        events: EventSink,
        *,
        mem_pct: float,
        disk_pct: float,
        relief: float = 5.0,
        usage: Callable[[Machine], Usage] | None = None,
    ) -> None:
        self._hosts = hosts
        self._events = events
        self.mem_pct = mem_pct
        self.disk_pct = disk_pct
        self.relief = relief  # percentage points under the line before a host is let go again
        self._usage = usage or _read_usage
        self.last: dict[str, Usage] = {}

    def check(self) -> None:
        for host in self._hosts.list():
            if host.get("state") not in ("ready", "pressure") or host.get("driver") == "unmanaged":
                continue
            name = str(host["name"])
            try:
                usage = self._measure(name)
            except (MyPaasError, ValueError) as exc:
                log.info("checking %s: %s", name, getattr(exc, "message", exc))
                continue
            self.last[name] = usage
            try:
                self._act(name, str(host["state"]), usage)
            except MyPaasError as exc:
                log.warning("host %s: %s", name, exc.message)

    def _measure(self, name: str) -> Usage:
        machine = self._hosts.machine(name)
        try:
            return self._usage(machine)
        finally:
            machine.close()

    def _act(self, name: str, state: str, usage: Usage) -> None:
        short = self._short(usage, margin=0.0)
        if state == "ready" and short:
            why = f"short of {short}: no new instances placed here until it recovers"
            self._hosts.pause_for_pressure(name, why)
            self._events.record(None, "host_pressure", f"host {name} is {why}", _data(name, usage))
        elif state == "pressure" and not self._short(usage, margin=self.relief):
            self._hosts.activate(name)
            self._events.record(None, "host_relieved", f"host {name} recovered", _data(name, usage))

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


def _read_usage(machine: Machine) -> Usage:
    result = machine.run(CHECK, timeout=15)
    return parse_usage(result.stdout)
