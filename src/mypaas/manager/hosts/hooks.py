"""What the host service asks of the rest of the platform (``ClusterHooks``, handed over by the
composition root) and of the machines it adds (``Provisioner``: the iaas bootstrap module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mypaas.iaas.base import HostFacts, Machine


class Provisioner(Protocol):
    """The steps run on a host over its connection: the ``mypaas.iaas.bootstrap`` module itself."""

    def facts(self, m: Machine) -> HostFacts: ...

    def check_os(self, f: HostFacts) -> None: ...

    def ensure_docker(self, m: Machine, emit: Callable[[str], None]) -> str: ...

    def install_certs(self, m: Machine, certs: Mapping[str, Mapping[str, bytes]]) -> bool: ...

    def configure_engine(
        self, m: Machine, *, insecure_registries: Sequence[str] = (), mirrors: Sequence[str] | None = None
    ) -> bool: ...

    def swarm_join(
        self, m: Machine, *, token: str, manager: str, advertise_addr: str | None = None
    ) -> str: ...

    def swarm_leave(self, m: Machine, force: bool = False) -> None: ...

    def swarm_node_id(self, m: Machine) -> str | None: ...


def _no_mirrors() -> list[str] | None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class ClusterHooks:
    """What the host service asks of the rest of the platform, and tells it (defaults: nothing)."""

    registries: Callable[[], list[str]] = list  # registry addresses every engine must trust blindly
    # registry HOST:PORT -> certs.d file name -> PEM: the platform CA (and the mirror's client
    # certificate) every engine verifies the registry and the mirror with
    certificates: Callable[[], dict[str, dict[str, bytes]]] = dict
    mirrors: Callable[[], list[str] | None] = _no_mirrors  # registry mirrors for every engine
    instances_per_node: Callable[[], dict[str, int]] = dict  # node id -> running instances
    on_mode_change: Callable[[], None] = _nothing  # the backend mode just became "swarm"
