"""The openstack driver passes the machine driver contract against the OpenStack API simulator
(tests/openstack_sim.py: Keystone, Nova, Glance and Neutron answering as their API reference's samples
do), driven by the unmodified openstacksdk. It has not run against a live cloud. The simulator's
servers are records, not machines: the SSH checks are off (``wait_ssh=False``, ``ssh_check = False``).
After each test the simulator holds no server, port or floating IP: nothing was left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mypaas.iaas.base import MachineDriver, MachineRequest
from mypaas.iaas.openstack import OpenStackDriver
from tests.contract.machine_driver_contract import KeyPair, MachineDriverContract, RequestFor
from tests.openstack_sim import Cloud, Simulator, running


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running() as simulator:
        yield simulator


class TestOpenStackMachineDriver(MachineDriverContract):
    ssh_check = False
    ssh_skip_reason = "the OpenStack simulator's servers are API records: no machine, no sshd behind them"
    half_way_step = "server"
    cloud: Cloud

    @pytest.fixture
    def driver(self, sim: Simulator) -> Iterator[MachineDriver]:
        self.cloud = sim.cloud = Cloud()  # a fresh cloud for each test, on the same server
        yield OpenStackDriver(
            account="contract",
            wait_ssh=False,
            auth_url=sim.auth_url,
            username="demo",
            password="secret",
            project_name="demo",
            network="private",
            floating_network="public",
            flavor="m1.small",
            image="debian-12",
        )
        assert sim.cloud.leftovers() == {"servers": [], "ports": [], "floating_ips": []}

    @pytest.fixture
    def machine_request(self, ssh_key: KeyPair) -> RequestFor:
        key = ssh_key.public
        return lambda name: MachineRequest(name, size="m1.tiny", image="debian-12", ssh_public_key=key)

    def fail_after(self, driver: MachineDriver, step: str) -> None:
        """The next server goes to ERROR once created (Nova's "No valid host"): it, its port and its
        floating IP (not made yet) must go."""
        assert step == "server"
        self.cloud.fault = "No valid host was found. There are not enough hosts available."
