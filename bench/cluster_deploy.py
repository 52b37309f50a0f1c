"""Benchmark: deploy of a 6-replica app on 3 hosts (netns hosts added over SSH, Swarm) until all
replicas answer through the router: `mypaas deploy` (image pushed to the platform registry, pulled
by every host by digest), until 6 instances are healthy and routed and a request succeeds.

Last line: deploy_s=<x> (the first deploy of the image: the hosts pull it); a redeploy (a new
release of the same image, which the hosts have) is printed above it.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import _common
from tests import kit

COMPOSE = """services:
  web:
    image: mypaas-test/cdeploy:1
    expose: [80]
    environment: {{RUN: "{run}"}}
    deploy:
      replicas: 6
      placement:
        constraints: [node.role==worker]
"""


def deploy(p: kit.Platform, run: int) -> float:
    compose = Path(tempfile.mkdtemp()) / "compose.yml"
    compose.write_text(COMPOSE.format(run=run))
    start = time.perf_counter()
    subprocess.run(
        [_common.MYPAAS, "deploy", "cdeploy", "-f", str(compose)], env=p.env, check=True, capture_output=True
    )

    def routed() -> bool:
        insts = [i for i in p.instances("cdeploy") if i["ready"] and i["release"] == run]
        return len(insts) == 6 and p.get("cdeploy")[0] == 200

    _common.until(routed, timeout=120, interval=0.05)
    return time.perf_counter() - start


def main() -> None:
    kit.busybox_image("mypaas-test/cdeploy:1", files={"www/index.html": "up"})
    with kit.cluster_platform(3, prefix="mpd", subnet="10.200.6") as (p, _):
        first = deploy(p, 1)
        hosts = sorted({i["host"] for i in p.instances("cdeploy")})
        print(f"first deploy: {first:.2f}s over {', '.join(hosts)}", flush=True)
        again = deploy(p, 2)
        print(f"redeploy (image already on the hosts): {again:.2f}s", flush=True)
        p.cli("rm", "cdeploy", "--yes")
    print(f"deploy_s={first:.2f}")


if __name__ == "__main__":
    main()
