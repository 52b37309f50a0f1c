"""Reading a container's figures from kernel files: cgroup v1 or v2, /proc/<pid>/net/dev, and the host's
/proc/stat and /proc/meminfo. Plain file reads only: no engine call, nothing slower than a few opens.

A container's cgroup is found from ``/proc/<pid>/cgroup`` of its init process, so a custom
``--cgroup-parent`` works too. Every reader raises ``OSError`` when the process or cgroup is gone. The
parsers work on the files' text, so the same figures come from another host's files (monitor/remote.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

UNLIMITED = 2**62  # cgroup v1 writes "no limit" as a page-rounded 2^63-1
_V1_CONTROLLERS = ("cpuacct", "memory", "blkio", "pids")


@dataclass(frozen=True)
class CgroupDirs:
    """The folders holding one container's cgroup files (v2: one folder for all of them)."""

    version: int
    cpu: Path
    memory: Path
    io: Path


@dataclass(frozen=True)
class CgroupStats:
    cpu_ns: int  # CPU time used since the container started
    mem_bytes: int  # in use, without the inactive page cache (what `docker stats` shows)
    mem_limit: int | None  # None: no limit
    read_bytes: int
    write_bytes: int


@dataclass(frozen=True)
class HostCpu:
    busy: int  # jiffies, all CPUs
    total: int


def version(root: Path = Path("/sys/fs/cgroup")) -> int:
    """2 when the unified hierarchy is mounted at ``root``, else 1."""
    return 2 if (root / "cgroup.controllers").exists() else 1


def cgroup_dirs(pid: int, *, proc: Path = Path("/proc"), root: Path = Path("/sys/fs/cgroup")) -> CgroupDirs:
    """Where the cgroup files of process ``pid`` are."""
    text = (proc / str(pid) / "cgroup").read_text()
    return dirs_from(text, root, version(root))


def dirs_from(text: str, root: Path, ver: int) -> CgroupDirs:
    """Parse the text of ``/proc/<pid>/cgroup`` for a v1 or v2 mount at ``root``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2].lstrip("/")
    if ver == 2:
        folder = root / paths.get("", "")
        return CgroupDirs(version=2, cpu=folder, memory=folder, io=folder)

    def v1(controller: str) -> Path:
        return root / controller / paths.get(controller, "")

    return CgroupDirs(version=1, cpu=v1("cpuacct"), memory=v1("memory"), io=v1("blkio"))


# The files of a container's cgroup that ``parse_stats`` reads, by the folder of CgroupDirs holding them.
V1_FILES = {
    "cpu": ("cpuacct.usage",),
    "memory": ("memory.usage_in_bytes", "memory.stat", "memory.limit_in_bytes"),
    "io": ("blkio.throttle.io_service_bytes",),
}
V2_FILES = {
    "cpu": ("cpu.stat",),
    "memory": ("memory.current", "memory.stat", "memory.max"),
    "io": ("io.stat",),
}
OPTIONAL = frozenset({"io.stat"})  # absent when the io controller is not enabled: no disk figures


def files(ver: int) -> dict[str, tuple[str, ...]]:
    return V2_FILES if ver == 2 else V1_FILES


def read_stats(dirs: CgroupDirs) -> CgroupStats:
    texts: dict[str, str] = {}
    for where, names in files(dirs.version).items():
        folder: Path = getattr(dirs, where)
        for name in names:
            if name in OPTIONAL and not (folder / name).exists():
                continue
            texts[name] = (folder / name).read_text()
    return parse_stats(dirs.version, texts)


def parse_stats(ver: int, texts: Mapping[str, str]) -> CgroupStats:
    """The figures from the text of each file of ``files(ver)``, by file name (read here or on another
    host); ValueError when a needed file is missing or does not hold a number."""
    return _parse_v2(texts) if ver == 2 else _parse_v1(texts)


def _text(texts: Mapping[str, str], name: str) -> str:
    if name not in texts:
        if name in OPTIONAL:
            return ""
        raise ValueError(f"no {name}")
    return texts[name]


def _keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat) into a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _parse_v1(texts: Mapping[str, str]) -> CgroupStats:
    cpu_ns = int(_text(texts, "cpuacct.usage"))
    usage = int(_text(texts, "memory.usage_in_bytes"))
    stat = _keyed(_text(texts, "memory.stat"))
    limit = int(_text(texts, "memory.limit_in_bytes"))
    read = write = 0
    for line in _text(texts, "blkio.throttle.io_service_bytes").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return CgroupStats(
        cpu_ns=cpu_ns,
        mem_bytes=max(0, usage - stat.get("total_inactive_file", 0)),
        mem_limit=None if limit >= UNLIMITED else limit,
        read_bytes=read,
        write_bytes=write,
    )


def _parse_v2(texts: Mapping[str, str]) -> CgroupStats:
    cpu = _keyed(_text(texts, "cpu.stat"))
    usage = int(_text(texts, "memory.current"))
    stat = _keyed(_text(texts, "memory.stat"))
    limit_text = _text(texts, "memory.max").strip()
    read = write = 0
    for line in _text(texts, "io.stat").splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return CgroupStats(
        cpu_ns=cpu.get("usage_usec", 0) * 1000,
        mem_bytes=max(0, usage - stat.get("inactive_file", 0)),
        mem_limit=None if limit_text == "max" else int(limit_text),
        read_bytes=read,
        write_bytes=write,
    )


def net_bytes(pid: int, *, proc: Path = Path("/proc")) -> tuple[int, int]:
    """(received, sent) bytes over every interface but ``lo`` of the network namespace of ``pid``."""
    return parse_net_dev((proc / str(pid) / "net" / "dev").read_text())


def parse_net_dev(text: str) -> tuple[int, int]:
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def host_cpu(*, proc: Path = Path("/proc")) -> HostCpu:
    """The host's CPU time (first line of /proc/stat): busy and total jiffies."""
    return parse_proc_stat((proc / "stat").read_text())


def parse_proc_stat(text: str) -> HostCpu:
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is counted in user already
    return HostCpu(busy=total - idle, total=total)


def host_memory(*, proc: Path = Path("/proc")) -> tuple[int, int]:
    """(used, total) bytes of the host's memory, "used" as total minus available."""
    return parse_meminfo((proc / "meminfo").read_text())


def parse_meminfo(text: str) -> tuple[int, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    total = values.get("MemTotal", 0)
    return total - values.get("MemAvailable", values.get("MemFree", 0)), total
