"""The figures of instances on other hosts: the one script run per host (here with a fake ``docker`` on
fixture files), its output parsed into the local sampler's figures, rates between rounds, and the hosts
read in parallel over kept connections, a failing or slow one skipped."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mypaas.composer.hostside import LIST_TASKS
from mypaas.domain import Instance, ProcessInfo
from mypaas.errors import BackendError
from mypaas.monitor import cgroups
from mypaas.monitor.metrics import Sample, Sampler
from mypaas.monitor.remote import HostReading, Rates, RemoteSampler, parse, script
from mypaas.monitor.service import nodes_to_hosts
from mypaas.states import InstanceState

FIXTURES = Path(__file__).parent / "fixtures" / "cgroups"

FAKE_DOCKER = """#!/bin/sh
# ps: three containers; inspect: c2 vanished meanwhile, c3 stopped (pid 0)
case $1 in
ps) [ "$5" = "label=mypaas.platform=p1" ] && printf 'c1\\nc2\\nc3\\n';;
inspect) echo "4242 2 task1"; echo "0 0 task3"; echo "Error: No such container: c2" >&2; exit 1;;
esac
"""


def _run_script(tmp_path: Path, version: str, gone: bool = False) -> subprocess.CompletedProcess[str]:
    root = tmp_path / version
    shutil.copytree(FIXTURES / version, root)
    if gone:
        (root / "proc" / "4242" / "cgroup").unlink()
    (root / "proc" / "uptime").write_text("1234.56 4000.00\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", "-c", script(LIST_TASKS), "sh", "p1", str(root / "sys"), str(root / "proc")],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
        check=False,
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_script_reads_what_the_local_sampler_reads(tmp_path: Path, version: str) -> None:
    done = _run_script(tmp_path, version)
    assert done.returncode == 0, done.stderr
    reading = parse(done.stdout)
    assert reading.version == int(version[1])
    assert reading.uptime == 1234.56
    assert list(reading.tasks) == ["task1"]  # c2 vanished between ps and inspect, c3 stopped
    task = reading.tasks["task1"]
    assert (task.pid, task.restarts) == (4242, 2)
    root = tmp_path / version
    local = cgroups.read_stats(cgroups.cgroup_dirs(4242, proc=root / "proc", root=root / "sys"))
    assert task.stats == local
    assert task.net == cgroups.net_bytes(4242, proc=root / "proc")


def test_the_script_finds_the_cgroup_under_a_custom_parent(tmp_path: Path) -> None:
    done = _run_script(tmp_path, "v1")
    files = [line[2:] for line in done.stdout.splitlines() if line.startswith("F ")]
    assert str(tmp_path / "v1" / "sys" / "memory" / "custom" / "abc" / "memory.stat") in files
    assert parse(done.stdout).tasks["task1"].stats.cpu_ns == 50131966


def test_the_script_skips_a_container_whose_cgroup_is_gone(tmp_path: Path) -> None:
    """Its /proc/<pid>/cgroup is missing (it exited after inspect): the script must not read the
    root cgroup's files in its stead."""
    done = _run_script(tmp_path, "v2", gone=True)
    assert done.returncode == 0
    assert "T " not in done.stdout and parse(done.stdout).tasks == {}


V2_OUTPUT = """H 2
garbage line
T aaa 10 0
F /sys/fs/cgroup/a b:c/cpu.stat
F /sys/fs/cgroup/a b:c/memory.current
F /sys/fs/cgroup/a b:c/memory.stat
F /sys/fs/cgroup/a b:c/memory.max
F /sys/fs/cgroup/a b:c/io.stat
F /proc/10/net/dev
T bbb 11 0
F /sys/fs/cgroup/b/cpu.stat
F /sys/fs/cgroup/b/memory.current
F /sys/fs/cgroup/b/memory.stat
F /sys/fs/cgroup/b/memory.max
F /sys/fs/cgroup/b/io.stat
F /proc/11/net/dev
T ccc 12 0
F /sys/fs/cgroup/c/cpu.stat
F /sys/fs/cgroup/c/memory.current
F /sys/fs/cgroup/c/memory.stat
F /sys/fs/cgroup/c/memory.max
F /proc/12/net/dev
T ddd notapid 0
F /sys/fs/cgroup/d/memory.current
Z 1 2 3
U 100.50
==> /sys/fs/cgroup/a b:c/cpu.stat <==
usage_usec 2000000

==> /sys/fs/cgroup/a b:c/memory.current <==
3000

==> /sys/fs/cgroup/a b:c/memory.stat <==
inactive_file 1000

==> /sys/fs/cgroup/a b:c/memory.max <==
max

==> /sys/fs/cgroup/a b:c/io.stat <==

==> /proc/10/net/dev <==
Inter-|   Receive
 face |bytes
    lo: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0
  eth0: 700 0 0 0 0 0 0 0 900 0 0 0 0 0 0 0

==> /sys/fs/cgroup/b/cpu.stat <==
usage_usec 1

==> /sys/fs/cgroup/b/memory.stat <==
inactive_file 0

==> /proc/11/net/dev <==
x

==> /sys/fs/cgroup/c/cpu.stat <==
usage_usec 5

==> /sys/fs/cgroup/c/memory.current <==
lots

==> /sys/fs/cgroup/c/memory.stat <==
inactive_file 0

==> /sys/fs/cgroup/c/memory.max <==
max

==> /proc/12/net/dev <==

==> /sys/fs/cgroup/d/memory.current <==
1

==> /not/listed <==
usage_usec 1
"""


def test_parse_keeps_complete_tasks_and_skips_the_rest() -> None:
    reading = parse(V2_OUTPUT)
    assert reading.uptime == 100.5
    # bbb: files gone between inspect and the read; ccc: a garbled figure; ddd: a bad line
    assert list(reading.tasks) == ["aaa"]
    aaa = reading.tasks["aaa"]
    assert aaa.stats == cgroups.CgroupStats(
        cpu_ns=2_000_000_000, mem_bytes=2000, mem_limit=None, read_bytes=0, write_bytes=0
    )
    assert aaa.net == (700, 900)


def test_parse_refuses_what_is_not_the_scripts_output() -> None:
    with pytest.raises(ValueError):
        parse("sh: docker: not found\n")
    assert parse("H 1\n") == HostReading(version=1, uptime=None, tasks={})


def _inst(task: str, name: str, node: str | None = "n2") -> Instance:
    return Instance(
        id=task,
        name=name,
        app="shop",
        service="web",
        release=1,
        state=InstanceState.HEALTHY,
        node=node,
    )


def _output(uptime: float, tasks: dict[str, tuple[int, int, int, int]]) -> str:
    """Script output (cgroup v1) for tasks: id -> (pid, cpu ns, memory bytes, received bytes)."""
    lines = ["H 1"]
    data = []
    for task, (pid, cpu, mem, rx) in tasks.items():
        lines.append(f"T {task} {pid} 0")
        d = f"/sys/fs/cgroup/x/{task}"
        files = {
            f"{d}/cpuacct.usage": str(cpu),
            f"{d}/memory.usage_in_bytes": str(mem),
            f"{d}/memory.stat": "total_inactive_file 0",
            f"{d}/memory.limit_in_bytes": "1048576",
            f"{d}/blkio.throttle.io_service_bytes": "Total 0",
            f"/proc/{pid}/net/dev": f"h1\nh2\neth0: {rx} 0 0 0 0 0 0 0 10 0 0 0 0 0 0 0",
        }
        for path, text in files.items():
            lines.append(f"F {path}")
            data += [f"==> {path} <==", text, ""]
    return "\n".join([*lines, f"U {uptime}", *data]) + "\n"


def test_rates_are_timed_by_the_hosts_clock() -> None:
    rates = Rates()
    insts = {"t1": _inst("t1", "web.1"), "t2": _inst("t2", "web.2")}
    first = rates.samples(parse(_output(100.0, {"t1": (10, 1_000_000_000, 5000, 100)})), insts, now=1.0)
    assert first["t1"].cpu_pct == 0.0 and first["t1"].mem_bytes == 5000 and first["t1"].mem_limit == 1048576
    assert (first["t1"].app, first["t1"].service, first["t1"].instance) == ("shop", "web", "web.1")
    # 4 s later by the host's clock (the manager's says 5): +2 s of CPU is half a core
    out = parse(_output(104.0, {"t1": (10, 3_000_000_000, 6000, 500), "t9": (99, 1, 1, 1)}))
    second = rates.samples(out, insts, now=6.0)
    assert list(second) == ["t1"]  # t9 is not tracked: ignored
    assert second["t1"].cpu_pct == 50.0
    assert second["t1"].rx_rate == 100.0
    assert second["t1"].at == 6.0
    # another process under the same task id: no rates against the old one
    third = rates.samples(parse(_output(109.0, {"t1": (11, 9_000_000_000, 6000, 900)})), insts, now=11.0)
    assert third["t1"].cpu_pct == 0.0 and third["t1"].cpu_seconds == 9.0
    rates.keep([])
    again = rates.samples(parse(_output(114.0, {"t1": (11, 9_500_000_000, 1, 1)})), insts, now=16.0)
    assert again["t1"].cpu_pct == 0.0  # forgotten: a first reading again


@dataclass
class _Result:
    code: int
    stdout: str
    stderr: str = ""


class FakeConn:
    def __init__(self, host: FakeHosts, name: str) -> None:
        self.host, self.name = host, name
        self.closed = False

    def run(self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0) -> _Result:
        assert argv[:2] == ["sh", "-c"] and argv[-1] == "p1"
        self.host.runs.append(self.name)
        behaviour = self.host.behaviour.get(self.name, "ok")
        if behaviour == "fail":
            raise BackendError(f"cannot reach {self.name}")
        if behaviour == "slow":
            self.host.release.wait(5)
        if behaviour == "exit":
            return _Result(3, "H 1\n", "Cannot connect to the Docker daemon")
        if behaviour == "garbage":
            return _Result(0, "Welcome to the host!\n")
        self.host.uptime += 5
        return _Result(0, _output(self.host.uptime, self.host.tasks[self.name]))

    def close(self) -> None:
        self.closed = True


class FakeHosts:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, tuple[int, int, int, int]]] = {
            "h2": {"t1": (10, 1_000_000, 4096, 0)},
            "h3": {"t2": (20, 2_000_000, 8192, 0)},
        }
        self.behaviour: dict[str, str] = {}
        self.connects: list[str] = []
        self.runs: list[str] = []
        self.lists = 0
        self.uptime = 100.0
        self.release = threading.Event()
        self.conns: list[FakeConn] = []

    def nodes(self) -> dict[str, str | None]:
        self.lists += 1
        return {"n1": None, "n2": "h2", "n3": "h3"}

    def connect(self, name: str) -> FakeConn:
        self.connects.append(name)
        conn = FakeConn(self, name)
        self.conns.append(conn)
        return conn


def _sampler(fake: FakeHosts, now: list[float]) -> RemoteSampler:
    return RemoteSampler(
        platform="p1",
        list_tasks=LIST_TASKS,
        nodes=fake.nodes,
        connect=fake.connect,
        timeout_s=0.3,
        clock=lambda: now[0],
    )


def test_hosts_are_read_over_kept_connections() -> None:
    fake = FakeHosts()
    now = [1000.0]
    remote = _sampler(fake, now)
    insts = [_inst("t1", "web.1", "n2"), _inst("t2", "web.2", "n3"), _inst("t0", "web.0", "n1")]
    try:
        first = remote.sample(insts, now=1.0)
        assert set(first) == {"t1", "t2"}  # t0 runs on this machine (node n1): read locally
        assert first["t2"].mem_bytes == 8192 and first["t2"].instance == "web.2"
        now[0] += 5
        remote.sample(insts, now=6.0)
        assert sorted(fake.connects) == ["h2", "h3"]  # one connection per host, kept
        assert sorted(fake.runs) == ["h2", "h2", "h3", "h3"]  # one command per host and round
        assert fake.lists == 1  # the node table is not listed every round
        assert remote.sample([_inst("t0", "web.0", None)], now=7.0) == {}
    finally:
        remote.close()
    assert all(conn.closed for conn in fake.conns)


def test_a_failing_host_is_skipped_logged_once_and_backed_off(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHosts()
    fake.behaviour["h3"] = "fail"
    now = [1000.0]
    remote = _sampler(fake, now)
    insts = [_inst("t1", "web.1", "n2"), _inst("t2", "web.2", "n3")]
    caplog.set_level(logging.INFO, "mypaas.metrics.remote")
    try:
        assert set(remote.sample(insts, now=1.0)) == {"t1"}
        now[0] += 1  # within the back-off: h3 is not asked
        assert set(remote.sample(insts, now=2.0)) == {"t1"}
        assert fake.runs.count("h3") == 1
        now[0] += 10
        remote.sample(insts, now=12.0)
        assert fake.runs.count("h3") == 2
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "h3" in warnings[0].getMessage()
        assert fake.connects.count("h3") == 2  # a failed connection is dropped and made again
        fake.behaviour["h3"] = "exit"  # connected, but the engine does not answer
        now[0] += 100
        assert set(remote.sample(insts, now=112.0)) == {"t1"}
        fake.behaviour.pop("h3")
        now[0] += 100
        assert set(remote.sample(insts, now=212.0)) == {"t1", "t2"}
        assert any("read again" in r.getMessage() for r in caplog.records)
    finally:
        remote.close()


def test_output_that_is_not_the_scripts_is_a_failure_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHosts()
    fake.behaviour["h2"] = "garbage"
    now = [1000.0]
    remote = _sampler(fake, now)
    caplog.set_level(logging.WARNING, "mypaas.metrics.remote")
    try:
        for n in range(4):
            now[0] += 100
            assert set(remote.sample([_inst("t1", "web.1", "n2")], now=float(n))) == set()
        assert fake.runs == ["h2"] * 4
        assert len(caplog.records) == 1 and "not the output" in caplog.records[0].getMessage()
    finally:
        remote.close()


def test_a_slow_host_does_not_hold_the_round() -> None:
    fake = FakeHosts()
    fake.behaviour["h3"] = "slow"
    now = [1000.0]
    remote = _sampler(fake, now)
    insts = [_inst("t1", "web.1", "n2"), _inst("t2", "web.2", "n3")]
    try:
        assert set(remote.sample(insts, now=1.0)) == {"t1"}  # within timeout_s + 0.5
        assert set(remote.sample(insts, now=2.0)) == {"t1"}
        assert fake.runs.count("h3") == 1  # still busy from the round before: not asked again
    finally:
        fake.release.set()
        remote.close()


def test_an_unknown_node_refreshes_the_table() -> None:
    fake = FakeHosts()
    now = [1000.0]
    remote = _sampler(fake, now)
    try:
        remote.sample([_inst("t1", "web.1", "n2")], now=1.0)
        now[0] += 6
        remote.sample([_inst("t1", "web.1", "n2"), _inst("t5", "web.5", "n5")], now=7.0)
        assert fake.lists == 2
        now[0] += 1
        remote.sample([_inst("t5", "web.5", "n5")], now=8.0)
        assert fake.lists == 2  # not more than once per few seconds
    finally:
        remote.close()


def test_nodes_map_to_the_hosts_to_connect_to() -> None:
    class Hosts:
        def list(self) -> list[dict[str, Any]]:
            return [
                {"name": "manager", "driver": "local", "node_id": "n1"},
                {"name": "h2", "driver": "ssh", "node_id": "n2"},
                {"name": "hand", "driver": "unmanaged", "node_id": "n3"},
                {"name": "adding", "driver": "ssh", "node_id": None},
            ]

        def machine(self, name: str) -> Any:
            raise AssertionError("not connected here")

    assert nodes_to_hosts(Hosts()) == {"n1": None, "n2": "h2", "n3": None}


class FakeRemote:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.closed = False
        self.answer = True

    def sample(self, instances: Sequence[Instance], now: float) -> dict[str, Sample]:
        self.asked.append([i.id for i in instances])
        return {
            i.id: Sample(at=now, app=i.app, service=i.service, instance=i.name, mem_bytes=7)
            for i in instances
            if i.node == "n2" and self.answer
        }

    def close(self) -> None:
        self.closed = True


def test_the_sampler_hands_what_it_cannot_read_to_the_remote_source(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "v2" / "proc", proc)
    shutil.copy(FIXTURES / "proc_stat", proc / "stat")
    shutil.copy(FIXTURES / "meminfo", proc / "meminfo")
    (proc / "net").mkdir()
    shutil.copy(FIXTURES / "v2" / "proc" / "4242" / "net" / "dev", proc / "net" / "dev")

    def resolve(iid: str) -> ProcessInfo | None:
        return ProcessInfo(pid=4242) if iid == "local" else None  # the others run on other hosts

    remote = FakeRemote()
    sampler = Sampler(resolve=resolve, proc=proc, root=FIXTURES / "v2" / "sys", remote=remote)
    sampler.track([_inst("local", "web.0", "n1"), _inst("t1", "web.1", "n2")])
    samples = sampler.sample_once()
    assert [s.instance for s in samples] == ["web.0", "web.1", "host"]
    assert remote.asked == [["t1"]]
    assert sampler.latest["t1"].mem_bytes == 7
    assert set(sampler.latest) == {"host", "local", "t1"}
    remote.answer = False  # its host did not answer this round: the newest sample stays the newest
    assert [s.instance for s in sampler.sample_once()] == ["web.0", "host"]
    assert sampler.latest["t1"].mem_bytes == 7
    stop = threading.Event()
    stop.set()
    sampler.run(stop)
    assert remote.closed
