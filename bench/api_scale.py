"""Benchmark: how the API and the reconcile loop grow with the number of apps. The apps are scaled to 0
(no instance runs), made through the real API server: first 1,000, measured, then 10,000, measured
again. At each size: the p99 latency of GET /api/v1/apps (the whole listing) and of one reconcile pass
with nothing to change.

Last line: list_p99_ms=<1k>/<10k> reconcile_ms=<1k>/<10k> (reconcile_ms is the p99 of 20 passes).
BENCH_SIZES changes the sizes (e.g. "1000" alone).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from _common import p99
from tests import kit

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000").split(",")]
LISTS = int(os.environ.get("BENCH_LISTS", "200"))
COMPOSE = "services:\n  web:\n    image: mypaas-test/web:v1\n    ports: ['80']\n    deploy: {replicas: 0}\n"


def grow(http: httpx.Client, have: int, size: int) -> None:
    """Deploy apps ``have`` .. ``size - 1``; wait until no operation runs."""

    def deploy(n: int) -> None:
        r = http.post(f"/apps/scale{n:05d}/deploys", json={"compose": COMPOSE})
        if r.status_code != 202:
            raise SystemExit(f"deploy of app {n} answered {r.status_code}: {r.text}")

    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(deploy, range(have, size)))
    print(f"created {size - have} apps (now {size}) in {time.perf_counter() - start:.1f}s", flush=True)
    kit.wait_until(lambda: all(a["operation"] is None for a in http.get("/apps").json()), timeout=600)


def measure(http: httpx.Client, size: int) -> tuple[float, float]:
    """The p99 (ms) of listing every app, and of a reconcile pass with nothing to do."""
    times = []
    for _ in range(LISTS):
        t0 = time.perf_counter()
        r = http.get("/apps")
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and len(r.json()) == size
    passes = [float(http.post("/reconcile").json()["pass_ms"]) for _ in range(20)]
    print(
        f"{size} apps: GET /apps median {sorted(times)[len(times) // 2]:.1f} ms, p99 {p99(times):.1f} ms; "
        f"reconcile pass median {sorted(passes)[len(passes) // 2]:.1f} ms, p99 {p99(passes):.1f} ms",
        flush=True,
    )
    return p99(times), p99(passes)


def main() -> None:
    kit.web_image("mypaas-test/web:v1", "version one")
    lists, passes = [], []
    with kit.running_platform() as p:
        headers = {"Authorization": f"Bearer {p.token}"}
        base = f"http://127.0.0.1:{p.api_port}/api/v1"
        with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=60) as http:
            have = 0
            for size in SIZES:
                grow(http, have, size)
                have = size
                list_ms, pass_ms = measure(http, size)
                lists.append(f"{list_ms:.1f}")
                passes.append(f"{pass_ms:.1f}")
    print(f"list_p99_ms={'/'.join(lists)} reconcile_ms={'/'.join(passes)}")


if __name__ == "__main__":
    main()
