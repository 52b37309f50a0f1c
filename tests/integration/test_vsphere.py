"""End to end on vSphere: a running platform, a `vsphere` driver account on VMware's simulator (vcsim,
tests/vcsim), `host create` -> a VM -> its guest IP -> the bootstrap over SSH -> the Swarm join -> an
app's replicas running and answering there -> `host destroy` removes the VM and its container. Bad
input first: a wrong password, an unknown size or image are one line each and leave nothing.

The VM is a container of this machine's engine that the test harness (not the product) gives an sshd
with the key of the VM's guestinfo user data and a Docker engine (tests/vcsim/harness.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mypaas.iaas.vsphere import VSphereDriver
from tests.kit import Platform, busybox_image, host_address, swarm_platform, wait_served, wait_until
from tests.vcsim.harness import Vcsim

pytestmark = pytest.mark.integration

IMAGE = "mypaas-test/vs-web:1"


def add_account(p: Platform, sim: Vcsim, name: str, password_file: Path) -> tuple[int, str]:
    options = [f"--option={k}={v}" for k, v in sim.options().items() if k not in ("url", "user", "password")]
    r = p.cli(
        "driver", "add", name, "--type", "vsphere", "--url", sim.url, "--user", sim.user,
        "--password-file", str(password_file), *options,
    )  # fmt: skip
    return r.code, r.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def host_names(p: Platform) -> set[str]:
    return {h["name"] for h in p.cli("host", "ls", "--json", check=True).json()}


def test_host_create_on_vsphere_runs_an_app_and_destroy_removes_the_vm(vcsim: Vcsim, tmp_path: Path) -> None:
    busybox_image(IMAGE, files={"www/index.html": "served from a vSphere VM"})
    wrong, right = tmp_path / "wrong.pw", tmp_path / "right.pw"
    wrong.write_text("not-the-password\n")
    right.write_text(vcsim.password + "\n")
    lab = VSphereDriver(account="lab", **vcsim.options())
    with swarm_platform(host_address()) as p:
        code, err = add_account(p, vcsim, "bad", wrong)
        assert code != 0 and "refused user 'mypaas'" in one_line(err)
        assert "bad" not in {a["name"] for a in p.cli("driver", "ls", "--json", check=True).json()}
        code, err = add_account(p, vcsim, "lab", right)
        assert code == 0, err

        for flag, value, said in (
            ("--size", "huge", "unknown size 'huge'"),
            ("--image", "nope", "unknown image"),
        ):
            r = p.cli("host", "create", "w0", "--driver", "lab", flag, value, timeout=120)
            assert r.code != 0 and said in one_line(r.err)
            assert vcsim.containers() == [] and lab.machines() == [] and "w0" not in host_names(p)

        p.cli("host", "create", "w1", "--driver", "lab", "--label", "vm=w1", check=True, timeout=300)
        [vm] = lab.machines()
        assert [h["address"] for h in p.cli("host", "ls", "--json").json() if h["name"] == "w1"] == [
            vm.address
        ]
        compose = tmp_path / "compose.yml"
        compose.write_text(
            json.dumps(
                {
                    "services": {
                        "web": {
                            "image": IMAGE,
                            "expose": [80],
                            "deploy": {"replicas": 2, "placement": {"constraints": ["node.labels.vm==w1"]}},
                        }
                    }
                }
            )
        )
        p.cli("deploy", "vsweb", "-f", str(compose), check=True, timeout=300)
        seen: list[list[str]] = []

        def both_on_w1() -> bool:
            seen.append(sorted(f"{i['host']}:{i['ready']}" for i in p.instances("vsweb")))
            return seen[-1] == ["w1:True", "w1:True"]

        try:
            wait_until(both_on_w1, timeout=120, interval=0.5)
        except AssertionError:
            raise AssertionError(f"the replicas are not both ready on w1: {seen[-1:]}") from None
        wait_served(p, "vsweb", "/", 200, "served from a vSphere VM", timeout=60)

        p.cli("host", "destroy", "w1", check=True, timeout=300)
        assert lab.machines() == [] and vcsim.containers() == []
        assert "w1" not in host_names(p)
