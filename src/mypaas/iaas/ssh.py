"""The ``ssh`` iaas driver: a raw machine reached over SSH with a key (the only module that imports
paramiko). Host keys are checked against a pin or the driver's own known_hosts, never trusted blindly."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import paramiko
from paramiko.hostkeys import InvalidHostKey
from paramiko.pkey import UnknownKeyType

from mypaas.errors import BackendError, InvalidSpec, MyPaasError
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

CHUNK = 65536


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<base64, no padding>``, as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _CheckHostKey(paramiko.MissingHostKeyPolicy):
    """Called by paramiko for a host it has no key of (a remembered key that differs is paramiko's
    BadHostKeyException): accepts the key only if it matches the pin; otherwise stops the handshake,
    before any login, with HostKeyUnknown or HostKeyMismatch."""

    def __init__(self, label: str, pin: str | None) -> None:
        self.label = label
        self.pin = pin
        self.accepted: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        got = fingerprint(key)
        if self.pin is None:
            raise HostKeyUnknown(self.label, got)
        if got != self.pin:
            raise HostKeyMismatch(self.label, self.pin, f"{got} ({key.get_name()})")
        self.accepted = key


class SSHMachine:
    """A host over one SSH connection; each ``run`` is a new channel. A context manager."""

    def __init__(self, client: paramiko.SSHClient, target: HostTarget) -> None:
        self._client = client
        self.target = target
        self.address = target.address
        transport = client.get_transport()
        sock = transport.sock if transport is not None else None
        self.local_address = str(sock.getsockname()[0]) if isinstance(sock, socket.socket) else ""
        self._label = f"{target.user}@{known_hosts_name(target.address, target.port)}"

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandResult:
        """Run ``argv`` (quoted with shlex.join for the remote shell), feeding ``input`` to it."""
        command = shlex.join(argv)
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnreachable(f"the SSH connection to {self._label} is closed")
        try:
            channel = transport.open_session(timeout=min(timeout, 30.0))
            channel.settimeout(timeout)
            channel.exec_command(command)
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(
                f"cannot run a command on {self._label}: {exc or type(exc).__name__}"
            ) from exc
        try:
            return self._collect(channel, command, input, timeout)
        finally:
            channel.close()

    def _collect(
        self, channel: paramiko.Channel, command: str, input: bytes | None, timeout: float
    ) -> CommandResult:
        """Feed stdin from a thread while reading stdout and stderr here, until exit and EOF."""
        deadline = time.monotonic() + timeout

        def feed() -> None:
            # a command that exits without reading all its input closes the channel under us: fine
            with contextlib.suppress(OSError, paramiko.SSHException):
                if input:
                    channel.sendall(input)
                channel.shutdown_write()

        feeder = threading.Thread(target=feed, name=f"ssh-stdin-{self.address}", daemon=True)
        feeder.start()
        out: list[bytes] = []
        err: list[bytes] = []
        pause = 0.001
        while True:
            got = False
            while channel.recv_ready():
                out.append(channel.recv(CHUNK))
                got = True
            while channel.recv_stderr_ready():
                err.append(channel.recv_stderr(CHUNK))
                got = True
            if channel.exit_status_ready() and (channel.eof_received or channel.closed):
                if not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                continue
            if time.monotonic() > deadline:
                raise CommandFailed(
                    f"{shlex.split(command)[0]} on {self._label} timed out after {timeout:g}s",
                    command=command,
                    stderr=b"".join(err).decode(errors="replace")[-2000:],
                )
            pause = 0.001 if got else min(pause * 2, 0.05)
            time.sleep(pause)
        feeder.join(timeout=1.0)
        return CommandResult(
            channel.recv_exit_status(),
            b"".join(out).decode(errors="replace"),
            b"".join(err).decode(errors="replace"),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SSHMachine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SSHDriver(FixedMachines):
    """Connects to existing machines with a private key (no agent, no passwords)."""

    name = "ssh"
    capabilities = DriverCapabilities(remote=True)

    def __init__(
        self, known_hosts: Path, default_key: Path | None = None, connect_timeout: float = 10.0
    ) -> None:
        self.known_hosts = known_hosts
        self.default_key = default_key
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()  # one read-modify-write of known_hosts at a time

    def connect(self, target: HostTarget) -> SSHMachine:
        """Check the host key (pin, else known_hosts, else HostKeyUnknown), then log in with the key."""
        name = known_hosts_name(target.address, target.port)
        label = f"{target.user}@{name}"
        key_path, key = self._load_key(target)
        client = paramiko.SSHClient()
        if target.host_key is None:  # a pin overrides what is remembered (the user confirmed a new key)
            for kind, known in self._remembered(name).items():
                client.get_host_keys().add(name, kind, known)
        policy = _CheckHostKey(name, target.host_key)
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                target.address,
                port=target.port,
                username=target.user,
                pkey=key,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise _connect_error(exc, target, label, key_path) from exc
        except BaseException:  # HostKeyUnknown/HostKeyMismatch from the policy, or an interrupt
            client.close()
            raise
        finally:
            if policy.accepted is not None:  # the pinned key was verified: remember it, even if login failed
                self._remember(name, policy.accepted)
        return SSHMachine(client, target)

    def _load_key(self, target: HostTarget) -> tuple[Path, paramiko.PKey]:
        path = target.key_path or self.default_key
        if path is None:
            raise InvalidSpec(
                f"no SSH key to log in to {target.address} with; give one with --key", field="key_path"
            )
        try:
            return path, paramiko.PKey.from_path(path)
        except FileNotFoundError as exc:
            raise InvalidSpec(f"SSH key {path} does not exist", field="key_path") from exc
        except (paramiko.PasswordRequiredException, TypeError) as exc:
            raise InvalidSpec(
                f"SSH key {path} is protected by a passphrase; MyPaas needs a key without one",
                field="key_path",
            ) from exc
        except (OSError, ValueError, paramiko.SSHException, UnknownKeyType) as exc:
            raise InvalidSpec(
                f"cannot read SSH key {path} (an OpenSSH ed25519, ECDSA or RSA private key): {exc}",
                field="key_path",
            ) from exc

    def _host_keys(self) -> paramiko.HostKeys:
        keys = paramiko.HostKeys()
        if self.known_hosts.exists():
            try:
                keys.load(str(self.known_hosts))
            except (OSError, InvalidHostKey, paramiko.SSHException, ValueError) as exc:
                raise BackendError(f"cannot read known hosts {self.known_hosts}: {exc}") from exc
        return keys

    def _remembered(self, name: str) -> dict[str, paramiko.PKey]:
        found = self._host_keys().lookup(name)
        return dict(found) if found is not None else {}

    def _remember(self, name: str, key: paramiko.PKey) -> None:
        """Make ``key`` the one known key of ``name`` (the file is OpenSSH's format, mode 0600)."""
        with self._lock:
            keys = self._host_keys()
            while keys.lookup(name) is not None:
                del keys[name]
            keys.add(name, key.get_name(), key)
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.known_hosts.with_name(f".{self.known_hosts.name}.{os.getpid()}.tmp")
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                keys.save(str(tmp))
                os.replace(tmp, self.known_hosts)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise BackendError(f"cannot write known hosts {self.known_hosts}: {exc}") from exc


def _connect_error(exc: Exception, target: HostTarget, label: str, key: Path) -> MyPaasError:
    """One clear error for what went wrong while connecting to ``target``."""
    where = (
        f"[{target.address}]:{target.port}" if ":" in target.address else f"{target.address}:{target.port}"
    )
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            known_hosts_name(target.address, target.port),
            f"{fingerprint(exc.expected_key)} ({exc.expected_key.get_name()})",
            f"{fingerprint(exc.key)} ({exc.key.get_name()})",
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return HostAuthFailed(f"{label} refused the SSH key {key}: {exc}")
    return HostUnreachable(f"cannot reach {where}: {_unreachable_reason(exc)}")


def _unreachable_reason(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host name ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused or no route to host"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return f"no SSH server answered ({exc or type(exc).__name__})"
