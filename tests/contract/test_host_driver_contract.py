"""One contract every iaas driver passes, the fake included (DESIGN.md): what its machines answer to a
command (exit code, stdout, stderr, input, timeouts), the typed errors of a host that cannot be reached,
refuses our key or shows a host key we do not know, and the capabilities it declares.

The real halves run the ``local`` driver on this machine and the ``ssh`` driver against a throwaway sshd
on 127.0.0.1 (tests/sshd.py, started once for the module, as root)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mypaas.errors import NotSupported
from mypaas.iaas import catalog
from mypaas.iaas.base import (
    CommandFailed,
    CommandResult,
    DriverCapabilities,
    HostAuthFailed,
    HostDriver,
    HostKeyMismatch,
    HostKeyUnknown,
    HostTarget,
    HostUnreachable,
    Machine,
    MachineRequest,
)
from mypaas.iaas.fake import FakeHost, FakeHostDriver, fake_fingerprint
from tests.kit import free_port
from tests.sshd import Sshd, running_sshd

HELLO = "hello from the host\n"


@dataclass
class Rig:
    """A driver; ``target``, a host it logs in to (its host key pinned); ``hello``, a file on that host
    holding HELLO. Remote drivers also give the host with nothing pinned (``unpinned``, whose key is
    ``host_key``), with a key it refuses (``stranger``), a target where no host answers
    (``unreachable``), and ``rekey``, which gives the host another host key and returns it."""

    driver: HostDriver
    target: HostTarget
    hello: str
    unpinned: HostTarget | None = None
    host_key: str = ""
    stranger: HostTarget | None = None
    unreachable: HostTarget | None = None
    rekey: Callable[[], str] | None = None


def fake_rig() -> Rig:
    key, stranger_key = Path("/keys/id_ed25519"), Path("/keys/stranger")
    driver = FakeHostDriver(default_key=key)
    host = driver.add_host(FakeHost("10.0.0.9", authorized_keys={key}, files={"/etc/hello": HELLO}))

    def rekey() -> str:
        host.host_key = fake_fingerprint("the reinstalled host")
        return host.host_key

    unpinned = HostTarget(driver="fake", address=host.address)
    return Rig(
        driver=driver,
        target=HostTarget(driver="fake", address=host.address, host_key=host.host_key),
        hello="/etc/hello",
        unpinned=unpinned,
        host_key=host.host_key,
        stranger=HostTarget(
            driver="fake", address=host.address, key_path=stranger_key, host_key=host.host_key
        ),
        unreachable=HostTarget(driver="fake", address="10.0.0.99"),
        rekey=rekey,
    )


def local_rig(tmp_path: Path) -> Rig:
    hello = tmp_path / "hello"
    hello.write_text(HELLO)
    return Rig(catalog.driver("local"), catalog.parse_host_url("local"), str(hello))


def ssh_rig(sshd: Sshd, tmp_path: Path) -> Rig:
    sshd.ensure("a")  # a test before may have left it with its other host key
    hello = tmp_path / "hello"  # sshd runs on this machine: the file is on "the host"
    hello.write_text(HELLO)
    driver = catalog.driver(
        "ssh", known_hosts=tmp_path / "known_hosts", default_key=sshd.client_keys["ed25519"]
    )

    def rekey() -> str:
        sshd.restart("b")
        return sshd.fingerprint("b")

    pinned = catalog.parse_host_url(sshd.url(), host_key=sshd.fingerprint("a"))
    return Rig(
        driver=driver,
        target=pinned,
        hello=str(hello),
        unpinned=catalog.parse_host_url(sshd.url()),
        host_key=sshd.fingerprint("a"),
        stranger=catalog.parse_host_url(
            sshd.url(), key_path=sshd.client_keys["stranger"], host_key=sshd.fingerprint("a")
        ),
        unreachable=catalog.parse_host_url(f"ssh://root@127.0.0.1:{free_port()}"),
        rekey=rekey,
    )


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


SSH = pytest.param("ssh", marks=pytest.mark.integration)


@pytest.fixture(params=["fake", pytest.param("local", marks=pytest.mark.integration), SSH])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    """Every driver."""
    if request.param == "fake":
        return fake_rig()
    if request.param == "local":
        return local_rig(tmp_path)
    return ssh_rig(request.getfixturevalue("sshd"), tmp_path)


@pytest.fixture(params=["fake", SSH])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    """The drivers that reach hosts over the network (``capabilities.remote``): they have host keys."""
    made = fake_rig() if request.param == "fake" else ssh_rig(request.getfixturevalue("sshd"), tmp_path)
    assert made.driver.capabilities.remote
    return made


@pytest.fixture
def machine(rig: Rig) -> Iterator[Machine]:
    with contextlib.closing(rig.driver.connect(rig.target)) as m:
        yield m


# -- machines: commands -----------------------------------------------------------------------------


def test_run_gives_exit_code_stdout_and_stderr(machine: Machine, rig: Rig) -> None:
    done = machine.run(["cat", rig.hello, "/no/such/file"])

    assert done == CommandResult(1, HELLO, "cat: /no/such/file: No such file or directory\n")
    assert machine.run(["true"]) == CommandResult(0, "", "")
    assert machine.run(["false"]).code == 1


def test_arguments_reach_the_program_as_they_are(machine: Machine) -> None:
    args = ["a b", "", "*", "$HOME", "it's; rm -rf /", "`id`"]

    assert machine.run(["echo", *args]).stdout == " ".join(args) + "\n"


def test_a_missing_program_exits_127(machine: Machine) -> None:
    assert machine.run(["no-such-program-mypaas"]).code == 127


def test_run_feeds_input(machine: Machine) -> None:
    assert machine.run(["cat"], input=b"fed\n").stdout == "fed\n"
    assert machine.run(["cat"]).stdout == ""  # no input: stdin is empty, it never waits
    big = os.urandom(1 << 20).hex().encode()  # 2 MiB: past the SSH window, both ways
    assert machine.run(["cat"], input=big, timeout=60).stdout.encode() == big


def test_a_command_past_its_timeout_fails_and_the_machine_stays_usable(machine: Machine) -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailed, match=r"^sleep on .* timed out after 0\.5s") as err:
        machine.run(["sleep", "10"], timeout=0.5)
    assert err.value.code is None
    assert time.monotonic() - started < 5
    assert machine.run(["echo", "still usable"]).stdout == "still usable\n"


def test_addresses(machine: Machine, rig: Rig) -> None:
    assert machine.address == rig.target.address
    ipaddress.ip_address(machine.local_address)  # the manager's address as the host sees it


def test_closing_twice_is_fine(rig: Rig) -> None:
    m = rig.driver.connect(rig.target)
    m.close()
    m.close()


# -- drivers: capabilities ------------------------------------------------------------------------


def test_capabilities_are_declared_and_what_cannot_be_done_is_not_supported(rig: Rig) -> None:
    caps = rig.driver.capabilities
    assert isinstance(caps, DriverCapabilities)
    assert rig.driver.name and isinstance(rig.driver.name, str)
    if not caps.create_machines:
        with pytest.raises(NotSupported):
            rig.driver.create_machine(MachineRequest(name="m1"))
    if not caps.destroy_machines:
        with pytest.raises(NotSupported):
            rig.driver.destroy_machine(rig.target)


# -- remote drivers: reaching a host, and its host key --------------------------------------------


def test_first_contact_is_host_key_unknown_with_its_fingerprint(remote: Rig) -> None:
    assert remote.unpinned is not None
    with pytest.raises(HostKeyUnknown) as err:
        remote.driver.connect(remote.unpinned)
    assert err.value.fingerprint == remote.host_key
    assert err.value.field == "host_key"


def test_a_pinned_host_key_is_remembered(remote: Rig) -> None:
    assert remote.unpinned is not None
    with contextlib.closing(remote.driver.connect(remote.target)) as m:
        assert m.run(["true"]).code == 0

    with contextlib.closing(remote.driver.connect(remote.unpinned)) as m:  # no pin needed now
        assert m.run(["echo", "again"]).stdout == "again\n"


def test_a_wrong_pin_is_a_mismatch_and_nothing_is_remembered(remote: Rig) -> None:
    assert remote.unpinned is not None
    wrong = fake_fingerprint("another host")
    with pytest.raises(HostKeyMismatch) as err:
        remote.driver.connect(replace(remote.unpinned, host_key=wrong))
    assert err.value.expected == wrong
    assert remote.host_key in err.value.got
    with pytest.raises(HostKeyUnknown):
        remote.driver.connect(remote.unpinned)


def test_a_changed_host_key_is_refused_until_it_is_pinned(remote: Rig) -> None:
    assert remote.unpinned is not None and remote.rekey is not None
    remote.driver.connect(remote.target).close()

    new = remote.rekey()  # the host was reinstalled

    with pytest.raises(HostKeyMismatch) as err:
        remote.driver.connect(remote.unpinned)
    assert remote.host_key in err.value.expected and new in err.value.got
    with pytest.raises(HostKeyMismatch):
        remote.driver.connect(remote.target)  # the old pin no longer fits
    remote.driver.connect(replace(remote.unpinned, host_key=new)).close()
    remote.driver.connect(remote.unpinned).close()  # the new key replaced the old one


def test_a_refused_key_is_auth_failed(remote: Rig) -> None:
    assert remote.stranger is not None
    with pytest.raises(HostAuthFailed):
        remote.driver.connect(remote.stranger)


def test_nothing_answering_is_unreachable(remote: Rig) -> None:
    assert remote.unreachable is not None
    with pytest.raises(HostUnreachable):
        remote.driver.connect(remote.unreachable)


def test_a_closed_machine_refuses_to_run(remote: Rig) -> None:
    m = remote.driver.connect(remote.target)
    m.close()
    with pytest.raises(HostUnreachable):
        m.run(["true"])
