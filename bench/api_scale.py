"""Benchmark: 1,000 apps in the state store (scaled to 0, so no instance runs): p99 latency of
GET /api/v1/apps through the real API server, and of one reconcile pass with nothing to change.

Last line: list_p99_ms=<x> reconcile_ms=<y> (reconcile_ms is the p99 of 20 passes).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from _common import p99
from tests import kit

APPS = int(os.environ.get("BENCH_APPS", "1000"))
COMPOSE = "services:\n  web:\n    image: mypaas-test/web:v1\n    ports: ['80']\n    deploy: {replicas: 0}\n"


def main() -> None:
    kit.web_image("mypaas-test/web:v1", "version one")
    with kit.running_platform() as p:
        headers = {"Authorization": f"Bearer {p.token}"}
        base = f"http://127.0.0.1:{p.api_port}/api/v1"
        with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=30) as http:

            def deploy(n: int) -> None:
                http.post(f"/apps/scale{n:04d}/deploys", json={"compose": COMPOSE}).raise_for_status()

            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(deploy, range(APPS)))
            print(f"created {APPS} apps in {time.perf_counter() - start:.1f}s", flush=True)
            kit.wait_until(lambda: all(a["operation"] is None for a in http.get("/apps").json()), timeout=120)
            times = []
            for _ in range(200):
                t0 = time.perf_counter()
                r = http.get("/apps")
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and len(r.json()) == APPS
            passes = []
            for _ in range(20):
                r = http.post("/reconcile")
                passes.append(float(r.json()["pass_ms"]))
    print(f"GET /apps: median {sorted(times)[len(times) // 2]:.1f} ms, p99 {p99(times):.1f} ms")
    print(f"reconcile pass: median {sorted(passes)[len(passes) // 2]:.1f} ms, p99 {p99(passes):.1f} ms")
    print(f"list_p99_ms={p99(times):.1f} reconcile_ms={p99(passes):.1f}")


if __name__ == "__main__":
    main()
