"""A throwaway sshd on 127.0.0.1 for the tests of the ssh iaas driver (run as root; always stopped):
two host keys to switch between, and client keys it lets in (ed25519, rsa, ecdsa) or refuses (stranger)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.kit import free_port

SSHD = Path("/usr/sbin/sshd")


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "mypaas-test", "-f", str(path)], check=True
    )
    return path


def fingerprint_of(public_key: Path) -> str:
    """What ``ssh-keygen -lf`` prints as the key's fingerprint: "256 SHA256:... comment (ED25519)"."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


@dataclass
class Sshd:
    """One sshd on 127.0.0.1:port; ``restart`` swaps its host key."""

    root: Path
    port: int
    host_keys: dict[str, Path]
    client_keys: dict[str, Path]
    proc: subprocess.Popen[bytes] | None = None
    current: str = ""

    def start(self, host_key: str) -> None:
        config = self.root / f"sshd_config.{host_key}"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_keys[host_key]}",
                    f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
                    f"PidFile {self.root / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "StrictModes no",
                    "UsePAM no",
                    "",
                ]
            )
        )
        log = self.root / f"sshd.{host_key}.log"
        self.current = host_key
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, host_key: str) -> None:
        self.stop()
        self.start(host_key)

    def ensure(self, host_key: str) -> None:
        """Running with ``host_key`` (a test before may have left it with another one)."""
        if self.proc is None or self.proc.poll() is not None or self.current != host_key:
            self.restart(host_key)

    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def fingerprint(self, host_key: str) -> str:
        return fingerprint_of(self.host_keys[host_key].with_suffix(".pub"))


@contextlib.contextmanager
def running_sshd(root: Path) -> Iterator[Sshd]:
    """An sshd with its keys and config under ``root``, running with host key "a"; stopped on exit."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    server = Sshd(
        root=root,
        port=free_port(),
        host_keys={"a": keygen(root / "host_a"), "b": keygen(root / "host_b", "ecdsa")},
        client_keys={
            "ed25519": keygen(root / "client_ed25519"),
            "rsa": keygen(root / "client_rsa", "rsa"),
            "ecdsa": keygen(root / "client_ecdsa", "ecdsa"),
            "stranger": keygen(root / "stranger"),
        },
    )
    authorized = [server.client_keys[k].with_suffix(".pub").read_text() for k in ("ed25519", "rsa", "ecdsa")]
    (root / "authorized_keys").write_text("".join(authorized))
    try:
        server.start("a")
        yield server
    finally:
        server.stop()
