"""Benchmark: what the monitor costs the manager with 100 running containers.

Deploys 10 apps of 10 busybox `sleep` replicas through a test platform, waits until the sampler reads
all of them, then measures the manager process's CPU time (utime+stime from /proc/<pid>/stat) over a
60 s window at the default sampling interval, and its resident memory. Everything is removed after.

Last line: monitor_cpu_pct=<share of one core used by the manager> rss_mb=<resident MB>
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _common import ROOT
from tests import kit

APPS = int(os.environ.get("BENCH_APPS", "10"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "10"))
WINDOW_S = float(os.environ.get("BENCH_WINDOW_S", "60"))
IMAGE = "mypaas-test/sleeper:1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sampled(p: kit.Platform) -> int:
    text = p.raw("GET", "/metrics").text
    return sum(1 for line in text.splitlines() if line.startswith("mypaas_instance_memory_bytes{"))


def main() -> None:
    kit.busybox_image(IMAGE, cmd=("/bin/sleep", "3600"), expose=None)
    # the test kit's deploy timeout (12 s) is too short to start 100 containers at once
    with kit.running_platform(deploy_timeout_s=600) as p:
        for i in range(APPS):
            p.cli("deploy", f"bench{i}", "--image", IMAGE, check=True, timeout=600)
            p.cli("scale", f"bench{i}", f"web={REPLICAS}", check=True, timeout=600)
        want = APPS * REPLICAS
        kit.wait_until(lambda: sampled(p) >= want, timeout=300, interval=2)
        print(f"{want} instances sampled; measuring for {WINDOW_S:.0f}s", flush=True)
        pid = int((p.home / "run" / "manager.pid").read_text())
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(WINDOW_S)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        rss = rss_mb(pid)
        text = p.raw("GET", "/metrics").text
        rounds = next(
            line.split()[1] for line in text.splitlines() if line.startswith("mypaas_metrics_rounds ")
        )
        print(f"sampler rounds so far: {rounds}; instances sampled at the end: {sampled(p)}")
    print(f"(repo {ROOT})")
    print(f"monitor_cpu_pct={100 * (cpu1 - cpu0) / (t1 - t0):.2f} rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
