"""Hosts short of memory or disk: parsing the check's output and pausing/letting go (with fakes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mypaas.composer.hostside import stop_task_command
from mypaas.errors import BackendError
from mypaas.iaas.base import CommandResult
from mypaas.manager.evictable import HostEviction
from mypaas.manager.reconcile.view import LoopView
from mypaas.monitor.pressure import (
    CHECK,
    Evictable,
    HostPressure,
    Usage,
    fits,
    parse_usage,
    pick_victim,
)

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
        return [
            {
                "name": n,
                "state": st,
                "driver": "ssh",
                "availability": "active" if st == "ready" else "pause",
                "node_id": f"node-{n}",
                "role": "worker",
                "labels": {"zone": "east" if n == "h2" else "west"},
            }
            for n, st in self.hosts.items()
        ]

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
    pressure = HostPressure(hosts, events, mem_pct=95, disk_pct=95)
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


TASK = "a" * 25


def candidates(*specs: tuple[str, int, int]) -> list[Evictable]:
    return [
        Evictable(
            task=chr(ord("a") + i) * 25,
            name=name,
            app="shop",
            service=name.split(".")[0],
            mem_bytes=mem,
            replicas=n,
        )
        for i, (name, mem, n) in enumerate(specs)
    ]


def test_pick_victim_prefers_services_with_other_replicas_then_the_largest() -> None:
    assert pick_victim([]) is None
    found = candidates(("db.1", 900, 1), ("web.1", 100, 3), ("web.2", 300, 3))
    assert pick_victim(found) == found[2]
    assert pick_victim(found[:1]) == found[0]  # a single replica goes too when nothing else is there
    held = Evictable(
        task=TASK, name="db.1", app="shop", service="db", mem_bytes=10**9, replicas=3, movable=False
    )
    assert pick_victim([held, found[1]]) == found[1]
    assert pick_victim([held]) is None  # pinned to its host (a volume): stopping it would not move it


def test_the_stop_command_finds_the_task_container_and_refuses_odd_ids() -> None:
    argv = stop_task_command(TASK, 10)
    assert argv[:2] == ["sh", "-c"] and f"label=com.docker.swarm.task.id={TASK}" in argv[2]
    assert "docker stop --time 10" in argv[2]
    with pytest.raises(ValueError):
        stop_task_command("x; rm -rf /", 10)


class FakeEviction:
    """The manager's side of eviction: what a node runs, and the moves asked for."""

    def __init__(self, on: Callable[[str], list[Evictable]]) -> None:
        self.on = on
        self.asked: list[str] = []
        self.evicted: list[tuple[str, Evictable]] = []

    def instances_on(self, node_id: str) -> list[Evictable]:
        self.asked.append(node_id)
        return self.on(node_id)

    def evict(self, host: str, victim: Evictable) -> None:
        self.evicted.append((host, victim))


def test_the_manager_moves_an_instance_by_stopping_its_container_on_its_host() -> None:
    ran: list[tuple[str, list[str], str]] = []

    class Shell:
        def run(self, name: str, argv: Any, *, what: str, timeout: float) -> None:
            ran.append((name, list(argv), what))

    victim = candidates(("web.1", 100, 2))[0]
    HostEviction(view=LoopView(), latest=dict, sessions=None, hosts=Shell()).evict("h1", victim)  # type: ignore[arg-type]
    [(host, argv, what)] = ran
    assert host == "h1" and argv == stop_task_command(victim.task, 10) and what == "stopping web.1"


def test_a_host_still_short_of_memory_has_one_instance_moved_off_per_wait() -> None:
    hosts = FakeHosts({"h1": "ready", "h2": "ready"}, {"h1": usage_text(97, 10), "h2": usage_text(20, 10)})
    events = Events()
    now = [0.0]
    on_h1 = candidates(("web.1", 100, 2), ("web.2", 500, 2))
    eviction = FakeEviction(lambda node: list(on_h1))
    pressure = HostPressure(
        hosts,
        events,
        mem_pct=95,
        disk_pct=95,
        evict_after_s=30,
        eviction=eviction,
        clock=lambda: now[0],
    )
    pressure.check()  # paused now; the wait starts
    assert hosts.hosts["h1"] == "pressure" and eviction.asked == []
    now[0] = 29.0
    pressure.check()
    assert not any(k == "instance_evicted" for k, _ in events.kinds)
    now[0] = 31.0
    pressure.check()
    assert eviction.asked == ["node-h1"]
    assert eviction.evicted == [("h1", on_h1[1])]  # the larger one
    assert ("instance_evicted", "web.2 moved off host h1, which is short of memory") in events.kinds
    on_h1.pop()
    now[0] = 40.0
    pressure.check()  # the next eviction waits again
    assert [k for k, _ in events.kinds].count("instance_evicted") == 1
    hosts.out["h1"] = usage_text(50, 10)
    now[0] = 80.0
    pressure.check()  # recovered: let go, nothing more moved
    assert hosts.hosts["h1"] == "ready"
    assert [k for k, _ in events.kinds].count("instance_evicted") == 1


def test_nothing_is_moved_while_no_other_host_takes_instances_or_only_disk_is_short() -> None:
    hosts = FakeHosts({"h1": "ready", "h2": "ready"}, {"h1": usage_text(97, 10), "h2": usage_text(96, 10)})
    events = Events()
    now = [0.0]
    pressure = HostPressure(
        hosts,
        events,
        mem_pct=95,
        disk_pct=95,
        evict_after_s=1,
        eviction=FakeEviction(lambda node: candidates(("web.1", 100, 2))),
        clock=lambda: now[0],
    )
    pressure.check()
    now[0] = 5.0
    pressure.check()  # both paused: moving an instance would leave it nowhere to go
    assert hosts.hosts == {"h1": "pressure", "h2": "pressure"}
    assert not any(k == "instance_evicted" for k, _ in events.kinds)

    hosts.out = {"h1": usage_text(10, 99), "h2": usage_text(10, 10)}
    hosts.hosts = {"h1": "pressure", "h2": "ready"}
    now[0] = 50.0
    pressure.check()  # short of disk only: moving an instance would not free the disk
    assert not any(k == "instance_evicted" for k, _ in events.kinds)


def test_fits_reads_the_constraints_swarm_would_apply() -> None:
    host = {"name": "h2", "role": "worker", "node_id": "n2", "labels": {"zone": "east"}}
    assert fits((), host)
    assert fits(("node.role==worker", "node.labels.zone == east"), host)
    assert not fits(("node.labels.zone==west",), host)
    assert fits(("node.labels.disk!=ssd", "node.hostname!=h1"), host)
    assert not fits(("node.id==n1",), host)
    assert not fits(("engine.labels.x==y",), host)  # not understood: assume it fits nowhere


def test_only_an_instance_another_taking_host_may_run_is_moved() -> None:
    hosts = FakeHosts({"h1": "pressure", "h2": "ready"}, {"h1": usage_text(97, 10), "h2": usage_text(20, 10)})
    events = Events()
    west = Evictable(
        task="b" * 25,
        name="web.1",
        app="shop",
        service="web",
        mem_bytes=900,
        replicas=2,
        constraints=("node.labels.zone==west",),
    )
    stuck = Evictable(
        task="c" * 25, name="job.1", app="shop", service="job", mem_bytes=800, replicas=2, movable=False
    )
    east = Evictable(
        task="d" * 25,
        name="api.1",
        app="shop",
        service="api",
        mem_bytes=100,
        replicas=2,
        constraints=("node.labels.zone==east",),
    )
    pressure = HostPressure(
        hosts,
        events,
        mem_pct=95,
        disk_pct=95,
        evict_after_s=0,
        eviction=FakeEviction(lambda node: [west, stuck, east]),
    )
    pressure.check()
    moved = [m for _, m in events.kinds if "moved off" in m]
    assert moved == ["api.1 moved off host h1, which is short of memory"]  # the only one h2 may run
