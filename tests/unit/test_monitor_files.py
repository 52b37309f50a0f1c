"""The monitor's kernel file readers (cgroup v1 and v2, net/dev, /proc/stat, meminfo) on fixture files,
and the sampler's rates between two rounds."""

from __future__ import annotations

import shutil
from pathlib import Path

from mypaas.domain import Instance, ProcessInfo
from mypaas.monitor import cgroups
from mypaas.monitor.metrics import Sampler
from mypaas.states import InstanceState

FIXTURES = Path(__file__).parent / "fixtures" / "cgroups"


def test_v2_is_detected_and_parsed() -> None:
    root = FIXTURES / "v2" / "sys"
    assert cgroups.version(root) == 2
    dirs = cgroups.cgroup_dirs(4242, proc=FIXTURES / "v2" / "proc", root=root)
    assert dirs.memory == root / "system.slice" / "docker-abc.scope"
    stats = cgroups.read_stats(dirs)
    assert stats.cpu_ns == 2_500_000_000
    assert stats.mem_bytes == 10485760 - 1048576
    assert stats.mem_limit == 67108864
    assert (stats.read_bytes, stats.write_bytes) == (5096, 8192)


def test_v2_without_limit_or_io_stat(tmp_path: Path) -> None:
    folder = tmp_path / "sys"
    shutil.copytree(FIXTURES / "v2" / "sys", folder)
    scope = folder / "system.slice" / "docker-abc.scope"
    (scope / "memory.max").write_text("max\n")
    (scope / "io.stat").unlink()
    stats = cgroups.read_stats(cgroups.dirs_from("0::/system.slice/docker-abc.scope\n", folder, 2))
    assert stats.mem_limit is None
    assert (stats.read_bytes, stats.write_bytes) == (0, 0)


def test_v1_is_detected_and_parsed_with_a_custom_cgroup_parent() -> None:
    root = FIXTURES / "v1" / "sys"
    assert cgroups.version(root) == 1
    dirs = cgroups.cgroup_dirs(4242, proc=FIXTURES / "v1" / "proc", root=root)
    assert dirs.cpu == root / "cpuacct" / "custom" / "abc"
    stats = cgroups.read_stats(dirs)
    assert stats.cpu_ns == 50131966
    assert stats.mem_bytes == 942080 - 4096
    assert stats.mem_limit is None  # 2^63-1 rounded to a page means "no limit"
    assert (stats.read_bytes, stats.write_bytes) == (12288, 4096)


def test_network_counts_every_interface_but_loopback() -> None:
    assert cgroups.net_bytes(4242, proc=FIXTURES / "v2" / "proc") == (45553, 47929)


def test_host_files() -> None:
    cpu = cgroups.parse_proc_stat((FIXTURES / "proc_stat").read_text())
    assert (cpu.busy, cpu.total) == (150, 1000)
    used, total = cgroups.parse_meminfo((FIXTURES / "meminfo").read_text())
    assert (used, total) == (1024000 * 1024, 2048000 * 1024)


def _proc_copy(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    shutil.copytree(FIXTURES / "v2" / "proc", proc)
    shutil.copy(FIXTURES / "proc_stat", proc / "stat")
    shutil.copy(FIXTURES / "meminfo", proc / "meminfo")
    (proc / "net").mkdir()
    shutil.copy(FIXTURES / "v2" / "proc" / "4242" / "net" / "dev", proc / "net" / "dev")
    return proc


def test_sampler_turns_counters_into_rates(tmp_path: Path) -> None:
    proc = _proc_copy(tmp_path)
    root = tmp_path / "sys"
    shutil.copytree(FIXTURES / "v2" / "sys", root)
    scope = root / "system.slice" / "docker-abc.scope"
    now = [1000.0]
    lookups: list[str] = []

    def resolve(iid: str) -> ProcessInfo:
        lookups.append(iid)
        return ProcessInfo(pid=4242, restarts=1)

    sampler = Sampler(resolve=resolve, proc=proc, root=root, clock=lambda: now[0])
    inst = Instance(
        id="abc", name="web-1", app="shop", service="web", release=1, state=InstanceState.STARTING
    )
    sampler.track([inst, inst.model_copy(update={"id": "gone", "state": InstanceState.EXITED})])
    first = sampler.sample_once()
    assert [s.instance for s in first] == ["web-1", "host"]
    assert first[0].cpu_pct == 0.0  # no rate before a second round
    now[0] += 5
    (scope / "cpu.stat").write_text("usage_usec 5000000\n")  # +2.5 s of CPU in 5 s: half a core
    dev = proc / "4242" / "net" / "dev"
    dev.write_text(dev.read_text().replace("45453", "55453"))
    second = sampler.sample_once()
    web = second[0]
    assert web.cpu_pct == 50.0
    assert web.rx_rate == 2000.0
    assert web.restarts == 1
    assert lookups == ["abc"]  # the pid is looked up once, not every round
    assert sampler.latest["abc"] is web
    sampler.track([])
    assert [s.instance for s in sampler.sample_once()] == ["host"]


def test_sampler_looks_a_restarted_instance_up_again(tmp_path: Path) -> None:
    proc = _proc_copy(tmp_path)
    root = tmp_path / "sys"
    shutil.copytree(FIXTURES / "v2" / "sys", root)
    calls: list[str] = []

    def resolve(iid: str) -> ProcessInfo:
        calls.append(iid)
        return ProcessInfo(pid=4242)

    sampler = Sampler(resolve=resolve, proc=proc, root=root, interval_s=0.0)
    inst = Instance(id="abc", name="web-1", app="shop", service="web", release=1, state=InstanceState.HEALTHY)
    sampler.track([inst])
    sampler.sample_once()
    shutil.rmtree(proc / "4242")  # the process is gone (a restart gives it a new pid)
    assert [s.instance for s in sampler.sample_once()] == ["host"]
    sampler.sample_once()
    assert len(calls) == 2
