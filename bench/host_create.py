"""Benchmark: `mypaas host create` until the new host runs an app replica that answers through the
router, per machine driver that runs on this machine: the driver makes the machine and waits for its
address and SSH, the manager bootstraps it (engine, registry trust, Swarm join), then a deploy
constrained to the new host (by a label given at creation) until its replica answers.

- vsphere: VMware's simulator (vcsim, tests/vcsim), its VM a real host made by the test harness;
- libvirt: a qemu machine (software emulation, TCG) on an isolated libvirt network, from the cached
  base disk (tests/libvirt_kit.py; it starts libvirtd when it is not running).

A driver whose parts are missing here is skipped with a note ("n/a"). Last line:
vsphere_s=<x> libvirt_s=<y>
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _common
from tests import kit

IMAGE = "mypaas-test/hcreate:1"
COMPOSE = """services:
  web:
    image: {image}
    expose: [80]
    deploy:
      replicas: 1
      placement:
        constraints: [node.labels.bench=={label}]
"""


def time_host_create(p: kit.Platform, account: str, name: str) -> float:
    """Seconds from `host create NAME --driver ACCOUNT` to a replica on it answering via the router."""
    compose = Path(tempfile.mkdtemp()) / "compose.yml"
    compose.write_text(COMPOSE.format(image=IMAGE, label=name))
    start = time.perf_counter()
    p.cli("host", "create", name, "--driver", account, "--label", f"bench={name}", check=True, timeout=600)
    created = time.perf_counter() - start
    subprocess.run(
        [_common.MYPAAS, "deploy", "hcreate", "-f", str(compose)], env=p.env, check=True, capture_output=True
    )
    _common.until(lambda: p.get("hcreate")[0] == 200, timeout=180, interval=0.05)
    total = time.perf_counter() - start
    print(f"  {account}: host create {created:.2f}s, first replica answering {total:.2f}s", flush=True)
    p.cli("rm", "hcreate", "--yes")
    p.cli("host", "destroy", name, check=True, timeout=300)
    return total


def vsphere() -> str:
    from tests.vcsim.harness import build, running_vcsim

    try:
        build()
    except RuntimeError as exc:
        print(f"vsphere: skipped, vcsim cannot be built here ({exc})", flush=True)
        return "n/a"
    with running_vcsim(kit.free_port()) as sim, kit.swarm_platform(kit.host_address()) as p:
        password = Path(p.home) / "vcsim-password"
        password.write_text(sim.password)
        given = ("url", "user", "password")
        options = [f"--option={k}={v}" for k, v in sim.options().items() if k not in given]
        p.cli(
            "driver", "add", "vcsim", "--type", "vsphere", "--url", sim.url, "--user", sim.user,
            "--password-file", str(password), *options, check=True,
        )  # fmt: skip
        return f"{time_host_create(p, 'vcsim', 'bench-vs1'):.2f}"


def libvirt() -> str:
    from tests import libvirt_kit

    missing = libvirt_kit.missing_parts()
    if missing:
        print(f"libvirt: skipped, missing here: {', '.join(missing)} (scripts/install.sh --test)", flush=True)
        return "n/a"
    # a pull and a container start under emulation take longer than the default deploy timeout
    with libvirt_kit.lab() as lab, kit.swarm_platform(lab.gateway, deploy_timeout_s=300) as p:
        options = [f"--option={k}={v}" for k, v in lab.options().items() if k != "uri"]
        p.cli("driver", "add", "kvm", "--type", "libvirt", "--uri", lab.uri, *options, check=True)
        return f"{time_host_create(p, 'kvm', 'bench-lv1'):.2f}"


DRIVERS: dict[str, Callable[[], str]] = {"vsphere": vsphere, "libvirt": libvirt}


def main() -> None:
    kit.busybox_image(IMAGE, files={"www/index.html": "made by host create"})
    results = {name: run() for name, run in DRIVERS.items()}
    print(" ".join(f"{name}_s={value}" for name, value in results.items()))


if __name__ == "__main__":
    main()
