"""Hosts short of memory or disk: parsing the check's output and pausing/letting go (with fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from mypaas.errors import BackendError
from mypaas.iaas.base import CommandResult
from mypaas.manager.pressure import CHECK, HostPressure, Usage, parse_usage

MEMINFO = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n"
DF = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/sda1 100 42 58 42% /\n"


def test_parse_usage() -> None:
    usage = parse_usage(MEMINFO + DF)
    assert usage == Usage(mem_pct=75.0, disk_pct=42.0)


@pytest.mark.parametrize("text", ["", MEMINFO, DF, "MemTotal: 0 kB\nMemAvailable: 0 kB\n" + DF])
def test_parse_usage_refuses_partial_output(text: str) -> None:
    with pytest.raises(ValueError):
        parse_usage(text)


class FakeMachine:
    address = "10.0.0.2"
    local_address = "10.0.0.1"

    def __init__(self, out: str) -> None:
        self.out = out
        self.ran: list[list[str]] = []
        self.closed = False

    def run(self, argv: Any, *, input: bytes | None = None, timeout: float = 120.0) -> CommandResult:
        self.ran.append(list(argv))
        return CommandResult(0, self.out, "")

    def close(self) -> None:
        self.closed = True


class FakeHosts:
    def __init__(self, hosts: dict[str, str], out: dict[str, str]) -> None:
        self.hosts = hosts  # name -> state
        self.out = out
        self.machines: list[FakeMachine] = []
        self.calls: list[tuple[str, str]] = []

    def list(self) -> list[dict[str, Any]]:
        return [{"name": n, "state": st, "driver": "ssh"} for n, st in self.hosts.items()]

    def machine(self, name: str) -> FakeMachine:
        if name not in self.out:
            raise BackendError(f"cannot reach {name}")
        m = FakeMachine(self.out[name])
        self.machines.append(m)
        return m

    def pause_for_pressure(self, name: str, why: str) -> None:
        self.calls.append(("pause", why))
        self.hosts[name] = "pressure"

    def activate(self, name: str) -> dict[str, Any]:
        self.calls.append(("activate", name))
        self.hosts[name] = "ready"
        return {}


class Events:
    def __init__(self) -> None:
        self.kinds: list[tuple[str, str]] = []

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.kinds.append((kind, message))


def usage_text(mem_pct: float, disk_pct: int) -> str:
    available = int(1000 * (1 - mem_pct / 100))
    return f"MemTotal: 1000 kB\nMemAvailable: {available} kB\n/dev/sda1 100 1 1 {disk_pct}% /\n"


def test_a_host_short_of_memory_is_paused_then_let_go_with_hysteresis() -> None:
    hosts = FakeHosts({"h1": "ready"}, {"h1": usage_text(97, 10)})
    events = Events()
    pressure = HostPressure(hosts, events, mem_pct=95, disk_pct=95, relief=5)
    pressure.check()
    assert hosts.hosts["h1"] == "pressure"
    assert hosts.calls[0][0] == "pause" and "memory (97% used)" in hosts.calls[0][1]
    assert events.kinds[0][0] == "host_pressure"
    assert hosts.machines[0].ran == [CHECK] and hosts.machines[0].closed
    hosts.out["h1"] = usage_text(92, 10)  # under the line, but not by the relief margin: stays
    pressure.check()
    assert hosts.hosts["h1"] == "pressure" and len(hosts.calls) == 1
    hosts.out["h1"] = usage_text(80, 10)
    pressure.check()
    assert hosts.hosts["h1"] == "ready" and hosts.calls[-1] == ("activate", "h1")
    assert [k for k, _ in events.kinds] == ["host_pressure", "host_relieved"]


def test_disk_counts_too_and_unreachable_or_busy_hosts_are_skipped() -> None:
    hosts = FakeHosts(
        {"full": "ready", "gone": "ready", "down": "down", "drained": "drained"},
        {"full": usage_text(10, 99), "down": usage_text(99, 99), "drained": usage_text(99, 99)},
    )
    events = Events()
    HostPressure(hosts, events, mem_pct=95, disk_pct=95).check()
    assert hosts.hosts == {"full": "pressure", "gone": "ready", "down": "down", "drained": "drained"}
    assert "disk (99% used)" in hosts.calls[0][1]
    assert len(events.kinds) == 1
