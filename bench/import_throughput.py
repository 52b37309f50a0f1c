"""Benchmark: `mypaas image import` of a ~200 MB rootfs .tar.gz against `docker import` of the same file,
in the same run; and the peak memory of the manager and of the CLI while importing.

Last line: import_ratio=<mypaas/docker> peak_rss_mb=<max of manager VmHWM and CLI maxrss>
(medians over BENCH_RUNS runs; BENCH_SIZE_MB changes the archive's size, e.g. 1024 for 1 GB).
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
from pathlib import Path

from _common import MYPAAS, median
from tests import kit

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "200"))
WORK = Path(tempfile.gettempdir()) / "mypaas-bench-import"
REF = "mypaas-bench/import"
MiB = 1024 * 1024


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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Seconds the command took, and its peak RSS in kB (that process alone)."""
    os.sync()  # each run starts with no earlier run's writes pending: the engine is disk-bound here
    start = time.perf_counter()
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
    return took, int(err.rsplit("peak_kb=", 1)[1].split()[0])


def remove(ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    path = archive()
    print(f"archive: {path} ({path.stat().st_size / 1e6:.0f} MB compressed)", flush=True)
    label = f"LABEL {kit.TEST_LABEL}=1"
    theirs, ours, cli_rss = [], [], []
    with kit.running_platform() as p:  # a fresh manager: VmHWM is its peak since it started
        pid = int((p.home / "run" / "manager.pid").read_text())
        idle = status_kb(pid, "VmRSS")
        for n in range(1, RUNS + 1):
            took, _ = timed(["docker", "import", "--change", label, str(path), f"{REF}:docker"])
            theirs.append(took)
            remove(f"{REF}:docker")
            took, rss = timed([MYPAAS, "image", "import", str(path), f"{REF}:mypaas", "-c", label], env=p.env)
            ours.append(took)
            cli_rss.append(rss)
            remove(f"{REF}:mypaas")
            print(
                f"run {n}: docker import {theirs[-1]:.2f}s  mypaas image import {ours[-1]:.2f}s", flush=True
            )
        manager_peak = status_kb(pid, "VmHWM")
    print(f"median: docker import {median(theirs):.2f}s  mypaas image import {median(ours):.2f}s")
    print(
        f"manager: {idle / 1024:.0f} MB idle, peak {manager_peak / 1024:.0f} MB "
        f"(+{(manager_peak - idle) / 1024:.0f} MB); CLI peak {max(cli_rss) / 1024:.0f} MB"
    )
    peak = max(manager_peak, *cli_rss) / 1024
    print(f"import_ratio={median(ours) / median(theirs):.2f} peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
