"""The network the ``RUN`` steps of builds use: cut off from this machine and the cloud's metadata.

On the engine's default bridge a build's ``RUN wget http://172.17.0.1:PORT/`` reaches everything that
listens on this machine (the API, the registry and the mirror in cluster mode, the router, Caddy's admin
API if bound beyond loopback), and ``169.254.169.254`` hands out the cloud machine's credentials. The
build network is a bridge of its own, without traffic between its containers, and two firewall rules:

- ``INPUT -i <bridge> -j DROP``: nothing from a build reaches any address of this machine;
- ``DOCKER-USER -i <bridge> -d 169.254.0.0/16 -j DROP``: nor a link-local address through the host.

The internet (and the DNS the engine forwards) stays reachable: builds download packages. The network
and the rules are made at the first build, and checked at each (a restarted machine loses the rules).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Any

import docker

from mypaas.errors import BackendError

BRIDGE = "mypaas-build0"  # the host-side interface of the build network
_OPTIONS = {
    "com.docker.network.bridge.name": BRIDGE,
    "com.docker.network.bridge.enable_icc": "false",
}
_LOCK = threading.Lock()


def rules(bridge: str) -> list[tuple[str, list[str]]]:
    """(chain, rule) of each firewall rule the build network needs."""
    return [
        ("INPUT", ["-i", bridge, "-j", "DROP"]),
        ("DOCKER-USER", ["-i", bridge, "-d", "169.254.0.0/16", "-j", "DROP"]),
    ]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, check=False)


def ensure_rules(bridge: str) -> None:
    """Add each rule that is missing, first in its chain (BackendError when the firewall refuses)."""
    if shutil.which("iptables") is None:
        raise BackendError(
            "builds need iptables to keep them off this machine's addresses (or set build_network to '')"
        )
    for chain, rule in rules(bridge):
        if _iptables("-C", chain, *rule).returncode == 0:
            continue
        added = _iptables("-I", chain, "1", *rule)
        if added.returncode != 0:
            reason = (added.stderr or added.stdout).strip().splitlines()[-1:] or ["no reason given"]
            raise BackendError(f"cannot isolate the build network ({chain}): {reason[0]}")


def ensure_network(api: Any, name: str, labels: dict[str, str]) -> str:
    """Make the build network ``name`` unless it exists, and its firewall rules; returns its name."""
    with _LOCK:
        try:
            found = api.inspect_network(name)
        except docker.errors.NotFound:
            try:
                api.create_network(name, driver="bridge", options=_OPTIONS, labels=labels)
            except docker.errors.APIError as exc:  # made meanwhile by another manager on this engine
                if exc.status_code != 409:
                    raise BackendError(f"cannot make the build network {name}: {exc.explanation}") from exc
            found = api.inspect_network(name)
        bridge = (found.get("Options") or {}).get(
            "com.docker.network.bridge.name"
        ) or f"br-{found['Id'][:12]}"
        ensure_rules(bridge)
    return name
