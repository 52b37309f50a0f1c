"""An in-memory Swarm for unit tests, behind the same Nodes protocol as SwarmNodes (composer/nodes.py).

``FakeNodes`` is the manager's local engine and the Swarm it manages; it answers and fails as SwarmNodes
does (tests/contract/test_nodes_contract.py runs both). Tests play the other hosts: ``join`` (a host
joins with a token), ``leave`` and ``set_state`` (a host left, died or came back), ``set_running_tasks``,
and ``join_another_swarm`` (the local engine became a worker of some other Swarm).
Unlike a real engine it takes only IP addresses to advertise, not interface names.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
import threading
from dataclasses import replace

from mypaas.composer.nodes import SWARM_PORT, NodeInfo
from mypaas.errors import BackendError, Conflict, InvalidSpec, NotFound
from mypaas.states import Availability, NodeState, Role, SwarmState

_ID_CHARS = string.digits + string.ascii_lowercase
AVAILABILITIES = tuple(Availability)
ROLES = tuple(Role)
NOT_A_MANAGER = "the local engine is not a Swarm manager (`mypaas cluster init` makes it one)"


def _random_id(length: int = 25) -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def _listen(advertise_addr: str) -> tuple[str, str]:
    """``10.0.0.1`` -> (``10.0.0.1``, ``10.0.0.1:2377``); ``10.0.0.1:4000`` -> (``10.0.0.1``, itself)."""
    host, sep, port = advertise_addr.rpartition(":")
    candidates = [(advertise_addr, str(SWARM_PORT))]
    if sep and port.isdigit():
        candidates.insert(0, (host.strip("[]"), port))
    for address, listen_port in candidates:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        return str(ip), f"[{ip}]:{listen_port}" if ip.version == 6 else f"{ip}:{listen_port}"
    raise InvalidSpec(
        f"initialising the Swarm at {advertise_addr}: listen address must be an IP address"
        " or network interface (with optional port number)"
    )


class FakeNodes:
    """The local engine (``hostname`` at ``address``, with its resources) and the Swarm it manages."""

    def __init__(
        self,
        *,
        hostname: str = "manager",
        address: str = "10.0.0.1",
        cpus: float = 2.0,
        memory_bytes: int = 4 * 2**30,
        engine_version: str = "20.10.24",
    ) -> None:
        self._engine = NodeInfo(  # the local engine's node, once it manages a Swarm
            id="",
            hostname=hostname,
            address=address,
            role=Role.MANAGER,
            state=NodeState.READY,
            availability=Availability.ACTIVE,
            cpus=cpus,
            memory_bytes=memory_bytes,
            engine_version=engine_version,
            leader=True,
        )
        self.heartbeat_s: float | None = None  # the Swarm's dispatcher heartbeat, once there is a Swarm
        self.removed: list[tuple[str, bool]] = []  # (node id, force) of each node removed
        self._state = SwarmState.INACTIVE
        self._manager = False  # whether the local engine manages the Swarm it is in
        self._local_id: str | None = None
        self._manager_addr = ""
        self._tokens = ("", "")
        self._nodes: dict[str, NodeInfo] = {}
        self._tasks: dict[str, int] = {}
        self._lock = threading.RLock()

    # -- the protocol -------------------------------------------------------------------------------

    def state(self) -> SwarmState:
        return self._state

    def local_node_id(self) -> str | None:
        return self._local_id

    def init(self, advertise_addr: str, *, heartbeat_s: float = 1.0) -> str:
        with self._lock:
            if self._state == SwarmState.ACTIVE and not self._manager:
                raise Conflict(
                    "the local engine is a worker of another Swarm: leave it first (`docker swarm leave`)",
                    field="advertise_addr",
                )
            if self._local_id is None:
                address, self._manager_addr = _listen(advertise_addr)
                if address != self._engine.address:
                    raise BackendError(
                        f"initialising the Swarm at {advertise_addr}: cannot assign requested address"
                    )
                self._local_id = _random_id()
                self._nodes[self._local_id] = replace(self._engine, id=self._local_id)
                cluster = _random_id(50)
                self._tokens = (f"SWMTKN-1-{cluster}-{_random_id()}", f"SWMTKN-1-{cluster}-{_random_id()}")
                self._state, self._manager = SwarmState.ACTIVE, True
            self.heartbeat_s = heartbeat_s
            return self._local_id

    def join_tokens(self) -> tuple[str, str]:
        self._managing("reading the Swarm's join tokens")
        return self._tokens

    def manager_addr(self) -> str:
        if not self._manager:
            raise Conflict("the local engine is not a Swarm manager: `mypaas cluster init` first")
        return self._manager_addr

    def nodes(self) -> list[NodeInfo]:
        self._managing("listing the Swarm's nodes")
        with self._lock:
            return sorted(self._nodes.values(), key=lambda n: n.id)

    def node(self, node_id: str) -> NodeInfo:
        self._managing(f"inspecting node {node_id}")
        found = self._nodes.get(node_id)
        if found is None:
            raise NotFound(f"no Swarm node {node_id!r}", field="host")
        return found

    def update_node(
        self,
        node_id: str,
        *,
        availability: Availability | None = None,
        labels: dict[str, str] | None = None,
        role: Role | None = None,
    ) -> None:
        with self._lock:
            node = self.node(node_id)
            what = f"updating node {node_id}"
            if availability is not None and availability not in AVAILABILITIES:
                raise InvalidSpec(f"{what}: invalid Availability: {availability!r}")
            if role is not None and role not in ROLES:
                raise InvalidSpec(f"{what}: invalid Role: {role!r}")
            managers = [n.id for n in self._nodes.values() if n.role == Role.MANAGER]
            if role == Role.WORKER and managers == [node_id]:
                raise Conflict(f"{what}: attempting to demote the last manager of the swarm")
            self._nodes[node_id] = replace(
                node,
                availability=availability or node.availability,
                labels=dict(labels) if labels is not None else node.labels,
                role=role or node.role,
            )
            if availability == Availability.DRAIN:
                self._tasks[node_id] = 0  # Swarm moves them to the other nodes
            if role == Role.WORKER and node.role == Role.MANAGER:
                self._demoted(node_id)

    def running_tasks(self, node_id: str) -> int:
        what = f"listing the tasks of node {node_id}"
        self._managing(what)
        if node_id not in self._nodes:
            raise NotFound(f"{what}: node {node_id} not found", field="host")
        return self._tasks.get(node_id, 0)

    def remove_node(self, node_id: str, *, force: bool = False) -> None:
        what = f"removing node {node_id}"
        self._managing(what)
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None:
                return  # gone already
            if node.role == Role.MANAGER:
                raise Conflict(
                    f"{what}: node {node_id} is a cluster manager and is a member of the raft cluster. "
                    "It must be demoted to worker before removal"
                )
            if node.state == NodeState.READY and not force:
                raise Conflict(f"{what}: node {node_id} is not down and can't be removed")
            del self._nodes[node_id]
            self._tasks.pop(node_id, None)
            self.removed.append((node_id, force))

    # -- what happens on the other hosts ------------------------------------------------------------

    def join(
        self,
        token: str,
        *,
        hostname: str,
        address: str,
        state: NodeState = NodeState.READY,
        cpus: float = 2.0,
        memory_bytes: int = 4 * 2**30,
        engine_version: str = "20.10.24",
    ) -> str:
        """A host joins with ``token`` (the worker or the manager token); returns its node id."""
        with self._lock:
            if not self._manager or token not in self._tokens:
                raise InvalidSpec("invalid join token", field="token")
            node_id = _random_id()
            role = Role.MANAGER if token == self._tokens[1] else Role.WORKER
            self._nodes[node_id] = NodeInfo(
                node_id,
                hostname,
                address,
                role,
                state,
                Availability.ACTIVE,
                {},
                cpus,
                memory_bytes,
                engine_version,
            )
            return node_id

    def leave(self, node_id: str) -> None:
        """The host of ``node_id`` left the Swarm: the manager sees its node down until it is removed
        (a node removed already stays gone)."""
        with self._lock:
            if node_id in self._nodes:
                self.set_state(node_id, NodeState.DOWN)

    def set_state(self, node_id: str, state: NodeState) -> None:
        """How the manager sees the node now: ready, down (its host died or left), unknown, ..."""
        with self._lock:
            self._nodes[node_id] = replace(self._nodes[node_id], state=state)

    def set_running_tasks(self, node_id: str, count: int) -> None:
        self._tasks[node_id] = count

    def join_another_swarm(self) -> str:
        """The local engine joins some other Swarm as a worker; returns its node id there."""
        with self._lock:
            if self._state != SwarmState.INACTIVE:
                raise Conflict("the local engine is in a Swarm already")
            self._state, self._manager, self._local_id = SwarmState.ACTIVE, False, _random_id()
            return self._local_id

    # -- helpers ------------------------------------------------------------------------------------

    def _managing(self, what: str) -> None:
        if not self._manager:
            raise Conflict(f"{what}: {NOT_A_MANAGER}")

    def _demoted(self, node_id: str) -> None:
        """A demoted leader hands the lead to another manager; a demoted local engine manages no more."""
        node = self._nodes[node_id]
        if node.leader:
            self._nodes[node_id] = replace(node, leader=False)
            heir = next(n for n in self._nodes.values() if n.role == Role.MANAGER)
            self._nodes[heir.id] = replace(heir, leader=True)
        if node_id == self._local_id:
            self._manager = False
