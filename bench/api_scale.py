"""Benchmark: how the API and the reconcile loop grow with the number of apps. The apps are scaled to 0
(no instance runs). The first one is deployed through the real API server; the others are copies of its
rows made in the state store (the app, its release, its formation and its finished deploy operation:
what a deploy leaves), so that 10,000 apps take seconds to make, not an hour of deploys. The manager
reads the store on each request and each pass, so it serves the copies as it serves the first.
First 1,000, measured, then 10,000, measured again. At each size: the p99 latency of GET /api/v1/apps
(the whole listing) and of one reconcile pass with nothing to change.

Last line: list_p99_ms=<1k>/<10k> reconcile_ms=<1k>/<10k> (reconcile_ms is the p99 of 20 passes).
BENCH_SIZES changes the sizes (e.g. "1000" alone).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from pathlib import Path

import httpx
from _common import p99
from tests import kit

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,10000").split(",")]
LISTS = int(os.environ.get("BENCH_LISTS", "200"))
COMPOSE = "services:\n  web:\n    image: mypaas-test/web:v1\n    ports: ['80']\n    deploy: {replicas: 0}\n"
FIRST = "scale00000"


def deploy_first(http: httpx.Client) -> None:
    """The app the others copy, deployed through the API; returns once its deploy finished."""
    r = http.post(f"/apps/{FIRST}/deploys", json={"compose": COMPOSE})
    if r.status_code != 202:
        raise SystemExit(f"deploy of {FIRST} answered {r.status_code}: {r.text}")
    done = http.get(f"/operations/{r.json()['id']}", params={"wait": 60}).json()
    if done["status"] != "succeeded":
        raise SystemExit(f"deploy of {FIRST} ended {done['status']}: {done.get('message')}")


def _columns(db: sqlite3.Connection, table: str, *, but: tuple[str, ...]) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})") if row[1] not in but]


def grow(state_db: Path, have: int, size: int) -> None:
    """Copy the first app's rows into apps ``have`` .. ``size - 1``, in one transaction."""
    start = time.perf_counter()
    db = sqlite3.connect(state_db, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        (first_id,) = db.execute("SELECT id FROM apps WHERE name = ?", (FIRST,)).fetchone()
        apps = _columns(db, "apps", but=("id", "name", "operation_id"))
        releases = _columns(db, "releases", but=("id", "app_id"))
        formation = _columns(db, "formation", but=("app_id",))
        operations = _columns(db, "operations", but=("id", "app"))
        for n in range(max(have, 1), size):
            name = f"scale{n:05d}"
            op_id = uuid.uuid4().hex
            app_id = db.execute(
                f"INSERT INTO apps (name, operation_id, {', '.join(apps)}) "
                f"SELECT ?, NULL, {', '.join(apps)} FROM apps WHERE id = ?",
                (name, first_id),
            ).lastrowid
            for table, cols in (("releases", releases), ("formation", formation)):
                db.execute(
                    f"INSERT INTO {table} (app_id, {', '.join(cols)}) "
                    f"SELECT ?, {', '.join(cols)} FROM {table} WHERE app_id = ?",
                    (app_id, first_id),
                )
            db.execute(
                f"INSERT INTO operations (id, app, {', '.join(operations)}) "
                f"SELECT ?, ?, {', '.join(operations)} FROM operations WHERE app = ?",
                (op_id, name, FIRST),
            )
        db.execute("COMMIT")
    finally:
        db.close()
    print(f"copied {size - max(have, 1)} apps (now {size}) in {time.perf_counter() - start:.1f}s", flush=True)


def first_pass(http: httpx.Client, size: int) -> None:
    """The copies' first pass: their releases read, their routes pushed (with HTTPS on, Caddy's internal
    CA issues a certificate per new host then). Passes are run until one goes through."""
    start = time.perf_counter()
    for _ in range(60):
        r = http.post("/reconcile")
        if r.status_code == 200:
            took = time.perf_counter() - start
            print(f"{size} apps: first pass {r.json()['pass_ms']:.0f} ms, through after {took:.1f} s")
            return
        print(f"{size} apps: a pass answered {r.status_code}: {r.text}", flush=True)
        time.sleep(1)
    raise SystemExit(f"{size} apps: no pass went through")


def measure(http: httpx.Client, size: int) -> tuple[float, float]:
    """The p99 (ms) of listing every app, and of a reconcile pass with nothing to do."""
    first_pass(http, size)
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
        with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=300) as http:
            deploy_first(http)
            have = 1
            for size in SIZES:
                grow(p.home / "state.db", have, size)
                have = size
                list_ms, pass_ms = measure(http, size)
                lists.append(f"{list_ms:.1f}")
                passes.append(f"{pass_ms:.1f}")
    print(f"list_p99_ms={'/'.join(lists)} reconcile_ms={'/'.join(passes)}")


if __name__ == "__main__":
    main()
