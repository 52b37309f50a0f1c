"""The fake MachineDriver passes the machine driver contract (tests/contract/machine_driver_contract.py);
so does a fake account that cannot destroy, refusing with NotSupported. Its machines are FakeHosts:
there is no sshd to log in to, so the SSH login test is skipped (``ssh_check = False``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mypaas.iaas.base import DriverCapabilities, HostTarget, MachineDriver, MachineRequest
from mypaas.iaas.fake_machines import FakeCloud, FakeMachineDriver
from tests.contract.machine_driver_contract import (
    KeyPair,
    MachineDriverContract,
    RequestFor,
    assert_ssh_reachable,
    make_key_pair,
)
from tests.kit import free_port


class TestFakeMachineDriver(MachineDriverContract):
    ssh_check = False
    ssh_skip_reason = "the fake's machines are in-memory FakeHosts: no sshd to log in to"
    half_way_step = "boot"

    @pytest.fixture
    def driver(self) -> MachineDriver:
        return FakeMachineDriver(account="contract", cloud=FakeCloud(password="s3cret"), password="s3cret")

    @pytest.fixture
    def machine_request(self, ssh_key: KeyPair) -> RequestFor:
        key = ssh_key.public
        return lambda name: MachineRequest(name, size="small", image="debian-12", ssh_public_key=key)

    def fail_after(self, driver: MachineDriver, step: str) -> None:
        assert isinstance(driver, FakeMachineDriver) and step == "boot"
        driver.cloud.fail_at, driver.cloud.fail_once = "address", True


class TestFakeThatCannotDestroy(TestFakeMachineDriver):
    @pytest.fixture
    def driver(self) -> MachineDriver:
        caps = DriverCapabilities(create_machines=True, destroy_machines=False)
        return FakeMachineDriver(account="nodestroy", cloud=FakeCloud(), capabilities=caps)

    def test_create_list_destroy_twice(self, *args: object, **kwargs: object) -> None:
        pytest.skip("this account cannot destroy (checked by test_what_it_cannot_do_is_not_supported)")


def test_the_ssh_check_fails_where_nothing_answers(tmp_path: Path) -> None:
    key = make_key_pair(tmp_path)
    assert key.private_path.stat().st_mode & 0o777 == 0o600 and key.public.startswith("ssh-ed25519 ")
    nowhere = HostTarget(driver="ssh", address="127.0.0.1", port=free_port(), machine_id="m")
    with pytest.raises(pytest.fail.Exception, match="with the request's key failed"):
        assert_ssh_reachable(nowhere, key.private_path, attempts=1)
