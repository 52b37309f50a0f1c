"""This machine as a host: the ``local`` iaas driver (commands run with subprocess), and the Docker
engine's own settings (``/etc/docker/daemon.json``), changed in place and applied with a reload, for
what the platform needs of the engine (registry mirrors, insecure registries)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from mypaas.errors import BackendError
from mypaas.iaas.base import CommandFailed, CommandResult, DriverCapabilities, FixedMachines, HostTarget

DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PID = Path("/var/run/docker.pid")
CERTS_D = Path("/etc/docker/certs.d")


class LocalEngineConfig:
    """Reads and edits daemon.json, keeping every key MyPaas does not own as it was."""

    def __init__(
        self, path: Path = DAEMON_JSON, pid_path: Path = DOCKER_PID, certs_d: Path = CERTS_D
    ) -> None:
        self.path = path
        self.pid_path = pid_path
        self.certs_d = certs_d

    def install_certs(self, certs: dict[str, dict[str, bytes]]) -> bool:
        """Write each registry's ``ca.crt`` (and client certificate) under certs.d/HOST:PORT/, where the
        engine reads them at each connection (no reload); keys 0600. True when a file changed."""
        changed = False
        for addr, files in certs.items():
            folder = self.certs_d / addr
            if "/" in addr or addr.startswith("."):
                raise BackendError(f"registry address {addr!r} is not HOST[:PORT]")
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            for name, data in files.items():
                where = folder / name
                if where.exists() and where.read_bytes() == data:
                    continue
                tmp = where.with_name(name + ".mypaas-tmp")
                fd = os.open(
                    tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if name.endswith(".key") else 0o644
                )
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, where)
                changed = True
        return changed

    def read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self.path} is not valid JSON ({exc.msg}); fix it by hand first") from exc
        if not isinstance(data, dict):
            raise BackendError(f"{self.path} must hold a JSON object")
        return data

    def registry_mirrors(self) -> list[str]:
        return [str(m) for m in self.read().get("registry-mirrors", [])]

    def set_registry_mirrors(self, mirrors: list[str]) -> bool:
        """Make the engine use exactly ``mirrors``; return True if anything changed (and reloaded)."""
        return self._set("registry-mirrors", mirrors)

    def insecure_registries(self) -> list[str]:
        return [str(r) for r in self.read().get("insecure-registries", [])]

    def set_insecure_registries(self, registries: list[str]) -> bool:
        """Make the engine trust exactly ``registries`` over plain HTTP (``host:port`` or a CIDR);
        return True if anything changed (and reloaded)."""
        return self._set("insecure-registries", registries)

    def _set(self, key: str, value: list[str]) -> bool:
        data = self.read()
        if data.get(key, []) == value and key in data:
            return False
        data[key] = value  # an empty list, not a missing key: a reload then clears it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.mypaas-tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)
        self.reload()
        return True

    def reload(self) -> None:
        """SIGHUP makes dockerd re-read its reloadable settings (registry-mirrors is one)."""
        try:
            pid = int(self.pid_path.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot reload the Docker engine (pid file {self.pid_path}): {exc}") from exc
        with contextlib.suppress(OSError):
            time.sleep(0.3)  # dockerd applies the reload asynchronously; give it a moment


class LocalMachine:
    """This machine: commands run as child processes of the manager."""

    address = "127.0.0.1"
    local_address = "127.0.0.1"

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandResult:
        """Run ``argv`` (no shell); like a remote shell, a missing program gives exit code 127."""
        args = list(argv)
        try:
            done = subprocess.run(
                args,
                input=input,
                stdin=subprocess.DEVNULL if input is None else None,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(127, "", f"{args[0]}: command not found\n")
        except PermissionError as exc:
            return CommandResult(126, "", f"{args[0]}: {exc.strerror}\n")
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(
                f"{args[0]} on this machine timed out after {timeout:g}s",
                command=shlex.join(args),
            ) from exc
        return CommandResult(
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalMachine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LocalDriver(FixedMachines):
    """The ``local`` iaas driver: the manager's own machine is the host."""

    name = "local"
    capabilities = DriverCapabilities(remote=False)

    def connect(self, target: HostTarget) -> LocalMachine:
        return LocalMachine()
