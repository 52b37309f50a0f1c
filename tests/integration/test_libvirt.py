"""The libvirt driver against a real libvirtd running qemu machines (software emulation, TCG: KVM guests
hang on these machines) on an isolated network, from the cached Debian base disk (tests/libvirt_kit.py).

A TCG machine takes one to two minutes to answer SSH here, so a run boots few: the contract suite's
three creations that boot are one test here (create, SSH with the request's key, listed, a second
creation of the name refused, destroyed twice), and the end-to-end test through the platform boots one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mypaas.errors import Conflict
from mypaas.iaas.base import DriverUnreachable, HostTarget, MachineDriver, MachineRequest
from mypaas.iaas.libvirt import LibvirtDriver
from tests import kit, libvirt_kit
from tests.contract.machine_driver_contract import (
    KeyPair,
    MachineDriverContract,
    RequestFor,
    assert_ssh_reachable,
    machine_name,
)

pytestmark = pytest.mark.integration

E2E_IMAGE = "mypaas-test/onvm:1"
E2E_COMPOSE = f"""services:
  web:
    image: {E2E_IMAGE}
    expose: [80]
    deploy:
      replicas: 1
      placement:
        constraints: [node.labels.e2e==vm1]
"""
ONE_BOOT = "booting a TCG machine takes minutes: covered by test_one_machine_whole_life (one boot per run)"


@pytest.fixture(scope="module")
def lab() -> Iterator[libvirt_kit.Lab]:
    with libvirt_kit.lab() as made:
        yield made


class TestLibvirtMachineDriver(MachineDriverContract):
    half_way_step = "boot"

    @pytest.fixture
    def driver(self, lab: libvirt_kit.Lab) -> MachineDriver:
        return LibvirtDriver(account="contract", **lab.options())

    @pytest.fixture
    def machine_request(self, ssh_key: KeyPair) -> RequestFor:
        key = ssh_key.public
        return lambda name: MachineRequest(name, size="small", image="debian-bookworm", ssh_public_key=key)

    def fail_after(self, driver: MachineDriver, step: str) -> None:
        assert isinstance(driver, LibvirtDriver)
        driver.fail_next_creation_after(step)  # the domain is defined and running: all must go

    def test_create_list_destroy_twice(self) -> None:  # type: ignore[override]
        pytest.skip(ONE_BOOT)

    def test_the_machine_answers_ssh_with_the_requests_key(self) -> None:  # type: ignore[override]
        pytest.skip(ONE_BOOT)

    def test_a_name_taken_is_a_conflict(self) -> None:  # type: ignore[override]
        pytest.skip(ONE_BOOT)

    def test_one_machine_whole_life(
        self,
        driver: MachineDriver,
        machine_request: RequestFor,
        ssh_key: KeyPair,
        made: list[HostTarget],
        lab: libvirt_kit.Lab,
    ) -> None:
        """The contract's three booting tests on one machine."""
        request = replace(machine_request(machine_name()), ssh_public_key=ssh_key.public)
        target = driver.create_machine(request)
        made.append(target)
        assert target.address.startswith(f"{lab.subnet}.") and target.machine_id == request.name
        assert target.host_key and target.host_key.startswith("SHA256:")
        assert_ssh_reachable(target, ssh_key.private_path)
        assert target.machine_id in {t.machine_id for t in driver.machines()}
        ids = {t.machine_id for t in driver.machines()}
        with pytest.raises(Conflict):
            made.append(driver.create_machine(request))
        assert {t.machine_id for t in driver.machines()} == ids
        driver.destroy_machine(target)
        assert target.machine_id not in {t.machine_id for t in driver.machines()}
        assert not [v for v in lab_volumes(driver) if v.startswith(request.name)], "its disks are deleted"
        driver.destroy_machine(target)  # already gone: not an error


def lab_volumes(driver: MachineDriver) -> list[str]:
    import libvirt

    assert isinstance(driver, LibvirtDriver)
    conn = libvirt.open(driver.uri)
    try:
        pool = conn.storagePoolLookupByName(driver.pool)
        pool.refresh(0)
        return list(pool.listVolumes())
    finally:
        conn.close()


def test_a_dead_endpoint_is_one_line() -> None:
    with pytest.raises(
        DriverUnreachable, match=r"^libvirt endpoint qemu\+tcp://127.0.0.1:1/system unreachable: "
    ):
        LibvirtDriver(uri="qemu+tcp://127.0.0.1:1/system").check()


def test_host_create_runs_an_app_there_and_destroy_deletes_it(lab: libvirt_kit.Lab, tmp_path: Path) -> None:
    """`driver add` a libvirt account, `host create` one machine: it boots, is bootstrapped over SSH,
    joins the Swarm and runs an app's replica that answers through the router; `host destroy` deletes
    the domain and its disks."""
    kit.busybox_image(E2E_IMAGE, files={"www/index.html": "served from a libvirt machine"})
    compose = tmp_path / "compose.yml"
    compose.write_text(E2E_COMPOSE)
    account = LibvirtDriver(account="lab", **lab.options())
    with kit.swarm_platform(lab.gateway, deploy_timeout_s=300) as p:  # a pull under emulation is slow
        options = [f"--option={k}={v}" for k, v in lab.options().items() if k != "uri"]
        p.cli("driver", "add", "lab", "--type", "libvirt", "--uri", lab.uri, *options, check=True)
        made = p.cli("host", "create", "vm1", "--driver", "lab", "--label", "e2e=vm1", timeout=1200)
        assert made.code == 0, made
        host = {h["name"]: h for h in p.cli("host", "ls", "--json", check=True).json()}["vm1"]
        assert host["address"].startswith(f"{lab.subnet}.") and host["state"] == "ready", host
        assert [t.machine_id for t in account.machines()] == ["vm1"]
        p.cli("deploy", "onvm", "-f", str(compose), check=True, timeout=300)
        ready = p.wait_ready("onvm", 1, timeout=300)
        assert ready[0]["host"] == "vm1"
        p.wait_for("onvm", 200, "served from a libvirt machine", timeout=60)
        p.cli("rm", "onvm", "--yes", check=True)
        gone = p.cli("host", "destroy", "vm1", timeout=300)
        assert gone.code == 0, gone
        assert account.machines() == []
        assert not [v for v in lab_volumes(account) if v.startswith("vm1-")], "its disks are deleted"
        assert "vm1" not in {h["name"] for h in p.cli("host", "ls", "--json", check=True).json()}
