"""Benchmark: `mypaas image import` of a ~200 MB rootfs .tar.gz against `docker import` of the same file,
in the same run; and the peak memory of the manager and of the CLI while importing.

Each run imports both ways one after the other (the order alternating, so that neither always finds
the archive in the page cache the other warmed) and gives one ratio; the figure is the median of those
ratios, printed with their spread. Before the runs, one import each way is not counted: on a fresh
platform the first import also uploads the new layer to the empty private registry (later imports of
the same content find it there, as docker import never has to); its ratio is printed apart
(first_ratio).

Each import of ours also prints its timeline, from what the engine records itself (its image events):
the CLI's start until the engine finished the import (upload, checks and the engine's own import
together), then the push to the private registry, the engine's references to the pushed copy dropped,
and the answer until the CLI exited. docker import's own split (until its import event, then its exit)
is printed beside it. The median of each step is printed after the runs.

Last line: import_ratio=<median of mypaas/docker> spread=<min>-<max> first_ratio=<x>
peak_rss_mb=<max of manager VmHWM and CLI maxrss> (BENCH_RUNS runs, 5 by default; BENCH_SIZE_MB changes
the archive's size, e.g. 1024 for 1 GB).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import MYPAAS, durations, median
from tests import kit

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "200"))
WORK = Path(tempfile.gettempdir()) / "mypaas-bench-import"
REF = "mypaas-bench/import"
MiB = 1024 * 1024
# the timeline's steps, in order: (name, what ends it)
STEPS = (
    ("import", "the engine recorded the import (CLI start, upload, checks, the engine's import)"),
    ("push", "the engine pushed it to the private registry"),
    ("untag", "the engine dropped its references to the registry's copy"),
    ("answer", "the CLI had the answer and exited"),
)


def archive() -> Path:
    """A rootfs .tar.gz of about SIZE_MB (busybox, 2,000 small files, big incompressible ones), made once."""
    path = WORK / f"rootfs-{SIZE_MB}mb.tar.gz"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    tree = WORK / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "bin").mkdir(parents=True)
    shutil.copy2(kit.BUSYBOX, tree / "bin" / "busybox")
    for applet in kit.APPLETS:
        (tree / "bin" / applet).symlink_to("busybox")
    rng = random.Random(42)
    small = tree / "usr" / "share" / "doc"
    small.mkdir(parents=True)
    for n in range(2000):
        (small / f"file{n}.txt").write_text(f"document {n}\n" * rng.randint(1, 200))
    big = tree / "opt" / "data"
    big.mkdir(parents=True)
    for n in range(SIZE_MB // 8):
        (big / f"blob{n}.bin").write_bytes(rng.randbytes(8 * MiB))
    partial = path.with_suffix(".part")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(tree, arcname=".")
    partial.rename(path)
    shutil.rmtree(tree)
    return path


# Runs a command in a forked child and prints that child's peak RSS (kB) on its last stderr line. Going
# through this small process matters: a child spawned straight from this one (vfork) would report the
# RSS of this benchmark process as its own peak.
PEAK = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\npeak_kb={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Seconds the command took, its peak RSS in kB (that process alone), and when it started (epoch)."""
    os.sync()  # each run starts with no earlier run's writes pending: the engine is disk-bound here
    wall, start = time.time(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-S", "-c", PEAK, *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    took = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err}")
    return took, int(err.rsplit("peak_kb=", 1)[1].split()[0]), wall


def engine_events(ref: str, since: float, until_: float) -> dict[str, float]:
    """When the engine had imported image ``ref`` (its tag event), pushed it, and last untagged it
    (the registry's copies of it are untagged after the push); epoch s."""
    seen: dict[str, float] = {}
    image = ""
    client = kit.docker_client()
    try:
        events = client.api.events(
            since=int(since), until=int(until_) + 1, decode=True, filters={"type": "image"}
        )
        for ev in events:
            at, action = ev["timeNano"] / 1e9, ev.get("Action")
            actor = ev.get("Actor") or {}
            name = (actor.get("Attributes") or {}).get("name", "")
            if at < since:
                continue
            if action == "tag" and name == ref and not image:
                image, seen["import"] = actor.get("ID", ""), at
            elif action == "push" and image and (actor.get("ID") == image or ref.rpartition(":")[0] in name):
                seen.setdefault("push", at)
            elif action == "untag" and "push" in seen and actor.get("ID") == image:
                seen["untag"] = at
    finally:
        client.close()
    return seen


def timeline(points: dict[str, float], start: float, exited: float) -> dict[str, float]:
    """Seconds each step took, from the engine's records and the CLI's start and exit (epoch s)."""
    return durations(STEPS, {**points, "answer": exited}, start)


def remove(ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Run:
    """One import each way: docker's seconds and timeline, ours, and our CLI's peak RSS (kB)."""

    def __init__(self, p: kit.Platform, path: Path, label: str, *, mypaas_first: bool) -> None:
        self.theirs_steps: dict[str, float] = {}
        self.steps: dict[str, float] = {}
        if mypaas_first:
            self.ours, self.rss = self._mypaas(p, path, label)
            self.theirs = self._docker(path, label)
        else:
            self.theirs = self._docker(path, label)
            self.ours, self.rss = self._mypaas(p, path, label)

    def _docker(self, path: Path, label: str) -> float:
        took, _, wall = timed(["docker", "import", "--change", label, str(path), f"{REF}:docker"])
        self.theirs_steps = timeline(engine_events(f"{REF}:docker", wall, wall + took), wall, wall + took)
        remove(f"{REF}:docker")
        return took

    def _mypaas(self, p: kit.Platform, path: Path, label: str) -> tuple[float, int]:
        cmd = [MYPAAS, "image", "import", str(path), f"{REF}:mypaas", "-c", label]
        took, rss, wall = timed(cmd, env=p.env)
        self.steps = timeline(engine_events(f"{REF}:mypaas", wall, wall + took), wall, wall + took)
        remove(f"{REF}:mypaas")
        return took, rss


def show(steps: dict[str, float]) -> str:
    return "  ".join(f"{name} {steps[name] * 1000:.0f}" for name, _ in STEPS if name in steps)


def main() -> None:
    path = archive()
    print(f"archive: {path} ({path.stat().st_size / 1e6:.0f} MB compressed)", flush=True)
    label = f"LABEL {kit.TEST_LABEL}=1"
    ratios, cli_rss = [], []
    with kit.running_platform() as p:  # a fresh manager: VmHWM is its peak since it started
        pid = int((p.home / "run" / "manager.pid").read_text())
        idle = status_kb(pid, "VmRSS")
        run = Run(p, path, label, mypaas_first=False)
        first = run.ours / run.theirs
        cli_rss.append(run.rss)
        print(
            f"first: docker import {run.theirs:.2f}s  mypaas image import {run.ours:.2f}s "
            "(pushes the new layer)"
        )
        print(f"  timeline (ms): {show(run.steps)}  | docker: {show(run.theirs_steps)}", flush=True)
        steps: dict[str, list[float]] = defaultdict(list)
        theirs_steps: dict[str, list[float]] = defaultdict(list)
        for n in range(1, RUNS + 1):
            run = Run(p, path, label, mypaas_first=n % 2 == 1)
            ratios.append(run.ours / run.theirs)
            cli_rss.append(run.rss)
            for name, s in run.steps.items():
                steps[name].append(s)
            for name, s in run.theirs_steps.items():
                theirs_steps[name].append(s)
            print(
                f"run {n}: docker import {run.theirs:.2f}s  mypaas image import {run.ours:.2f}s  "
                f"ratio {ratios[-1]:.2f}",
                flush=True,
            )
            print(f"  timeline (ms): {show(run.steps)}  | docker: {show(run.theirs_steps)}", flush=True)
        manager_peak = status_kb(pid, "VmHWM")
    print("median timeline (ms):")
    for name, what in STEPS:
        if name in steps:
            theirs = f"(docker: {median(theirs_steps[name]) * 1000:.0f})" if name in theirs_steps else ""
            print(f"  {name:<7} {median(steps[name]) * 1000:6.0f} {theirs:<15} {what}")
    print(
        f"manager: {idle / 1024:.0f} MB idle, peak {manager_peak / 1024:.0f} MB "
        f"(+{(manager_peak - idle) / 1024:.0f} MB); CLI peak {max(cli_rss) / 1024:.0f} MB"
    )
    peak = max(manager_peak, *cli_rss) / 1024
    print(
        f"import_ratio={median(ratios):.2f} spread={min(ratios):.2f}-{max(ratios):.2f} "
        f"first_ratio={first:.2f} peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
