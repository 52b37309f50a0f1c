"""The cluster itself: the backend mode (docker until a Swarm exists, then swarm), making this machine's
engine the Swarm manager (`mypaas cluster init`, or the first `host add`) and recording it as the host
"local", and the cluster's status."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.nodes import Nodes
from mypaas.errors import Conflict, InvalidSpec, MyPaasError
from mypaas.manager.hosts.hooks import ClusterHooks
from mypaas.manager.state.meta import BACKEND_KEY, read_mode
from mypaas.manager.state.models import HostRow, Meta
from mypaas.states import BackendMode, HostState, NodeState, Role, SwarmState

log = logging.getLogger("mypaas.hosts")

HEARTBEAT_S = 1.0  # Swarm's dispatcher heartbeat: a dead host is noticed within seconds
_ADVERTISE = re.compile(r"^[A-Za-z0-9._:\[\]%-]{1,255}\Z")


def free_name(s: Session, wanted: str, fallback: str) -> str:
    """``wanted`` if no host has that name, else ``fallback``, else ``fallback-N``."""
    for name in (wanted, fallback):
        if name and s.scalar(select(HostRow.id).where(HostRow.name == name)) is None:
            return name
    n = 2
    while s.scalar(select(HostRow.id).where(HostRow.name == f"{fallback}-{n}")) is not None:
        n += 1
    return f"{fallback}-{n}"


class Cluster:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        nodes: Callable[[], Nodes],
        hooks: ClusterHooks,
        advertise_addr: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._nodes = nodes
        self._hooks = hooks
        self._advertise = advertise_addr or None
        self._lock = threading.Lock()  # one Swarm init / mode switch at a time

    def mode(self) -> BackendMode:
        with self._sessions() as s:
            return read_mode(s)

    def _switch_to_swarm(self, emit: Callable[[str], None]) -> None:
        """Record mode "swarm" and tell the platform, once; undone if the platform cannot switch."""
        with self._sessions.begin() as s:
            previous = s.get(Meta, BACKEND_KEY)
            before = previous.value if previous is not None else None
            if before == BackendMode.SWARM:
                return
            s.merge(Meta(key=BACKEND_KEY, value=BackendMode.SWARM.value))
        try:
            self._hooks.on_mode_change()
        except Exception:
            with self._sessions.begin() as s:
                row = s.get(Meta, BACKEND_KEY)
                if row is not None and before is None:
                    s.delete(row)
                elif row is not None and before is not None:
                    row.value = before
            raise
        emit("the platform now runs apps as Swarm services (backend swarm)")

    def ensure(self, nodes: Nodes, local_address: str | None, emit: Callable[[str], None]) -> str:
        """Make the local engine a Swarm manager (idempotent), record it, switch the mode. -> node id"""
        with self._lock:
            advertise = self._advertise or local_address or ""
            if nodes.state() != SwarmState.ACTIVE:
                if not advertise:
                    raise InvalidSpec(
                        "give the address the other hosts reach this machine at: "
                        "`mypaas cluster init --advertise-addr ADDR`",
                        field="advertise_addr",
                    )
                emit(f"making this machine's engine the Swarm manager, advertised at {advertise}")
            node_id = nodes.init(advertise, heartbeat_s=HEARTBEAT_S)
            self._record_local(nodes, node_id)
            self._switch_to_swarm(emit)
            return node_id

    def _record_local(self, nodes: Nodes, node_id: str) -> None:
        """The manager's own machine, as a host row (driver "local"), once."""
        with self._sessions() as s:
            row = s.scalar(select(HostRow).where(HostRow.driver == "local"))
            if row is not None and row.node_id == node_id:
                return
        node = nodes.node(node_id)
        with self._sessions.begin() as s:
            row = s.scalar(select(HostRow).where(HostRow.driver == "local"))
            same = select(HostRow.id).where(HostRow.address == node.address, HostRow.driver != "local")
            if s.scalar(same) is not None:
                raise Conflict(
                    f"{node.address} is this machine, the Swarm manager: it is in the cluster already",
                    field="url",
                )
            if row is None:
                row = HostRow(
                    name=free_name(s, node.hostname or "manager", "manager"),
                    address=node.address or "127.0.0.1",
                    port=0,
                    user="",
                    driver="local",
                    role=Role.MANAGER,
                    labels=node.labels,
                    host_key="",
                    state=HostState.READY,
                )
                s.add(row)
            row.node_id = node_id

    def init(self, advertise_addr: str | None = None) -> dict[str, Any]:
        """`mypaas cluster init`: the local engine becomes the Swarm manager; the mode becomes swarm."""
        if advertise_addr is not None and not _ADVERTISE.match(advertise_addr):
            raise InvalidSpec(
                f"invalid advertise address {advertise_addr!r}: an IP address or interface [:PORT]",
                field="advertise_addr",
            )
        if advertise_addr:
            self._advertise = advertise_addr
        self.ensure(self._nodes(), None, lambda line: log.info("%s", line))
        return self.status()

    def status(self) -> dict[str, Any]:
        """The mode, the local engine's Swarm state, the manager's address and the node counts."""
        info: dict[str, Any] = {"mode": self.mode(), "swarm": SwarmState.INACTIVE, "manager_addr": None}
        info["error"] = None
        info |= {"nodes": 0, "managers": 0, "ready": 0}
        try:
            nodes = self._nodes()
            info["swarm"] = nodes.state()
            if info["swarm"] == SwarmState.ACTIVE:
                info["manager_addr"] = nodes.manager_addr()
                every = nodes.nodes()
                info["nodes"] = len(every)
                info["managers"] = sum(1 for n in every if n.role == Role.MANAGER)
                info["ready"] = sum(1 for n in every if n.state == NodeState.READY)
        except MyPaasError as exc:
            info["error"] = exc.message
        with self._sessions() as s:
            info["hosts"] = len(s.scalars(select(HostRow.id)).all())
        return info
