"""The contract every MachineDriver passes (vsphere, libvirt, openstack, the fake): check, sizes and
images, create -> a machine that answers SSH with the request's key -> listed -> destroyed (twice
is fine), bad sizes/images refused with nothing made, a creation failing half-way leaving nothing,
capability refusals.

A driver's test module subclasses ``MachineDriverContract`` (as ``TestXxxMachineDriver``) and
provides two pytest fixtures:

- ``driver``: a ready MachineDriver (an account on a running endpoint);
- ``machine_request``: a callable ``(name) -> MachineRequest`` with a valid size and image and
  ``ssh_public_key`` set; the suite's ``ssh_key`` fixture gives a fresh key pair to put there.

and implements ``fail_after(driver, step)`` (arrange that the next creation fails once it is past
``step``, with something already made) or skips in it with the reason. Class attributes:
``ssh_check = False`` skips the SSH login (give ``ssh_skip_reason``); ``half_way_step`` names the step
``fail_after`` gets. Every machine a test makes is destroyed at teardown, even when it fails.

How the manager builds a driver (iaas/catalog.py ``machine_driver``): ``cls(account=NAME, **options)``,
``options`` being a driver account's, secrets decrypted. The class declares ``OPTIONS`` (a mapping of
option name to help; `driver add` refuses any other) and ``SECRET_OPTIONS`` (stored encrypted; dotted
for a nested key, e.g. "cloud_config.auth.password"). Option values come from the CLI as strings
(``-o insecure=true``), except ``cloud_config``: `driver add --cloud NAME` sends the clouds.yaml entry
as a mapping with ``cloud`` = NAME. ``account`` is what the driver tags its machines with, so that
``machines()`` lists only that account's.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mypaas.errors import Conflict, InvalidSpec, NotSupported
from mypaas.iaas.base import (
    HostTarget,
    MachineCreateFailed,
    MachineDriver,
    MachineImage,
    MachineRequest,
    MachineSize,
)

RequestFor = Callable[[str], MachineRequest]


@dataclass(frozen=True)
class KeyPair:
    private_path: Path  # OpenSSH private key, mode 0600
    public: str  # the public half, one OpenSSH line ("ssh-ed25519 AAAA... comment")


def make_key_pair(directory: Path, name: str = "id_ed25519") -> KeyPair:
    """A fresh ed25519 key pair: the private half written 0600 in ``directory``."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path = directory / name
    path.touch(mode=0o600)
    path.write_bytes(private)
    path.chmod(0o600)
    return KeyPair(path, public.decode() + " mypaas-contract")


def assert_ssh_reachable(target: HostTarget, private_key_path: Path, *, attempts: int = 3) -> None:
    """Log in to ``target`` as ``target.user`` with the key, with the real ``ssh`` client (BatchMode:
    no password prompt), and run ``true``; fail with ssh's last line."""
    argv = [
        "ssh",
        "-i",
        str(private_key_path),
        "-p",
        str(target.port),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=15",
        f"{target.user}@{target.address}",
        "true",
    ]
    last = ""
    for _ in range(attempts):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0:
            return
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    pytest.fail(f"ssh {target.user}@{target.address}:{target.port} with the request's key failed: {last}")


def machine_name() -> str:
    """A short, unique name that every cloud accepts (lower case, digits, dashes)."""
    return f"mpct-{secrets.token_hex(3)}"


class MachineDriverContract:
    """The tests. Subclasses give the ``driver`` and ``machine_request`` fixtures (see the module)."""

    ssh_check: bool = True
    ssh_skip_reason: str = ""
    half_way_step: str = "boot"  # what fail_after gets: a step after which something exists

    def fail_after(self, driver: MachineDriver, step: str) -> None:
        """Make the next creation fail once it is past ``step``; or ``pytest.skip(reason)``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement fail_after or skip in it, naming why it cannot"
        )

    # -- fixtures -------------------------------------------------------------------------------------

    @pytest.fixture
    def ssh_key(self, tmp_path: Path) -> KeyPair:
        return make_key_pair(tmp_path)

    @pytest.fixture
    def made(self, driver: MachineDriver) -> Iterator[list[HostTarget]]:
        """The machines a test made (append each); destroyed at teardown whatever happened."""
        before = {t.machine_id for t in driver.machines()}
        targets: list[HostTarget] = []
        yield targets
        leftovers = [t for t in driver.machines() if t.machine_id not in before]
        for target in [*targets, *leftovers]:
            with contextlib.suppress(NotSupported):
                driver.destroy_machine(target)

    # -- the endpoint -----------------------------------------------------------------------------------

    def test_check_passes(self, driver: MachineDriver) -> None:
        driver.check()

    def test_capabilities_say_it_creates(self, driver: MachineDriver) -> None:
        caps = driver.capabilities
        assert caps.create_machines, "a MachineDriver creates machines"
        assert "create" in caps.names()
        assert ("destroy" in caps.names()) == caps.destroy_machines

    def test_sizes_are_well_formed(self, driver: MachineDriver) -> None:
        sizes = driver.sizes()
        assert sizes, "a driver offers at least one size"
        for size in sizes:
            assert isinstance(size, MachineSize)
            assert size.name and size.cpus > 0 and size.memory_mb > 0 and size.disk_gb >= 0
        assert len({s.name for s in sizes}) == len(sizes), "size names are unique"

    def test_images_are_well_formed(self, driver: MachineDriver) -> None:
        images = driver.images()
        assert images, "a driver offers at least one image"
        for image in images:
            assert isinstance(image, MachineImage) and image.name
        assert len({i.name for i in images}) == len(images), "image names are unique"

    # -- a machine's life -------------------------------------------------------------------------------

    def test_create_list_destroy_twice(
        self, driver: MachineDriver, machine_request: RequestFor, made: list[HostTarget]
    ) -> None:
        name = machine_name()
        target = driver.create_machine(machine_request(name))
        made.append(target)
        assert target.address and target.machine_id
        assert 0 < target.port < 65536 and target.user
        assert target.name == name, "a machine is named after its request (the orphan sweep matches it)"
        assert (target.machine_id, name) in {(t.machine_id, t.name) for t in driver.machines()}
        driver.destroy_machine(target)
        assert target.machine_id not in {t.machine_id for t in driver.machines()}
        driver.destroy_machine(target)  # already gone: not an error

    def test_the_machine_answers_ssh_with_the_requests_key(
        self,
        driver: MachineDriver,
        machine_request: RequestFor,
        ssh_key: KeyPair,
        made: list[HostTarget],
    ) -> None:
        if not self.ssh_check:
            pytest.skip(self.ssh_skip_reason or f"{type(self).__name__} has no machines to log in to")
        request = replace(machine_request(machine_name()), ssh_public_key=ssh_key.public)
        target = driver.create_machine(request)
        made.append(target)
        assert_ssh_reachable(target, ssh_key.private_path)

    def test_a_name_taken_is_a_conflict(
        self, driver: MachineDriver, machine_request: RequestFor, made: list[HostTarget]
    ) -> None:
        request = machine_request(machine_name())
        made.append(driver.create_machine(request))
        before = _ids(driver)
        with pytest.raises(Conflict):
            made.append(driver.create_machine(request))
        assert _ids(driver) == before

    # -- refusals ---------------------------------------------------------------------------------------

    def test_an_unknown_size_is_refused_and_nothing_made(
        self, driver: MachineDriver, machine_request: RequestFor, made: list[HostTarget]
    ) -> None:
        before = _ids(driver)
        request = replace(machine_request(machine_name()), size="no-such-size-xl")
        with pytest.raises(InvalidSpec) as caught:
            made.append(driver.create_machine(request))
        assert caught.value.field == "size" and "no-such-size-xl" in str(caught.value)
        assert _ids(driver) == before

    def test_an_unknown_image_is_refused_and_nothing_made(
        self, driver: MachineDriver, machine_request: RequestFor, made: list[HostTarget]
    ) -> None:
        before = _ids(driver)
        request = replace(machine_request(machine_name()), image="no-such-image-9")
        with pytest.raises(InvalidSpec) as caught:
            made.append(driver.create_machine(request))
        assert caught.value.field == "image" and "no-such-image-9" in str(caught.value)
        assert _ids(driver) == before

    def test_a_failure_half_way_leaves_nothing(
        self, driver: MachineDriver, machine_request: RequestFor, made: list[HostTarget]
    ) -> None:
        before = _ids(driver)
        name = machine_name()
        self.fail_after(driver, self.half_way_step)
        with pytest.raises(MachineCreateFailed) as caught:
            made.append(driver.create_machine(machine_request(name)))
        failure = caught.value
        assert failure.step and failure.name == name
        assert str(failure).startswith(f"creating {name} failed at {failure.step}: ")
        assert _ids(driver) == before

    def test_what_it_cannot_do_is_not_supported(self, driver: MachineDriver) -> None:
        caps = driver.capabilities
        if caps.destroy_machines:
            pytest.skip("this driver destroys machines: nothing to refuse")
        with pytest.raises(NotSupported):
            driver.destroy_machine(HostTarget(driver=driver.name, address="10.0.0.1", machine_id="x"))


def _ids(driver: MachineDriver) -> set[str | None]:
    return {t.machine_id for t in driver.machines()}
