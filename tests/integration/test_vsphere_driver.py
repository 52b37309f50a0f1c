"""The vsphere driver against VMware's vSphere simulator (vcsim, driven by pyvmomi as a vCenter is):
it passes the machine driver contract, its VMs being real hosts (tests/vcsim/harness.py gives each an
sshd with the keys of its guestinfo user data and an engine); a wrong password and a dead endpoint are
one line each."""

from __future__ import annotations

import pytest

from mypaas.iaas.base import DriverAuthFailed, DriverUnreachable, MachineDriver, MachineRequest
from mypaas.iaas.vsphere import VSphereDriver
from tests.contract.machine_driver_contract import KeyPair, MachineDriverContract, RequestFor
from tests.kit import free_port
from tests.vcsim.harness import Vcsim

pytestmark = pytest.mark.integration


class TestVSphereMachineDriver(MachineDriverContract):
    half_way_step = "power-on"

    @pytest.fixture
    def driver(self, vcsim: Vcsim) -> MachineDriver:
        return VSphereDriver(account="contract", **vcsim.options())

    @pytest.fixture
    def machine_request(self, ssh_key: KeyPair) -> RequestFor:
        key = ssh_key.public
        return lambda name: MachineRequest(name, size="small", image="debian-12", ssh_public_key=key)

    def fail_after(self, driver: MachineDriver, step: str) -> None:
        """Without RUN.container vcsim runs no container for the VM: powered on, it never gets an address."""
        assert isinstance(driver, VSphereDriver) and step == "power-on"
        driver.extra_config = {}
        driver.address_timeout = 2


def test_a_wrong_password_and_a_dead_endpoint_are_one_line(vcsim: Vcsim) -> None:
    wrong = VSphereDriver(account="x", **vcsim.options(password="not-it"))
    with pytest.raises(DriverAuthFailed, match=r"refused user 'mypaas': Login failure$"):
        wrong.check()
    dead = VSphereDriver(account="x", **vcsim.options(url=f"http://127.0.0.1:{free_port()}/sdk"))
    with pytest.raises(DriverUnreachable, match=r"unreachable: connection refused$"):
        dead.check()
