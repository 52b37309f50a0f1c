"""The figures of instances on the cluster's other hosts (Swarm tasks there): per host and round, ONE
command over the host's connection (``script``) lists the platform's task containers on it, finds each
one's cgroup from ``/proc/<pid>/cgroup`` and prints its cgroup files and ``/proc/<pid>/net/dev``; the
text is parsed here with the parsers the local sampler uses (monitor/cgroups.py), so both count alike.

Hosts are read in parallel, each within ``timeout_s``; a host that fails is skipped that round, logged
once, and asked again with a growing pause. Its connection stays open between rounds.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mypaas.domain import Instance
from mypaas.errors import MyPaasError
from mypaas.monitor import cgroups
from mypaas.monitor.cgroups import CgroupStats
from mypaas.monitor.metrics import Sample, figures

log = logging.getLogger("mypaas.metrics.remote")

MAX_BACKOFF_S = 60.0
NODES_TTL_S = 30.0  # how long the node -> host table is trusted
NODES_RETRY_S = 5.0  # an instance on a node not in it makes it refresh, at most this often
NET = "dev"  # the name of /proc/<pid>/net/dev among a task's files


def _adds(files: Mapping[str, tuple[str, ...]], dirs: Mapping[str, str]) -> str:
    return "\n      ".join(f'add "{dirs[where]}" {" ".join(names)}' for where, names in files.items())


# The script is ``list_tasks`` (a shell function the composer gives: composer/hostside.py; it prints
# "PID RESTARTS TASK_ID" per task container of platform $1, and returns 3 when the engine does not
# answer) followed by this. $2 and $3: where cgroupfs and procfs are (the unit tests point them at
# fixtures). Output: "H <cgroup version>", then per container "T <task id> <pid> <restarts>" and
# "F <path>" per file of it, then "U <host uptime>" and the files, each after a "==> <path> <==" line
# (head's headers: one process for all files; a file gone meanwhile is left out).
READER = f"""R=${{2:-/sys/fs/cgroup}} P=${{3:-/proc}}
nl='
'
v=1
[ -e "$R/cgroup.controllers" ] && v=2
echo "H $v"
tasks=$(list_tasks "$1") || exit 3
[ -n "$tasks" ] || exit 0
printf '%s\\n' "$tasks" | {{
  files=
  add() {{ d=$1; shift; for f; do echo "F $d/$f"; files="$files$d/$f$nl"; done; }}
  while read -r pid n task; do
    case $pid in ''|0|*[!0-9]*) continue;; esac
    cpu=; mem=; io=; u=
    while IFS=: read -r _ c p; do
      case ",$c," in ,,) u=$p;; esac
      case ",$c," in *,cpuacct,*) cpu=$p;; esac
      case ",$c," in *,memory,*) mem=$p;; esac
      case ",$c," in *,blkio,*) io=$p;; esac
    done 2>/dev/null <"$P/$pid/cgroup"
    if [ $v = 2 ]; then
      [ -n "$u" ] || continue
      echo "T $task $pid $n"
      {_adds(cgroups.V2_FILES, {"cpu": "$R$u", "memory": "$R$u", "io": "$R$u"})}
    else
      [ -n "$cpu" ] && [ -n "$mem" ] && [ -n "$io" ] || continue
      echo "T $task $pid $n"
      {_adds(cgroups.V1_FILES, {"cpu": "$R/cpuacct$cpu", "memory": "$R/memory$mem", "io": "$R/blkio$io"})}
    fi
    add "$P/$pid/net" {NET}
  done
  read -r up _ <"$P/uptime"
  echo "U $up"
  IFS=$nl
  set -f
  [ -z "$files" ] || head -n 100000 $files 2>/dev/null
  exit 0
}}
"""


def script(list_tasks: str) -> str:
    """The whole command: the composer's ``list_tasks`` function, then the reader."""
    return list_tasks + READER


# -- the script's output ------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskReading:
    task: str
    pid: int
    restarts: int
    stats: CgroupStats
    net: tuple[int, int]  # received, sent


@dataclass(frozen=True)
class HostReading:
    version: int  # of the host's cgroups
    uptime: float | None  # the host's clock (seconds since boot) when the files were read
    tasks: dict[str, TaskReading]  # by task id: the containers whose files were all read


@dataclass
class _Raw:
    task: str
    pid: int
    restarts: int
    lines: dict[str, list[str]] = field(default_factory=dict)  # file name -> its lines


def parse(text: str) -> HostReading:
    """Read ``script``'s output. A container whose files are missing (it stopped meanwhile) or garbled
    is left out; lines that mean nothing are skipped. ValueError: it is not the script's output."""
    lines = text.splitlines()
    first = next((n for n, line in enumerate(lines) if _header(line) is not None), len(lines))
    version, uptime, tasks, owner = _listing(lines[:first])
    current: list[str] | None = None
    for line in lines[first:]:
        path = _header(line)
        if path is not None:
            found = owner.get(path)
            current = found[0].lines.setdefault(found[1], []) if found is not None else None
        elif current is not None and line:
            current.append(line)
    readings = (_reading(raw, version) for raw in tasks.values())
    return HostReading(version, uptime, {r.task: r for r in readings if r is not None})


def _header(line: str) -> str | None:
    """The path of a ``==> <path> <==`` line (head's header before each file), else None."""
    if line.startswith("==> ") and line.endswith(" <=="):
        return line[4:-4]
    return None


def _listing(
    lines: list[str],
) -> tuple[int, float | None, dict[str, _Raw], dict[str, tuple[_Raw, str]]]:
    """The lines before the files: the cgroup version, the uptime, the containers and their files."""
    version: int | None = None
    uptime: float | None = None
    tasks: dict[str, _Raw] = {}
    owner: dict[str, tuple[_Raw, str]] = {}  # file path -> its container and file name
    current: _Raw | None = None
    for line in lines:
        tag, _, rest = line.partition(" ")
        if tag == "H" and rest in ("1", "2"):
            version = int(rest)
        elif tag == "U":
            uptime = _float(rest)
        elif tag == "T":
            current = _task_line(rest)
            if current is not None:
                tasks[current.task] = current
        elif tag == "F" and current is not None and rest.startswith("/"):
            owner[rest] = (current, rest.rsplit("/", 1)[1])
    if version is None:
        raise ValueError("no 'H' line: not the output of the metrics script")
    return version, uptime, tasks, owner


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _task_line(rest: str) -> _Raw | None:
    parts = rest.split()
    if len(parts) != 3 or not parts[0].isalnum() or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return _Raw(task=parts[0], pid=int(parts[1]), restarts=int(parts[2]))


def _reading(raw: _Raw, version: int) -> TaskReading | None:
    texts = {name: "\n".join(lines) + "\n" for name, lines in raw.lines.items()}
    if NET not in texts:
        return None
    try:
        stats = cgroups.parse_stats(version, texts)
        net = cgroups.parse_net_dev(texts[NET])
    except ValueError:
        return None
    return TaskReading(task=raw.task, pid=raw.pid, restarts=raw.restarts, stats=stats, net=net)


# -- readings into samples ----------------------------------------------------------------------


@dataclass
class _Last:
    pid: int
    uptime: float | None
    sample: Sample


class Rates:
    """Turns host readings into samples, with rates against the previous reading of the same task
    (timed by the host's own clock)."""

    def __init__(self) -> None:
        self._last: dict[str, _Last] = {}

    def samples(
        self, reading: HostReading, instances: Mapping[str, Instance], now: float
    ) -> dict[str, Sample]:
        """The samples of ``instances`` (by id) found in ``reading``; others are ignored."""
        out: dict[str, Sample] = {}
        for task_id, task in reading.tasks.items():
            inst = instances.get(task_id)
            if inst is None:
                continue
            prev = self._last.get(task_id)
            if prev is not None and prev.pid != task.pid:
                prev = None  # another process: no rates against the old one
            span = 0.0
            if prev is not None and prev.uptime is not None and reading.uptime is not None:
                span = max(0.0, reading.uptime - prev.uptime)
            identity = Sample(
                at=now, app=inst.app, service=inst.service, instance=inst.name, restarts=task.restarts
            )
            sample = figures(identity, task.stats, task.net, prev.sample if prev else None, span)
            self._last[task_id] = _Last(task.pid, reading.uptime, sample)
            out[task_id] = sample
        return out

    def keep(self, ids: Iterable[str]) -> None:
        """Forget the tasks not in ``ids``."""
        wanted = set(ids)
        self._last = {k: v for k, v in self._last.items() if k in wanted}


# -- the hosts ------------------------------------------------------------------------------------


class CommandOutput(Protocol):
    @property
    def code(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Connection(Protocol):
    """A connected host (iaas/base.py Machine): runs argument lists."""

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandOutput: ...

    def close(self) -> None: ...


@dataclass
class _Host:
    name: str
    conn: Connection | None = None
    failures: int = 0
    retry_at: float = 0.0  # monotonic time before which it is not asked again
    running: concurrent.futures.Future[HostReading | None] | None = None


class RemoteSampler:
    """Reads the tracked instances on other hosts (a ``metrics.RemoteSource``).

    ``nodes()`` maps Swarm node ids to the name of the host to connect to (``connect(name)``), or None
    for a node not read this way (this machine, or one that joined the Swarm by hand)."""

    def __init__(
        self,
        *,
        platform: str,
        list_tasks: str,
        nodes: Callable[[], Mapping[str, str | None]],
        connect: Callable[[str], Connection],
        timeout_s: float = 4.0,
        workers: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._argv = ["sh", "-c", script(list_tasks), "sh", platform]
        self._nodes = nodes
        self._connect = connect
        self.timeout_s = timeout_s
        self._clock = clock
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="metrics-host")
        self._hosts: dict[str, _Host] = {}
        self._map: dict[str, str | None] = {}
        self._map_at: float | None = None
        self._map_failed = False
        self._rates = Rates()
        self._lock = threading.Lock()  # the hosts' connections: workers vs close()
        self._closed = False

    def sample(self, instances: Sequence[Instance], now: float) -> dict[str, Sample]:
        """One round: the samples of the instances on reachable hosts, by instance id. Waits at most
        about ``timeout_s``; a host still busy from an earlier round is skipped."""
        self._rates.keep(i.id for i in instances)
        by_host = self._by_host(instances)
        started = self._clock()
        asked: dict[str, concurrent.futures.Future[HostReading | None]] = {}
        for name in by_host:
            host = self._hosts.setdefault(name, _Host(name))
            if (host.running is not None and not host.running.done()) or host.retry_at > started:
                continue
            host.running = self._pool.submit(self._poll, host)
            asked[name] = host.running
        if not asked:
            return {}
        concurrent.futures.wait(asked.values(), timeout=self.timeout_s + 0.5)
        out: dict[str, Sample] = {}
        for name, future in asked.items():
            reading = future.result() if future.done() and not future.cancelled() else None
            if reading is not None:  # else it failed (counted by the worker) or runs still: skipped
                out |= self._rates.samples(reading, by_host[name], now)
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            hosts = list(self._hosts.values())
        for host in hosts:
            self._drop(host)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- which host runs what -------------------------------------------------------------------

    def _by_host(self, instances: Sequence[Instance]) -> dict[str, dict[str, Instance]]:
        on_nodes = [i for i in instances if i.node]
        if not on_nodes:
            return {}
        self._refresh(any(i.node not in self._map for i in on_nodes))
        out: dict[str, dict[str, Instance]] = {}
        for inst in on_nodes:
            name = self._map.get(inst.node or "")
            if name:
                out.setdefault(name, {})[inst.id] = inst
        return out

    def _refresh(self, unknown: bool) -> None:
        now = self._clock()
        age = None if self._map_at is None else now - self._map_at
        if age is not None and age < NODES_TTL_S and not (unknown and age >= NODES_RETRY_S):
            return
        self._map_at = now
        try:
            self._map = dict(self._nodes())
        except Exception as exc:  # keep the last table; try again later
            if not self._map_failed:
                why = exc.message if isinstance(exc, MyPaasError) else str(exc)
                log.warning("metrics of other hosts: cannot list the hosts: %s", why)
            self._map_failed = True
            return
        self._map_failed = False
        gone = [h for name, h in self._hosts.items() if name not in self._map.values()]
        for host in gone:
            if host.running is None or host.running.done():
                self._drop(host)
                del self._hosts[host.name]

    # -- one host (in a worker thread) ------------------------------------------------------------

    def _poll(self, host: _Host) -> HostReading | None:
        """Run the script on the host and read its output; None when that failed (the failure is
        counted, and logged once)."""
        try:
            conn = host.conn
            if conn is None:
                conn = self._connect(host.name)
                with self._lock:
                    if self._closed:
                        conn.close()
                        return None
                    host.conn = conn
            result = conn.run(self._argv, timeout=self.timeout_s)
        except Exception as exc:  # unreachable, timed out, connection lost: a fresh one next time
            self._drop(host)
            self._failed(host, str(getattr(exc, "message", None) or exc or type(exc).__name__))
            return None
        if result.code != 0:
            if result.code < 0:  # no exit status: the connection was lost meanwhile
                self._drop(host)
            lines = result.stderr.strip().splitlines()
            self._failed(host, f"exit {result.code}: {lines[-1] if lines else 'no error message'}")
            return None
        try:
            reading = parse(result.stdout)
        except ValueError as exc:
            self._failed(host, str(exc))
            return None
        if host.failures:
            log.info("metrics of host %s: read again after %d failed rounds", host.name, host.failures)
        host.failures, host.retry_at = 0, 0.0
        return reading

    def _failed(self, host: _Host, why: str) -> None:
        host.failures += 1
        host.retry_at = self._clock() + min(MAX_BACKOFF_S, 2.0**host.failures)
        if host.failures == 1:
            log.warning("metrics of host %s: %s (asked again less often until it answers)", host.name, why)

    def _drop(self, host: _Host) -> None:
        with self._lock:
            conn, host.conn = host.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection: nothing more to do
                log.debug("closing the connection to %s", host.name, exc_info=True)
