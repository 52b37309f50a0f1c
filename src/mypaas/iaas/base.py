"""The HostDriver protocol every iaas driver implements (local, ssh; vsphere, libvirt and openstack
create machines too: MachineDriver), the Machine it hands out, and the errors a host can fail with.

A driver that creates machines is built from a *driver account* (``mypaas driver add``): the catalog
calls ``cls(**options)`` with the account's options, credentials decrypted. ``create_machine`` returns
once the machine answers SSH with the request's public key, as root (or ``HostTarget.user``); the
manager then runs the same bootstrap as ``host add``. A creation that fails deletes what it made
before raising ``MachineCreateFailed`` naming the step.

Error tree (under mypaas.errors):

Conflict
├── HostKeyUnknown     first contact: the caller shows ``.fingerprint`` and retries with it pinned
└── HostKeyMismatch    the host's key is not the one pinned or remembered
BackendError
├── HostUnreachable    refused, timed out, no such name, no SSH server on that port
├── HostAuthFailed     the host refused our key
├── CommandFailed      a command on the host failed or timed out; carries its last stderr lines
├── DriverUnreachable  a driver account's endpoint (vCenter, libvirt URI, Keystone) did not answer
└── MachineCreateFailed  a creation failed at ``.step``; what it made is deleted
InvalidSpec            (also: an unknown size/image/network, field "size"/"image"/...)
└── DriverAuthFailed   the endpoint refused the account's credentials (400: the account's input is
                       wrong, not the caller's token)
Conflict
└── QuotaExceeded      the cloud refused for lack of quota (cores, RAM, instances, floating IPs)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mypaas.errors import BackendError, Conflict, InvalidSpec, NotSupported

STDERR_LINES = 15  # how much of a failed command's stderr an error carries


@dataclass(frozen=True)
class DriverCapabilities:
    """What a driver can do; callers check these instead of probing for NotSupported."""

    create_machines: bool = False  # cloud drivers: can make a new machine
    destroy_machines: bool = False
    remote: bool = True  # reached over the network (ssh)
    resize: bool = False  # change a machine's CPU/memory
    snapshot: bool = False  # snapshot a machine's disks

    def names(self) -> list[str]:
        """What the driver can do, as ``host ls``/``driver ls`` show it: create, destroy, resize, snapshot."""
        pairs = (
            ("create", self.create_machines),
            ("destroy", self.destroy_machines),
            ("resize", self.resize),
            ("snapshot", self.snapshot),
        )
        return [name for name, able in pairs if able]


@dataclass(frozen=True)
class HostTarget:
    """Where a host is and how to log in; what ``parse_host_url`` and ``create_machine`` return."""

    driver: str  # "ssh" | "local" (or a third-party driver's name)
    address: str  # IP or DNS name
    port: int = 22
    user: str = "root"
    key_path: Path | None = None  # private key file; None = the driver's default key
    host_key: str | None = None  # pinned fingerprint "SHA256:..." (as ssh-keygen -lf prints)
    machine_id: str | None = None  # the cloud's id of a created machine (VM UUID, domain name, server id)
    name: str | None = None  # a created machine's name in its cloud (the MachineRequest's name)


@dataclass(frozen=True)
class MachineRequest:
    """A machine for a cloud driver to create. ``ssh_public_key`` (OpenSSH one-line form) is the key
    the machine must accept for root at first boot (cloud-init, guestinfo, a seeded authorized_keys)."""

    name: str
    size: str | None = None  # None: the account's default size
    image: str | None = None  # None: the account's default image/template
    labels: dict[str, str] = field(default_factory=dict)
    ssh_public_key: str = ""


@dataclass(frozen=True)
class MachineSize:
    name: str
    cpus: int
    memory_mb: int
    disk_gb: int = 0  # 0: the image's own disk
    aliases: tuple[str, ...] = ()  # other names create_machine takes for it (an OpenStack flavor's id)


def pick_size(sizes: Sequence[MachineSize], wanted: str) -> MachineSize:
    """The size named ``wanted`` (or going by that other name); InvalidSpec naming the sizes if none."""
    for size in sizes:
        if wanted in (size.name, *size.aliases):
            return size
    raise InvalidSpec(f"unknown size {wanted!r}; sizes: {', '.join(s.name for s in sizes)}", field="size")


@dataclass(frozen=True)
class MachineImage:
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()  # other names create_machine takes for it (a Glance image's id)


@dataclass(frozen=True)
class CommandResult:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    os_id: str  # from /etc/os-release ID (debian, ubuntu, ...)
    os_version: str  # VERSION_ID
    arch: str  # uname -m
    cpus: int
    memory_bytes: int
    docker_version: str | None  # None when the engine is not installed


class Machine(Protocol):
    """A connected host: runs commands given as argument lists. Closing it is idempotent."""

    address: str  # how the manager reaches the machine
    local_address: str  # the manager's own address on the connection (the Swarm advertise address)

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandResult: ...

    def close(self) -> None: ...


class HostDriver(Protocol):
    """Supplies hosts. Drivers without machine lifecycle raise NotSupported from create/destroy."""

    name: str
    capabilities: DriverCapabilities

    def connect(self, target: HostTarget) -> Machine: ...

    def create_machine(self, request: MachineRequest) -> HostTarget: ...

    def destroy_machine(self, target: HostTarget) -> None: ...


class MachineDriver(HostDriver, Protocol):
    """A driver that creates machines from a driver account (vsphere, libvirt, openstack, fake).

    - ``check()`` reaches the endpoint and logs in: DriverUnreachable / DriverAuthFailed, one line each.
    - ``sizes()``/``images()`` list what ``create_machine`` accepts (``--size``/``--image``).
    - ``create_machine`` validates size/image first (InvalidSpec naming the field, nothing made), waits
      for the machine's address and for SSH, and on any failure deletes what it made (VM, disks, ports,
      floating IPs) before raising MachineCreateFailed(step=...). Creating a name that already exists
      as this driver's machine is a Conflict.
    - ``destroy_machine`` powers off and deletes the machine and its disks; destroying one that is
      already gone is not an error (idempotent).
    - ``machines()`` lists the machines this driver account made (by the tag/label it sets), so a
      manager restarted mid-creation can find and delete orphans.
    - ``forget_creation(name)`` deletes what a creation of ``name`` cut short may have left that
      ``machines()`` cannot list (disks made before the machine that carries the tag); only that.
    """

    def check(self) -> None: ...

    def sizes(self) -> list[MachineSize]: ...

    def images(self) -> list[MachineImage]: ...

    def machines(self) -> list[HostTarget]: ...

    def forget_creation(self, name: str) -> None: ...


class FixedMachines:
    """Mixin for drivers over machines that already exist (local, ssh): no create, no destroy."""

    name: str

    def create_machine(self, request: MachineRequest) -> HostTarget:
        raise NotSupported(f"the {self.name} iaas driver cannot create machines ({request.name})")

    def destroy_machine(self, target: HostTarget) -> None:
        raise NotSupported(f"the {self.name} iaas driver cannot destroy machines ({target.address})")


class HostKeyUnknown(Conflict):
    """First contact with a host: nothing pinned, nothing remembered. Confirm ``fingerprint``."""

    def __init__(self, address: str, fingerprint: str) -> None:
        super().__init__(
            f"unknown host key for {address}: {fingerprint}; confirm it, or pin it with --host-key",
            field="host_key",
        )
        self.address = address
        self.fingerprint = fingerprint

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "fingerprint": self.fingerprint}


class HostKeyMismatch(Conflict):
    def __init__(self, address: str, expected: str, got: str) -> None:
        super().__init__(
            f"host key of {address} changed: expected {expected}, got {got}; refusing to connect",
            field="host_key",
        )
        self.address = address
        self.expected = expected
        self.got = got


class HostUnreachable(BackendError):
    pass


class DriverUnreachable(BackendError):
    """A driver account's endpoint did not answer: "<driver> endpoint <url> unreachable: <reason>"."""


class DriverAuthFailed(InvalidSpec):
    """The endpoint refused the account's credentials (the account's input: 400, field "password")."""

    def __init__(self, message: str, *, field: str = "password") -> None:
        super().__init__(message, field=field)


class QuotaExceeded(Conflict):
    """The cloud refused for lack of quota; the message names the quota (cores, ram, instances...)."""


class MachineCreateFailed(BackendError):
    """A creation failed at ``step`` (clone, power-on, address, ssh, ...); what it made is deleted.
    The message reads "creating <name> failed at <step>: <reason>"."""

    def __init__(self, name: str, step: str, reason: str) -> None:
        super().__init__(f"creating {name} failed at {step}: {reason}")
        self.name = name
        self.step = step
        self.reason = reason


class HostAuthFailed(BackendError):
    pass


class CommandFailed(BackendError):
    """A command failed; ``stderr`` holds its last lines, ``code`` its exit code (None: timed out)."""

    def __init__(self, message: str, *, command: str = "", code: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.code = code
        self.stderr = stderr


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH files a host under (and host key errors name): ``addr`` on port 22,
    ``[addr]:port`` elsewhere."""
    return address if port == 22 else f"[{address}]:{port}"


def last_lines(text: str, count: int = STDERR_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def run_checked(
    machine: Machine,
    argv: Sequence[str],
    *,
    what: str,
    input: bytes | None = None,
    timeout: float = 120.0,
) -> CommandResult:
    """Run ``argv``; a non-zero exit raises CommandFailed("<what> on <host> failed: <stderr's last line>")."""
    result = machine.run(argv, input=input, timeout=timeout)
    if result.code != 0:
        raise command_failed(f"{what} on {machine.address}", result, shlex.join(argv))
    return result


def command_failed(what: str, result: CommandResult, command: str) -> CommandFailed:
    """CommandFailed("<what> failed (exit N): <stderr's last line>"), carrying stderr's last lines."""
    tail = last_lines(result.stderr) or last_lines(result.stdout)
    reason = tail.splitlines()[-1] if tail else "no output"
    return CommandFailed(
        f"{what} failed (exit {result.code}): {reason}", command=command, code=result.code, stderr=tail
    )
