"""Benchmark: the manager killed with SIGKILL at random moments of 50 operations (deploys, config changes,
scales) spread over three apps. After each kill it is started again (`mypaas up`) and the bench waits for
convergence: each app's newest recorded release is the one it runs and the router serves (its image
and config var in the answer), exactly the desired instances run (all ready, all answering through the
router), and no orphan (a container labelled for the platform that no app's current release claims).

Last line: converged=<k>/50 max_converge_s=<x> (seconds from the kill until converged, restart included).
Options: --ops N (50), --seed S (random), --timeout S (120, per kill).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from _common import ROOT  # noqa: F401 - puts the repo on sys.path for tests.kit
from tests import kit

APPS = ("chaos-a", "chaos-b", "chaos-c")
IMAGES = {"mypaas-test/chaos:alpha": "alpha", "mypaas-test/chaos:beta": "beta"}
KINDS = ("deploy", "deploy", "config", "config", "scale")  # deploys and config changes make releases


def make_images() -> None:
    """Web servers answering "<WORD> <$MARK>" on / and their hostname on /id.html."""
    for tag, word in IMAGES.items():
        kit.busybox_image(
            tag,
            files={"www/index.html": ""},
            cmd=(
                "/bin/sh",
                "-c",
                f'echo "{word} $MARK" > /www/index.html; hostname > /www/id.html; '
                "exec httpd -f -p 80 -h /www",
            ),
        )


@dataclass
class Op:
    kind: str
    app: str
    arg: str

    def __str__(self) -> str:
        return f"{self.kind} {self.app} {self.arg}"


def random_op(rng: random.Random, n: int) -> Op:
    kind, app = rng.choice(KINDS), rng.choice(APPS)
    if kind == "deploy":
        return Op(kind, app, rng.choice(list(IMAGES)))
    if kind == "config":
        return Op(kind, app, f"MARK=op{n}")
    return Op(kind, app, f"web={rng.randint(1, 3)}")


def send(p: kit.Platform, op: Op) -> None:
    """Start the operation through the API (the answer may never come: the manager may be killed)."""
    try:
        if op.kind == "deploy":
            p.raw("POST", f"/api/v1/apps/{op.app}/deploys", json={"image": op.arg, "port": 80})
        elif op.kind == "config":
            key, _, value = op.arg.partition("=")
            p.raw("PATCH", f"/api/v1/apps/{op.app}/config", json={"set": {key: value}, "unset": []})
        else:
            service, _, count = op.arg.partition("=")
            p.raw("PUT", f"/api/v1/apps/{op.app}/scale", json={"replicas": {service: int(count)}})
    except httpx.HTTPError:
        pass  # killed before it answered: the operation was recorded, or not at all


def problems(p: kit.Platform) -> list[str]:
    """What keeps the platform from having converged (nothing: converged)."""
    found: list[str] = []
    claimed: dict[str, int] = {}
    for app in APPS:
        found += app_problems(p, app, claimed)
    label = f"mypaas.platform={p.platform_id}"
    for c in kit.docker_client().containers.list(all=True, filters={"label": label}):
        labels = c.labels
        owner, release = labels.get("mypaas.app", ""), labels.get("mypaas.release", "")
        if claimed.get(owner) != int(release or 0) or c.status != "running":
            found.append(f"orphan {c.name} ({owner} v{release}, {c.status})")
    return found


def app_problems(p: kit.Platform, app: str, claimed: dict[str, int]) -> list[str]:
    releases = p.api("GET", f"/api/v1/apps/{app}/releases")
    newest = max(releases, key=lambda r: r["version"])
    info = p.api("GET", f"/api/v1/apps/{app}")
    claimed[app] = newest["version"]
    if (info["release"], info["target_release"]) != (newest["version"], newest["version"]):
        return [
            f"{app}: runs v{info['release']} (target v{info['target_release']}), newest v{newest['version']}"
        ]
    want = info["services"]["web"]["replicas"]
    insts = p.instances(app)
    if len(insts) != want or not all(i["ready"] and i["release"] == newest["version"] for i in insts):
        shown = [(i["release"], i["ready"]) for i in insts]
        return [f"{app}: wants {want} ready instances of v{newest['version']}, has {shown}"]
    body = f"{IMAGES[newest['images']['web']['image']]} {newest['config'].get('MARK', '')}"
    status, text = p.get(app)
    if (status, text.strip()) != (200, body):
        return [f"{app}: the router answers {status} {text.strip()!r}, not {body!r}"]
    running = {c.attrs["Config"]["Hostname"] for c in containers_of(p, app)}
    answering = {p.get(app, "/id.html")[1].strip() for _ in range(6 * want)}
    if answering != running:
        return [
            f"{app}: the router reaches {sorted(answering)}, the running containers are {sorted(running)}"
        ]
    return []


def containers_of(p: kit.Platform, app: str) -> list[Any]:
    labels = [f"mypaas.platform={p.platform_id}", f"mypaas.app={app}"]
    return list(kit.docker_client().containers.list(filters={"label": labels}))


def converge(p: kit.Platform, timeout: float) -> list[str]:
    """Wait until nothing keeps the platform from having converged; answer what still does at the end."""
    deadline = time.monotonic() + timeout
    left = ["not checked yet"]
    while time.monotonic() < deadline:
        try:
            left = problems(p)
        except (AssertionError, httpx.HTTPError, KeyError) as exc:  # an answer in the middle of a change
            left = [f"{type(exc).__name__}: {exc}"]
        if not left:
            return []
        time.sleep(0.2)
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--seed", type=int, default=random.randrange(1_000_000))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}", flush=True)
    make_images()
    converged, slowest = 0, 0.0
    with kit.running_platform() as p:
        for app in APPS:
            p.cli("deploy", app, "--image", next(iter(IMAGES)), "--port", "80", check=True)
            p.cli("config", "set", app, "MARK=start", check=True)
        assert not converge(p, args.timeout), "the apps did not start"
        for n in range(1, args.ops + 1):
            op = random_op(rng, n)
            delay = rng.uniform(0.0, 3.0)
            sender = threading.Thread(target=send, args=(p, op))
            sender.start()
            time.sleep(delay)
            killed = time.monotonic()
            p.kill_manager()
            sender.join()
            p.up()
            restarted = time.monotonic() - killed
            left = converge(p, args.timeout)
            took = time.monotonic() - killed
            if left:
                print(f"op {n}/{args.ops}: {op}, killed after {delay:.2f}s: NOT converged: {'; '.join(left)}")
            else:
                converged += 1
                slowest = max(slowest, took)
                print(
                    f"op {n}/{args.ops}: {op}, killed after {delay:.2f}s: converged in {took:.1f}s "
                    f"(the manager answered after {restarted:.1f}s)",
                    flush=True,
                )
        for app in APPS:
            p.cli("rm", app, "--yes")
    print(f"converged={converged}/{args.ops} max_converge_s={slowest:.1f}")


if __name__ == "__main__":
    main()
