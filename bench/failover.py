"""Benchmark: failover. A 3-replica app across 3 hosts (netns hosts added over SSH, Swarm), a steady
request loop through the router; then one host dies (every process of it killed: engine, containers,
sshd). Measures the time until every request succeeds again, and until the app is back at 3 healthy
replicas on the hosts left.

Last line: recovery_s=<x> failed_requests=<n> of <m> (recovery_s: until 3 healthy replicas again).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from _common import ok  # also puts the repo on sys.path for tests.kit
from tests import kit

COMPOSE = """services:
  web:
    image: mypaas-test/failover:1
    expose: [80]
    deploy:
      replicas: 3
      placement:
        constraints: [node.role==worker]
"""


def ready_hosts(p: kit.Platform) -> list[str]:
    return sorted(i["host"] for i in p.instances("failover") if i["ready"])


def main() -> None:
    kit.busybox_image("mypaas-test/failover:1", files={"www/index.html": "up"})
    with kit.cluster_platform(3, prefix="mpf", subnet="10.200.4") as (p, cluster):
        compose = Path(tempfile.mkdtemp()) / "compose.yml"
        compose.write_text(COMPOSE)
        p.cli("deploy", "failover", "-f", str(compose), check=True)
        kit.wait_until(lambda: len(ready_hosts(p)) == 3, timeout=60)
        outcomes: list[tuple[float, bool]] = []
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                outcomes.append((time.perf_counter(), ok(p.router_port, "failover.localhost", timeout=5)))
                time.sleep(0.01)

        worker = threading.Thread(target=loop)
        worker.start()
        time.sleep(2)
        victim = next(h for h in cluster.hosts if h.name in ready_hosts(p))
        killed_at = time.perf_counter()
        victim.kill_host()
        back: float | None = None
        while time.perf_counter() - killed_at < 120:
            on = ready_hosts(p)
            if len(on) == 3 and victim.name not in on:
                back = time.perf_counter() - killed_at
                break
            time.sleep(0.05)
        time.sleep(2)
        stop.set()
        worker.join()
        if back is None:
            raise SystemExit("the app was not back at 3 healthy replicas within 120 s")
        after = [(t, good) for t, good in outcomes if t >= killed_at]
        failed = [t for t, good in after if not good]
        requests_s = failed[-1] - killed_at if failed else 0.0
        print(f"killed {victim.name}: every request succeeds again after {requests_s:.2f}s", flush=True)
        print(f"3 healthy replicas again after {back:.2f}s", flush=True)
        p.cli("rm", "failover", "--yes")
    print(f"recovery_s={back:.2f} failed_requests={len(failed)} of {len(outcomes)}")


if __name__ == "__main__":
    main()
