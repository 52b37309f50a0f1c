"""The libvirt driver against a real libvirtd running qemu machines (software emulation, TCG: KVM guests
hang on these machines) on an isolated network, from the cached Debian base disk (tests/libvirt_kit.py).

A TCG machine takes one to two minutes to answer SSH here, so a run boots few: the contract suite's
three creations that boot are one test here (create, SSH with the request's key, listed, a second
creation of the name refused, destroyed twice), and the end-to-end test through the platform boots one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from mypaas.errors import Conflict
from mypaas.iaas.base import DriverUnreachable, MachineDriver, MachineRequest
from mypaas.iaas.libvirt import LibvirtDriver
from tests import libvirt_kit
from tests.contract.machine_driver_contract import (
    KeyPair,
    MachineDriverContract,
    RequestFor,
    assert_ssh_reachable,
    machine_name,
)

pytestmark = pytest.mark.integration

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
        self, driver: MachineDriver, machine_request: RequestFor, ssh_key: KeyPair, made: list
    ) -> None:
        """The contract's three booting tests on one machine."""
        request = replace(machine_request(machine_name()), ssh_public_key=ssh_key.public)
        target = driver.create_machine(request)
        made.append(target)
        assert target.address.startswith(f"{libvirt_kit.SUBNET}.") and target.machine_id == request.name
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
