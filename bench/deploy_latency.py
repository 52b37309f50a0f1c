"""Benchmark: `mypaas deploy --image` of a tiny prebuilt image until its route answers 200 through the
router, against `docker run -p` + polling the same image, in the same run.

Last line: deploy_ratio=<mypaas/raw> (medians over several runs; the CLI's start-up counts).
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time

from _common import MYPAAS, median, until
from tests import kit

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
IMAGE = "mypaas-test/web:v1"


def answers(port: int, host: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/", headers={"Host": host})
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def raw_once() -> float:
    port = kit.free_port()
    start = time.perf_counter()
    cid = subprocess.run(
        ["docker", "run", "-d", "--label", "mypaas.test=1", "-p", f"{port}:80", IMAGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    until(lambda: answers(port, "localhost"))
    took = time.perf_counter() - start
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=True)
    return took


def mypaas_once(p: kit.Platform, n: int) -> float:
    app = f"bench{n}-{os.getpid()}"
    start = time.perf_counter()
    subprocess.run(
        [MYPAAS, "deploy", app, "--image", IMAGE, "--port", "80"], env=p.env, check=True, capture_output=True
    )
    until(lambda: answers(p.router_port, f"{app}.localhost"))
    took = time.perf_counter() - start
    p.cli("rm", app, "--yes")
    return took


def main() -> None:
    kit.web_image(IMAGE, "version one")
    raw_once()  # warm the engine's caches for both sides alike
    with kit.running_platform() as p:
        mypaas_once(p, 0)
        raw, ours = [], []
        for n in range(1, RUNS + 1):
            raw.append(raw_once())
            ours.append(mypaas_once(p, n))
            print(f"run {n}: docker run {raw[-1]:.3f}s  mypaas deploy {ours[-1]:.3f}s", flush=True)
    print(f"median: docker run {median(raw):.3f}s  mypaas deploy {median(ours):.3f}s")
    print(f"deploy_ratio={median(ours) / median(raw):.2f}")


if __name__ == "__main__":
    main()
