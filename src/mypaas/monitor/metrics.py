"""The metrics sampler: one thread reads each running instance's cgroup and network files every
``interval_s`` and keeps the newest figures in memory (for ``/metrics`` and ``mypaas top``) and in the
state store (see monitor/series.py).

Which instances to read comes from the reconcile loop's observed list (``track``); the pid and cgroup
folders of each are looked up once through the backend and cached, so sampling makes no engine call.
The instances it cannot read here (Swarm tasks on other hosts) go to an optional ``remote`` source
(monitor/remote.py reads them over each host's connection) and its samples join the round.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mypaas.domain import Instance
from mypaas.monitor import cgroups
from mypaas.monitor.cgroups import CgroupDirs, CgroupStats
from mypaas.states import InstanceState

log = logging.getLogger("mypaas.metrics")

_RUNNING = (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY)


class ProcessFacts(Protocol):
    """What the sampler needs to know of an instance's process (the composer's ProcessInfo)."""

    @property
    def pid(self) -> int: ...

    @property
    def restarts(self) -> int: ...


@dataclass(frozen=True)
class Sample:
    """The newest figures of one instance (or of the host: ``instance == "host"``)."""

    at: float
    app: str
    service: str
    instance: str  # the instance's name
    cpu_pct: float = 0.0  # share of one core over the last interval, in %
    cpu_seconds: float = 0.0  # since it started
    mem_bytes: int = 0
    mem_limit: int | None = None
    rx_bytes: int = 0
    tx_bytes: int = 0
    read_bytes: int = 0
    write_bytes: int = 0
    rx_rate: float = 0.0  # bytes per second over the last interval
    tx_rate: float = 0.0
    read_rate: float = 0.0
    write_rate: float = 0.0
    restarts: int = 0


class RemoteSource(Protocol):
    """Samples of tracked instances this machine cannot read (tasks on other hosts), by instance id."""

    def sample(self, instances: Sequence[Instance], now: float) -> dict[str, Sample]: ...

    def close(self) -> None: ...


@dataclass
class _Target:
    id: str
    name: str
    app: str
    service: str
    pid: int = 0
    dirs: CgroupDirs | None = None
    restarts: int = 0
    last: Sample | None = None
    resolved_at: float = 0.0


@dataclass
class _Reading:
    at: float
    stats: CgroupStats
    net: tuple[int, int]


@dataclass
class HostInfo:
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    cpu: cgroups.HostCpu | None = None
    net: tuple[int, int] = (0, 0)


class Sampler:
    """Samples every tracked instance and the host; ``on_sample`` receives each round's samples."""

    def __init__(
        self,
        *,
        resolve: Callable[[str], ProcessFacts | None],
        interval_s: float = 5.0,
        proc: Path = Path("/proc"),
        root: Path = Path("/sys/fs/cgroup"),
        clock: Callable[[], float] = time.time,
        on_sample: Callable[[list[Sample]], None] | None = None,
        remote: RemoteSource | None = None,
    ) -> None:
        self._resolve = resolve
        self.remote = remote
        self.interval_s = interval_s
        self._proc = proc
        self._root = root
        self._version = cgroups.version(root)
        self._clock = clock
        self._on_sample = on_sample
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._instances: dict[str, Instance] = {}  # the running ones, for the remote source
        self._host = HostInfo()
        self.latest: dict[str, Sample] = {}  # instance id (or "host") -> newest sample
        self.rounds = 0

    def track(self, instances: Iterable[Instance]) -> None:
        """Sample these instances from now on (the running ones); forget the others. Cheap: no I/O."""
        with self._lock:
            keep: dict[str, _Target] = {}
            running: dict[str, Instance] = {}
            for inst in instances:
                if inst.state not in _RUNNING:
                    continue
                running[inst.id] = inst
                keep[inst.id] = self._targets.get(inst.id) or _Target(
                    id=inst.id, name=inst.name, app=inst.app, service=inst.service
                )
            self._targets, self._instances = keep, running

    def tracked(self) -> list[str]:
        """The ids of the instances sampled from now on."""
        with self._lock:
            return list(self._targets)

    def sample_once(self) -> list[Sample]:
        """One round over every tracked instance and the host; the remote source gets the instances
        not read here."""
        now = self._clock()
        with self._lock:
            targets = list(self._targets.values())
            instances = dict(self._instances)
        samples: list[Sample] = []
        elsewhere: list[Instance] = []
        for target in targets:
            sample = self._sample(target, now)
            if sample is not None:
                samples.append(sample)
            elif target.id in instances:
                elsewhere.append(instances[target.id])
        remote = self._sample_remote(elsewhere, now)
        for target in targets:
            if target.id in remote:
                target.last = remote[target.id]
                samples.append(target.last)
        samples.append(self._sample_host(now))
        self.latest = {"host": samples[-1], **{t.id: t.last for t in targets if t.last is not None}}
        self.rounds += 1
        if self._on_sample is not None:
            self._on_sample(samples)
        return samples

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.sample_once()
                except Exception:  # a bug must not stop sampling for good
                    log.exception("sampling failed")
                stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        finally:
            if self.remote is not None:
                self.remote.close()

    def _sample_remote(self, instances: list[Instance], now: float) -> dict[str, Sample]:
        if self.remote is None or not instances:
            return {}
        try:
            return self.remote.sample(instances, now)
        except Exception:  # the other hosts' figures must not stop this host's
            log.exception("sampling other hosts failed")
            return {}

    # -- one instance ---------------------------------------------------------------------------

    def _locate(self, target: _Target, now: float) -> bool:
        """Find the pid and cgroup folders (an engine call, once per start of the instance)."""
        if target.dirs is not None:
            return True
        if now - target.resolved_at < self.interval_s * 2 and target.resolved_at:
            return False  # looked up moments ago and not running: do not ask the engine every round
        target.resolved_at = now
        try:
            info = self._resolve(target.id)
        except Exception:  # the engine is unreachable: try again later
            return False
        if info is None or info.pid <= 0:
            return False
        try:
            target.dirs = cgroups.dirs_from(
                (self._proc / str(info.pid) / "cgroup").read_text(), self._root, self._version
            )
        except OSError:
            return False
        target.pid, target.restarts, target.last = info.pid, info.restarts, None
        return True

    def _sample(self, target: _Target, now: float) -> Sample | None:
        if not self._locate(target, now):
            return None
        assert target.dirs is not None
        try:
            reading = _Reading(
                at=now,
                stats=cgroups.read_stats(target.dirs),
                net=cgroups.net_bytes(target.pid, proc=self._proc),
            )
        except (OSError, ValueError):  # it stopped or restarted: look it up again next round
            target.dirs = None
            target.resolved_at = 0.0
            return None
        last = target.last
        span = reading.at - last.at if last is not None and reading.at > last.at else 0.0
        identity = Sample(
            at=now, app=target.app, service=target.service, instance=target.name, restarts=target.restarts
        )
        target.last = figures(identity, reading.stats, reading.net, last, span)
        return target.last

    # -- the host -------------------------------------------------------------------------------

    def _sample_host(self, now: float) -> Sample:
        host = self._host
        last = self.latest.get("host")
        try:
            cpu = cgroups.host_cpu(proc=self._proc)
            used, total = cgroups.host_memory(proc=self._proc)
            net = cgroups.parse_net_dev((self._proc / "net" / "dev").read_text())
        except (OSError, ValueError, IndexError):
            return Sample(at=now, app="", service="", instance="host")
        pct = 0.0
        if host.cpu is not None and cpu.total > host.cpu.total:
            pct = 100.0 * host.cpus * (cpu.busy - host.cpu.busy) / (cpu.total - host.cpu.total)
        span = now - last.at if last is not None and now > last.at else 0.0
        sample = Sample(
            at=now,
            app="",
            service="",
            instance="host",
            cpu_pct=round(pct, 2),
            cpu_seconds=cpu.busy / (os.sysconf("SC_CLK_TCK") or 100),
            mem_bytes=used,
            mem_limit=total,
            rx_bytes=net[0],
            tx_bytes=net[1],
            rx_rate=(net[0] - host.net[0]) / span if span else 0.0,
            tx_rate=(net[1] - host.net[1]) / span if span else 0.0,
        )
        host.cpu, host.net = cpu, net
        return sample


def figures(
    identity: Sample, stats: CgroupStats, net: tuple[int, int], last: Sample | None, span: float
) -> Sample:
    """``identity`` (time, names, restarts) with the figures of one reading of an instance's files; the
    rates are against ``last`` (the previous sample of the same process), ``span`` seconds before (0:
    no rates)."""

    def rate(now: float, before: float) -> float:
        return max(0.0, (now - before) / span) if span > 0 else 0.0

    cpu_s = stats.cpu_ns / 1e9
    return dataclasses.replace(
        identity,
        cpu_pct=round(100.0 * rate(cpu_s, last.cpu_seconds), 2) if last else 0.0,
        cpu_seconds=cpu_s,
        mem_bytes=stats.mem_bytes,
        mem_limit=stats.mem_limit,
        rx_bytes=net[0],
        tx_bytes=net[1],
        read_bytes=stats.read_bytes,
        write_bytes=stats.write_bytes,
        rx_rate=rate(net[0], last.rx_bytes) if last else 0.0,
        tx_rate=rate(net[1], last.tx_bytes) if last else 0.0,
        read_rate=rate(stats.read_bytes, last.read_bytes) if last else 0.0,
        write_rate=rate(stats.write_bytes, last.write_bytes) if last else 0.0,
    )
