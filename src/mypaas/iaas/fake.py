"""An in-memory iaas driver for unit tests, behind the same HostDriver protocol as iaas/ssh.py.

A ``FakeHost`` is a machine: its host key, the keys it lets in, its files, and how its commands answer
(a few programs are built in; tests script others by argv prefix). ``FakeHostDriver`` reaches the hosts
added to it and checks host keys as the ssh driver does (the pin, else the key remembered, else
HostKeyUnknown); each ``connect`` gives a ``FakeMachine``, one connection to a host. Nothing runs.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from mypaas.errors import InvalidSpec
from mypaas.iaas.base import (
    CommandFailed,
    CommandResult,
    DriverCapabilities,
    FixedMachines,
    HostAuthFailed,
    HostKeyMismatch,
    HostKeyUnknown,
    HostTarget,
    HostUnreachable,
    known_hosts_name,
)
from mypaas.iaas.bootstrap import READ_FILE_SCRIPT, WRITE_FILE_SCRIPT

OK = CommandResult(0, "", "")
Answer = CommandResult | Callable[[list[str], bytes | None], CommandResult]


def fake_fingerprint(seed: str) -> str:
    """A host key fingerprint in OpenSSH's form, ``SHA256:`` and 43 base64 characters."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip("=")


@dataclass(eq=False)
class FakeHost:
    """One machine. A command is answered by the longest scripted argv prefix in ``answers`` (a list
    answers in turn, its last answer repeating), else by a built-in program (``echo``, ``cat``, ``true``,
    ``false``, ``sleep``, and the bootstrap's scripts that read and write ``files``), else by
    ``otherwise``; without that, as a shell answers a missing program: exit code 127."""

    address: str = "10.0.0.9"
    port: int = 22
    answers: dict[tuple[str, ...], Answer | list[Answer]] = field(default_factory=dict)
    otherwise: CommandResult | None = None
    host_key: str = ""  # its fingerprint; by default one made from the address
    authorized_keys: set[Path] | None = None  # the keys it lets in; None: any key
    reachable: bool = True  # False: down, or cut off the network
    files: dict[str, str] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    inputs: list[bytes | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.host_key:
            self.host_key = fake_fingerprint(f"{self.address}:{self.port}")

    def ran(self, *prefix: str) -> list[list[str]]:
        """The commands run so far that start with ``prefix``."""
        return [c for c in self.calls if c[: len(prefix)] == list(prefix)]

    def run(self, argv: Sequence[str], *, input: bytes | None, timeout: float, label: str) -> CommandResult:
        args = list(argv)
        self.calls.append(args)
        self.inputs.append(input)
        answer = self._scripted(args, input) or self._built_in(args, input, timeout, label) or self.otherwise
        if answer is None:
            return CommandResult(127, "", f"sh: 1: {args[0]}: not found\n")
        return answer

    def _scripted(self, args: list[str], input: bytes | None) -> CommandResult | None:
        for length in range(len(args), 0, -1):
            answer = self.answers.get(tuple(args[:length]))
            if answer is None:
                continue
            if isinstance(answer, list):
                answer = answer.pop(0) if len(answer) > 1 else answer[0]
            return answer if isinstance(answer, CommandResult) else answer(args, input)
        return None

    def _built_in(
        self, args: list[str], input: bytes | None, timeout: float, label: str
    ) -> CommandResult | None:
        if args[:3] == ["sh", "-c", READ_FILE_SCRIPT] and len(args) > 4:
            return CommandResult(0, self.files.get(args[4], ""), "")
        if args[:3] == ["sh", "-c", WRITE_FILE_SCRIPT] and len(args) > 4:
            self.files[args[4]] = (input or b"").decode()
            return OK
        if args[0] == "sleep" and len(args) > 1 and float(args[1]) > timeout:
            raise CommandFailed(f"sleep on {label} timed out after {timeout:g}s", command=shlex.join(args))
        program = _PROGRAMS.get(args[0])
        return program(self, args[1:], input) if program is not None else None


def _cat(host: FakeHost, paths: list[str], input: bytes | None) -> CommandResult:
    paths = [p for p in paths if p != "--"]
    if not paths:
        return CommandResult(0, (input or b"").decode(errors="replace"), "")
    missing = [p for p in paths if p not in host.files]
    err = "".join(f"cat: {p}: No such file or directory\n" for p in missing)
    return CommandResult(1 if missing else 0, "".join(host.files.get(p, "") for p in paths), err)


_PROGRAMS: dict[str, Callable[[FakeHost, list[str], bytes | None], CommandResult]] = {
    "cat": _cat,
    "echo": lambda _host, args, _input: CommandResult(0, " ".join(args) + "\n", ""),
    "true": lambda _host, _args, _input: OK,
    "false": lambda _host, _args, _input: CommandResult(1, "", ""),
    "sleep": lambda _host, _args, _input: OK,  # within its timeout: done at once
}


class FakeMachine:
    """One connection to a FakeHost. A context manager; closing it twice is fine."""

    def __init__(self, host: FakeHost, *, local_address: str = "10.0.0.1", label: str = "") -> None:
        self.host = host
        self.address = host.address
        self.local_address = local_address
        self.closed = False
        self._label = label or host.address

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandResult:
        if self.closed:
            raise HostUnreachable(f"the connection to {self._label} is closed")
        return self.host.run(argv, input=input, timeout=timeout, label=self._label)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeMachine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FakeHostDriver(FixedMachines):
    """Reaches the hosts added to it, with a key (the target's, else ``default_key``), checking host
    keys like the ssh driver; records every target and machine. It cannot create machines."""

    capabilities = DriverCapabilities(remote=True)

    def __init__(
        self, *, name: str = "fake", local_address: str = "10.0.0.1", default_key: Path | None = None
    ) -> None:
        self.name = name
        self.local_address = local_address  # the manager's address as the hosts see it
        self.default_key = default_key
        self.hosts: dict[str, FakeHost] = {}
        self.known: dict[str, str] = {}  # remembered host keys: known_hosts name -> fingerprint
        self.targets: list[HostTarget] = []
        self.machines: list[FakeMachine] = []

    def add_host(self, host: FakeHost) -> FakeHost:
        """Make ``host`` reachable at its address."""
        self.hosts[host.address] = host
        return host

    def remember(self, address: str) -> None:
        """Remember the host key of the host at ``address``, as a connection with it pinned does."""
        host = self.hosts[address]
        self.known[known_hosts_name(address, host.port)] = host.host_key

    def connect(self, target: HostTarget) -> FakeMachine:
        self.targets.append(target)
        key = target.key_path or self.default_key
        if key is None:
            raise InvalidSpec(
                f"no SSH key to log in to {target.address} with; give one with --key", field="key_path"
            )
        host = self.hosts.get(target.address)
        if host is None or not host.reachable or host.port != target.port:
            where = f"[{target.address}]" if ":" in target.address else target.address
            raise HostUnreachable(
                f"cannot reach {where}:{target.port}: connection refused or no route to host"
            )
        name = known_hosts_name(target.address, target.port)
        self._check_host_key(name, target.host_key, host.host_key)
        label = f"{target.user}@{name}"
        if host.authorized_keys is not None and key not in host.authorized_keys:
            raise HostAuthFailed(f"{label} refused the SSH key {key}")
        machine = FakeMachine(host, local_address=self.local_address, label=label)
        self.machines.append(machine)
        return machine

    def _check_host_key(self, name: str, pin: str | None, got: str) -> None:
        if pin is not None:  # a pin overrides what is remembered; once verified, it is remembered
            if pin != got:
                raise HostKeyMismatch(name, pin, got)
            self.known[name] = got
            return
        remembered = self.known.get(name)
        if remembered is None:
            raise HostKeyUnknown(name, got)
        if remembered != got:
            raise HostKeyMismatch(name, remembered, got)
