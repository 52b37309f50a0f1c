"""The Swarm as its manager sees it: the manager's local Docker engine initialises the Swarm, hands out
join tokens, and lists and updates the nodes. Like docker.py, this wraps the Docker SDK and turns its
errors into MyPaas errors here (``_swarm_errors``: a missing node is the ``host`` at fault, an engine
that is no Swarm manager says so)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import docker
import docker.errors

from mypaas.composer.errors import engine_errors, explain
from mypaas.errors import BackendError, Conflict, NotFound
from mypaas.states import Availability, NodeState, Role, SwarmState

E = TypeVar("E", bound=StrEnum)
_NS = 1_000_000_000
SWARM_PORT = 2377
# the task states in which a task holds (or is about to hold) a container on its node
_LIVE_TASK_STATES = frozenset({"assigned", "accepted", "preparing", "ready", "starting", "running"})
_HAS_PORT = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[^:\[\]]+):\d+\Z")


@dataclass(frozen=True)
class NodeInfo:
    """One Swarm node: what it is (hostname, resources, engine) and how Swarm sees it now."""

    id: str
    hostname: str
    address: str
    role: Role
    state: NodeState
    availability: Availability
    labels: dict[str, str] = field(default_factory=dict)
    cpus: float = 0.0
    memory_bytes: int = 0
    engine_version: str = ""
    leader: bool = False


class Nodes(Protocol):
    """What the manager needs of the Swarm (SwarmNodes below; fakes in tests)."""

    def state(self) -> SwarmState: ...

    def local_node_id(self) -> str | None: ...

    def init(self, advertise_addr: str, *, heartbeat_s: float = 1.0) -> str: ...

    def join_tokens(self) -> tuple[str, str]: ...

    def manager_addr(self) -> str: ...

    def nodes(self) -> list[NodeInfo]: ...

    def node(self, node_id: str) -> NodeInfo: ...

    def update_node(
        self,
        node_id: str,
        *,
        availability: Availability | None = None,
        labels: dict[str, str] | None = None,
        role: Role | None = None,
    ) -> None: ...

    def running_tasks(self, node_id: str) -> int: ...

    def remove_node(self, node_id: str, *, force: bool = False) -> None: ...


def _swarm_errors(what: str) -> contextlib.AbstractContextManager[None]:
    """engine_errors for the Swarm's control calls: a missing node is the ``host`` at fault, a 503
    means the engine is no Swarm manager, and a FailedPrecondition (a manager that must be demoted,
    a node not down yet) is a conflict."""
    return engine_errors(what, not_found_field="host", swarm_manager=True)


def _out_of_sequence(exc: Exception) -> bool:
    return isinstance(exc, docker.errors.APIError) and "update out of sequence" in explain(exc)


def _host_of(addr: str) -> str:
    """``10.0.0.1:2377`` -> ``10.0.0.1``; ``[fd00::1]:2377`` -> ``fd00::1``."""
    host = addr.rpartition(":")[0] if _HAS_PORT.match(addr) else addr
    return host.strip("[]")


def _member(kind: type[E], value: object, default: E) -> E:
    """The engine's word for a state as one of ours; a word we do not know is ``default``."""
    try:
        return kind(str(value)) if value else default
    except ValueError:
        return default


def node_info(raw: dict[str, Any]) -> NodeInfo:
    """A node as the engine's API describes it (``GET /nodes``) -> NodeInfo."""
    spec = raw.get("Spec") or {}
    desc = raw.get("Description") or {}
    status = raw.get("Status") or {}
    manager = raw.get("ManagerStatus") or {}
    resources = desc.get("Resources") or {}
    address = status.get("Addr") or ""
    if address in ("", "0.0.0.0") and manager.get("Addr"):  # noqa: S104 - what a manager reports, not a bind
        address = _host_of(str(manager["Addr"]))
    return NodeInfo(
        id=str(raw.get("ID", "")),
        hostname=str(desc.get("Hostname", "")),
        address=address,
        role=_member(Role, spec.get("Role"), Role.WORKER),
        state=_member(NodeState, status.get("State"), NodeState.UNKNOWN),
        availability=_member(Availability, spec.get("Availability"), Availability.ACTIVE),
        labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
        cpus=int(resources.get("NanoCPUs") or 0) / _NS,
        memory_bytes=int(resources.get("MemoryBytes") or 0),
        engine_version=str((desc.get("Engine") or {}).get("EngineVersion", "")),
        leader=bool(manager.get("Leader")),
    )


class SwarmNodes:
    """The Swarm through the manager's local engine (which is, or becomes, the Swarm manager)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api

    @classmethod
    def connect(cls, base_url: str = "unix:///var/run/docker.sock", timeout: float = 60) -> SwarmNodes:
        with engine_errors(f"cannot reach the Docker engine at {base_url}", as_error=BackendError):
            client = docker.DockerClient(base_url=base_url, version="auto", timeout=int(timeout))
        return cls(client)

    def close(self) -> None:
        self._client.close()

    # -- the Swarm itself -------------------------------------------------------------------------

    def _swarm_info(self) -> dict[str, Any]:
        with _swarm_errors("asking the engine about its Swarm"):
            info = self._api.info()
        return dict(info.get("Swarm") or {})

    def state(self) -> SwarmState:
        """The local engine's Swarm state: inactive, pending, active, error or locked."""
        return _member(SwarmState, self._swarm_info().get("LocalNodeState"), SwarmState.INACTIVE)

    def local_node_id(self) -> str | None:
        """The local engine's node id, when it is in a Swarm."""
        return self._swarm_info().get("NodeID") or None

    def init(self, advertise_addr: str, *, heartbeat_s: float = 1.0) -> str:
        """Make the local engine a Swarm manager advertised (and listening) at ``advertise_addr``, with a
        short dispatcher heartbeat so that a dead host is noticed in seconds. Returns the node id.

        Idempotent: on an engine that already manages a Swarm, only the heartbeat is set."""
        info = self._swarm_info()
        state = info.get("LocalNodeState") or "inactive"
        if state == "active" and info.get("ControlAvailable"):
            self.tune(heartbeat_s)
            return str(info.get("NodeID") or "")
        if state == "active":
            raise Conflict(
                "the local engine is a worker of another Swarm: leave it first (`docker swarm leave`)",
                field="advertise_addr",
            )
        if state != "inactive":
            raise Conflict(f"the local engine's Swarm is {state}: fix it by hand first (`docker info`)")
        listen = advertise_addr if _HAS_PORT.match(advertise_addr) else f"{advertise_addr}:{SWARM_PORT}"
        with _swarm_errors(f"initialising the Swarm at {advertise_addr}"):
            spec = self._api.create_swarm_spec(dispatcher_heartbeat_period=int(heartbeat_s * _NS))
            node_id = self._api.init_swarm(advertise_addr=advertise_addr, listen_addr=listen, swarm_spec=spec)
        return str(node_id)

    def tune(self, heartbeat_s: float) -> None:
        """Set the dispatcher heartbeat (how often nodes report; a few missed ones make a node down)."""
        period = int(heartbeat_s * _NS)
        with _swarm_errors("updating the Swarm's heartbeat"):
            for attempt in (1, 2):
                try:
                    swarm = self._api.inspect_swarm()
                    spec = dict(swarm.get("Spec") or {})
                    dispatcher = dict(spec.get("Dispatcher") or {})
                    if dispatcher.get("HeartbeatPeriod") == period:
                        return
                    spec["Dispatcher"] = dispatcher | {"HeartbeatPeriod": period}
                    self._api.update_swarm(version=swarm["Version"]["Index"], swarm_spec=spec)
                    return
                except docker.errors.DockerException as exc:
                    if attempt == 2 or not _out_of_sequence(exc):
                        raise

    def join_tokens(self) -> tuple[str, str]:
        """The (worker, manager) join tokens."""
        with _swarm_errors("reading the Swarm's join tokens"):
            tokens = self._api.inspect_swarm().get("JoinTokens") or {}
        return str(tokens.get("Worker", "")), str(tokens.get("Manager", ""))

    def manager_addr(self) -> str:
        """Where the other nodes reach this manager: ``ip:2377``."""
        info = self._swarm_info()
        node_id = info.get("NodeID")
        for remote in info.get("RemoteManagers") or []:
            if remote.get("NodeID") == node_id and remote.get("Addr"):
                return str(remote["Addr"])
        if info.get("NodeAddr"):
            return f"{info['NodeAddr']}:{SWARM_PORT}"
        raise Conflict("the local engine is not a Swarm manager: `mypaas cluster init` first")

    def leave(self, force: bool = True) -> None:
        """Make the local engine leave its Swarm (nothing to do when it is in none)."""
        with _swarm_errors("leaving the Swarm"):
            try:
                self._api.leave_swarm(force=force)
            except docker.errors.APIError as exc:
                if exc.status_code != 503 or "not part of a swarm" not in explain(exc):
                    raise

    # -- nodes ----------------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        with _swarm_errors("listing the Swarm's nodes"):
            return [node_info(raw) for raw in self._api.nodes()]

    def node(self, node_id: str) -> NodeInfo:
        return node_info(self._inspect(node_id))

    def _inspect(self, node_id: str) -> dict[str, Any]:
        with _swarm_errors(f"inspecting node {node_id}"):
            try:
                return dict(self._api.inspect_node(node_id))
            except docker.errors.NotFound as exc:
                raise NotFound(f"no Swarm node {node_id!r}", field="host") from exc

    def update_node(
        self,
        node_id: str,
        *,
        availability: Availability | None = None,
        labels: dict[str, str] | None = None,
        role: Role | None = None,
    ) -> None:
        """Change a node's availability (active, pause, drain), labels (all of them) or role."""
        for attempt in (1, 2):
            raw = self._inspect(node_id)
            spec = dict(raw.get("Spec") or {})
            if availability is not None:
                spec["Availability"] = availability
            if labels is not None:
                spec["Labels"] = dict(labels)
            if role is not None:
                spec["Role"] = role
            with _swarm_errors(f"updating node {node_id}"):
                try:
                    self._api.update_node(node_id, raw["Version"]["Index"], spec)
                    return
                except docker.errors.DockerException as exc:
                    if attempt == 2 or not _out_of_sequence(exc):  # else: changed meanwhile, read it again
                        raise

    def running_tasks(self, node_id: str) -> int:
        """How many tasks hold a container on the node (those a drain has yet to move)."""
        with _swarm_errors(f"listing the tasks of node {node_id}"):
            tasks = self._api.tasks(filters={"node": node_id})
        return sum(1 for t in tasks if (t.get("Status") or {}).get("State") in _LIVE_TASK_STATES)

    def remove_node(self, node_id: str, *, force: bool = False) -> None:
        with _swarm_errors(f"removing node {node_id}"), contextlib.suppress(docker.errors.NotFound):
            self._api.remove_node(node_id, force=force)  # NotFound: gone already
