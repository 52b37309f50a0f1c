"""Benchmark: `mypaas deploy --image` of a tiny prebuilt image until its route answers 200 through the
router, against `docker run -p` + polling the same image, in the same run.

Each run of ours also prints its timeline: where the time went between the CLI's start and the first
200, from what the product and the engine record themselves (the operation's and the release's times,
the engine's events for the app's network and container, the operation's end once its route is
pushed), not from timers placed around sleeps. The median of each step is printed after the runs.

Last line: deploy_ratio=<mypaas/raw> (medians over several runs; the CLI's start-up counts).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections import defaultdict
from typing import Any

from _common import MYPAAS, durations, median, until
from tests import kit

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
IMAGE = "mypaas-test/web:v1"
# the timeline's steps, in order: (name, what ends it)
STEPS = (
    ("cli+api", "the operation is recorded (CLI start, POST, validation)"),
    ("record", "the release is recorded"),
    ("network", "the engine created the app's network (absent: made earlier)"),
    ("pickup", "the engine created the container (reconcile pickup, request building)"),
    ("start", "the engine started it"),
    ("ready+route", "the operation succeeded: probed ready and the route pushed"),
    ("cli exit", "the CLI saw it and exited"),
    ("first 200", "the router answered 200"),
)


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


def engine_times(app: str, since: float, until_: float) -> dict[str, float]:
    """When the engine created the app's network and created and started its container (epoch s)."""
    seen: dict[str, float] = {}
    client = kit.docker_client()
    try:
        events = list(client.api.events(since=int(since), until=int(until_) + 1, decode=True))
    finally:
        client.close()
    for ev in events:
        name = ((ev.get("Actor") or {}).get("Attributes") or {}).get("name", "")
        at = ev["timeNano"] / 1e9
        if at < since:
            continue
        if ev.get("Type") == "network" and ev.get("Action") == "create" and name == f"mypaas_{app}":
            seen.setdefault("network", at)
        elif ev.get("Type") == "container" and name.startswith(f"{app}-"):
            if ev.get("Action") == "create":
                seen.setdefault("pickup", at)
            elif ev.get("Action") == "start":
                seen.setdefault("start", at)
    return seen


def timeline(
    p: kit.Platform, app: str, op_id: str, start: float, exited: float, served: float
) -> dict[str, float]:
    """Seconds each step took, from the records (``start``, ``exited``, ``served``: epoch s)."""
    op = p.api("GET", f"/api/v1/operations/{op_id}")
    release = p.api("GET", f"/api/v1/apps/{app}/releases")[0]
    points = {
        "cli+api": op["created_at"],
        "record": release["created_at"],
        **engine_times(app, start, served),
        "ready+route": op["finished_at"],
        "cli exit": exited,
        "first 200": served,
    }
    return durations(STEPS, points, start)


def mypaas_once(p: kit.Platform, n: int) -> tuple[float, dict[str, float]]:
    app = f"bench{n}-{os.getpid()}"
    wall, start = time.time(), time.perf_counter()
    out = subprocess.run(
        [MYPAAS, "deploy", app, "--image", IMAGE, "--port", "80", "--json"],
        env=p.env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    exited = wall + time.perf_counter() - start
    until(lambda: answers(p.router_port, f"{app}.localhost"))
    took = time.perf_counter() - start
    op_id = json.loads(out)["operation"]["id"]
    steps = timeline(p, app, op_id, wall, exited, wall + took)
    p.cli("rm", app, "--yes")
    return took, steps


def show(steps: dict[str, Any]) -> str:
    return "  ".join(f"{name} {steps[name] * 1000:.0f}" for name, _ in STEPS if name in steps)


def main() -> None:
    kit.web_image(IMAGE, "version one")
    raw_once()  # warm the engine's caches for both sides alike
    with kit.running_platform() as p:
        mypaas_once(p, 0)
        raw, ours = [], []
        steps: dict[str, list[float]] = defaultdict(list)
        for n in range(1, RUNS + 1):
            raw.append(raw_once())
            took, run_steps = mypaas_once(p, n)
            ours.append(took)
            for name, s in run_steps.items():
                steps[name].append(s)
            print(f"run {n}: docker run {raw[-1]:.3f}s  mypaas deploy {took:.3f}s", flush=True)
            print(f"  timeline (ms): {show(run_steps)}", flush=True)
    print(f"median: docker run {median(raw):.3f}s  mypaas deploy {median(ours):.3f}s")
    print("median timeline (ms):")
    for name, what in STEPS:
        if name in steps:
            print(f"  {name:<12} {median(steps[name]) * 1000:6.0f}  {what}")
    print(f"deploy_ratio={median(ours) / median(raw):.2f}")


if __name__ == "__main__":
    main()
