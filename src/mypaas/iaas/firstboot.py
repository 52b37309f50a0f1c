"""What a machine a driver creates needs at its first boot (a cloud-config letting the platform's key in
as root) and the wait until it answers SSH, for the drivers that create machines."""

from __future__ import annotations

import socket
import time

import yaml

from mypaas.errors import BackendError


def cloud_init(public_key: str) -> str:
    """A cloud-config that lets the platform's key in as root (the bootstrap logs in as root)."""
    config = {"disable_root": False, "ssh_authorized_keys": [public_key.strip()]}
    return "#cloud-config\n" + yaml.safe_dump(config, default_flow_style=False)


def wait_ssh(address: str, port: int, timeout: float) -> None:
    """Until an SSH server greets on ``address:port`` ("SSH-..."): cloud-init and sshd are up."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=min(5.0, timeout)) as sock:
                sock.settimeout(min(5.0, timeout))
                if sock.recv(4).startswith(b"SSH-"):
                    return
                last = "something that is not SSH answered"
        except OSError as exc:
            last = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or type(exc).__name__
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    raise BackendError(f"no SSH server answered on {address}:{port} within {timeout:g}s ({last})")
