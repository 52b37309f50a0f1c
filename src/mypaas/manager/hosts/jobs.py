"""The background work of `mypaas host add` and `mypaas host rm`: each runs on its own thread as an
operation a client follows. Adding provisions the host over its connection (facts, OS, Docker, the
engine's trust in the registry) and joins it to the Swarm; removing drains it, waits for its instances to
move, makes it leave and forgets it. A failure undoes what was done, so nothing is left half-made.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.nodes import NodeInfo, Nodes
from mypaas.errors import BackendError, Conflict, MyPaasError, NotFound
from mypaas.iaas.base import HostTarget, Machine
from mypaas.manager.hosts.hooks import ClusterHooks, Provisioner
from mypaas.manager.operations import Operations
from mypaas.manager.state.models import HostRow, OperationRow
from mypaas.states import Availability, HostState, NodeState, OperationStatus, Role

log = logging.getLogger("mypaas.hosts")

KIND_ADD, KIND_REMOVE = "host-add", "host-remove"  # the operations of an add and a removal
KIND_CREATE, KIND_DESTROY = "host-create", "host-destroy"  # and of `host create` and `host destroy`


@dataclass
class Job:
    """One add or removal in flight (the background thread's state)."""

    host_id: int
    name: str
    op_id: str
    target: HostTarget
    machine: Machine | None
    labels: dict[str, str] = field(default_factory=dict)
    manager: bool = False
    force: bool = False
    node_id: str | None = None
    joining: bool = False  # swarm_join was attempted: a failure must make the host leave again
    drained: bool = False  # a removal drained it: a failure leaves it drained
    stored_key: Path | None = None  # the key `host add --key` sent, kept by the KeyStore
    previous_state: HostState = HostState.READY
    account: str | None = None  # the driver account of a host `host create` makes
    keep_name: bool = False  # a host named by `host create`: not renamed after its hostname
    after_leave: Callable[[Callable[[str], None]], None] | None = None  # `host destroy`: delete the machine


@dataclass
class Timings:
    """How long the jobs wait for Swarm, and how often they look."""

    ready_timeout_s: float = 60.0  # a joined node must report ready within this
    drain_timeout_s: float = 120.0  # a draining node's instances must have moved within this
    poll_s: float = 1.0


class HostJobs:
    """Runs adds and removals (``run_add``/``run_remove``, each on a thread of its own)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        operations: Operations,
        nodes: Callable[[], Nodes],
        provision: Provisioner,
        hooks: ClusterHooks,
        timings: Timings,
        ensure_cluster: Callable[[Nodes, str | None, Callable[[str], None]], str],
        drop_key: Callable[[Path | None], None],
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._nodes = nodes
        self._provision = provision
        self._hooks = hooks
        self.timings = timings
        self._ensure_cluster = ensure_cluster
        self._drop_key = drop_key

    # -- adding ---------------------------------------------------------------------------------

    def run_add(self, job: Job) -> None:
        emit = self._emitter(job.op_id)
        try:
            message = self._provision_and_join(job, emit)
        except Exception as exc:  # every failure ends the operation and undoes the add, whatever raised
            if not isinstance(exc, MyPaasError):
                log.exception("adding host %s", job.target.address)
            self._undo_add(job, emit)
            self._finish(job.op_id, ok=False, message=f"adding {job.target.address} failed: {_reason(exc)}")
        else:
            self._finish(job.op_id, ok=True, message=message)
        finally:
            if job.machine is not None:
                job.machine.close()

    def _provision_and_join(self, job: Job, emit: Callable[[str], None]) -> str:
        m = job.machine
        assert m is not None
        facts = self._provision.facts(m)
        emit(
            f"{facts.hostname}: {facts.os_id} {facts.os_version} {facts.arch}, {facts.cpus} CPUs, "
            f"{_gb(facts.memory_bytes)} memory"
        )
        self._provision.check_os(facts)
        if not job.keep_name:
            job.name = self._rename(job.host_id, facts.hostname)
        version = self._provision.ensure_docker(m, emit)
        emit(f"Docker {version}")
        registries, certs = self._hooks.registries(), self._hooks.certificates()
        changed = self._provision.install_certs(m, certs)
        changed = (
            self._provision.configure_engine(m, insecure_registries=registries, mirrors=self._hooks.mirrors())
            or changed
        )
        verified = f"; it verifies {', '.join(certs)} with the platform CA" if certs else ""
        trusted = (f"; it trusts {', '.join(registries)}" if registries else "") + verified
        emit(("engine configured" if changed else "engine configuration up to date") + trusted)
        nodes = self._nodes()
        self._ensure_cluster(nodes, m.local_address, emit)
        node_id = self._join(job, nodes, m, emit)
        self._wait_ready(nodes, node_id, emit)
        if job.labels:
            nodes.update_node(node_id, labels=nodes.node(node_id).labels | job.labels)
            emit("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(job.labels.items())))
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is not None:
                row.state, row.message = HostState.READY, ""
        self._warn_even_managers(nodes, emit)
        role = Role.MANAGER if job.manager else Role.WORKER
        return f"host {job.name} ({job.target.address}) is ready: a Swarm {role}, node {node_id[:12]}"

    def _rename(self, host_id: int, hostname: str) -> str:
        """Name the host after its hostname, unless another host has that name (then keep the address)."""
        with self._sessions.begin() as s:
            row = s.get(HostRow, host_id)
            if row is None:
                raise Conflict("the host was removed meanwhile", field="host")
            taken = s.scalar(select(HostRow.id).where(HostRow.name == hostname, HostRow.id != host_id))
            if hostname and taken is None:
                row.name = hostname
            return row.name

    def _join(self, job: Job, nodes: Nodes, m: Machine, emit: Callable[[str], None]) -> str:
        existing = self._provision.swarm_node_id(m)
        if existing is not None:
            if existing not in {n.id for n in nodes.nodes()}:
                raise Conflict(
                    f"{job.target.address} is in another Swarm (node {existing}): "
                    "run `docker swarm leave` on it first",
                    field="url",
                )
            emit(f"already a node of this Swarm ({existing[:12]})")
            node_id = existing
        else:
            worker_token, manager_token = nodes.join_tokens()
            addr = nodes.manager_addr()
            role = Role.MANAGER if job.manager else Role.WORKER
            emit(f"joining the Swarm at {addr} as a {role}")
            job.joining = True
            node_id = self._provision.swarm_join(
                m,
                token=manager_token if job.manager else worker_token,
                manager=addr,
                advertise_addr=_ip_or_none(job.target.address),
            )
        job.node_id = node_id
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is not None:
                row.node_id = node_id
        return node_id

    def _wait_ready(self, nodes: Nodes, node_id: str, emit: Callable[[str], None]) -> None:
        deadline = time.monotonic() + self.timings.ready_timeout_s
        state: str = NodeState.UNKNOWN
        while True:
            try:
                state = nodes.node(node_id).state
            except NotFound:
                state = NodeState.UNKNOWN  # not visible to the manager yet
            if state == NodeState.READY:
                emit(f"node {node_id[:12]} is ready")
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"its Swarm node is not ready after {self.timings.ready_timeout_s:.0f}s (state {state}): "
                    "can it reach the manager on TCP 2377, and the other hosts on TCP/UDP 7946 and UDP 4789?"
                )
            time.sleep(self.timings.poll_s)

    def _warn_even_managers(self, nodes: Nodes, emit: Callable[[str], None]) -> None:
        managers = sum(1 for n in nodes.nodes() if n.role == Role.MANAGER)
        if managers > 1 and managers % 2 == 0:
            emit(
                f"note: the Swarm has {managers} managers; an odd number (3, 5) keeps a quorum when one fails"
            )

    def _undo_add(self, job: Job, emit: Callable[[str], None]) -> None:
        """Take the host out of the Swarm again if it joined, and forget it: nothing half-made."""
        if job.joining and job.machine is not None:
            self._leave_again(job, emit)
        self._forget(job)

    def _forget(self, job: Job) -> None:
        """Delete the host's row and the key `host add --key` stored for it."""
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is not None:
                s.delete(row)
        self._drop_key(job.stored_key)

    def _leave_again(self, job: Job, emit: Callable[[str], None]) -> None:
        assert job.machine is not None
        try:
            nodes = self._nodes()
            node_id = job.node_id or self._provision.swarm_node_id(job.machine)
            if node_id and job.manager:
                nodes.update_node(node_id, role=Role.WORKER)  # a manager leaves the Raft quorum first
            self._provision.swarm_leave(job.machine, force=True)
            emit("the host left the Swarm again")
            if node_id:
                nodes.remove_node(node_id, force=True)
        except Exception as exc:  # the add fails anyway: say what is left behind
            emit(f"cleaning up failed: {_reason(exc)}; check `docker node ls` on this machine")

    # -- removing -------------------------------------------------------------------------------

    def run_remove(self, job: Job) -> None:
        emit = self._emitter(job.op_id)
        try:
            self._drain_and_leave(job, emit)
            if job.after_leave is not None:
                job.after_leave(emit)
            with self._sessions.begin() as s:
                row = s.get(HostRow, job.host_id)
                key_path = Path(row.key_path) if row is not None and row.key_path else None
                if row is not None:
                    s.delete(row)
            self._drop_key(key_path)
        except Exception as exc:  # the host stays, with what went wrong
            if not isinstance(exc, MyPaasError):
                log.exception("removing host %s", job.name)
            with self._sessions.begin() as s:
                row = s.get(HostRow, job.host_id)
                if row is not None:
                    row.state = HostState.DRAINED if job.drained else job.previous_state
                    row.message = _reason(exc)
            verb = "destroying" if job.after_leave is not None else "removing"
            self._finish(job.op_id, ok=False, message=f"{verb} host {job.name} failed: {_reason(exc)}")
        else:
            done = "destroyed: its machine is deleted" if job.after_leave is not None else "removed"
            self._finish(job.op_id, ok=True, message=f"host {job.name} {done}")
        finally:
            if job.machine is not None:
                job.machine.close()

    def _drain_and_leave(self, job: Job, emit: Callable[[str], None]) -> None:
        nodes = self._nodes()
        node = self._node_or_none(nodes, job.node_id)
        if node is None:
            emit("it is no Swarm node (any more)")
        else:
            emit(f"draining {job.name}: its instances move to the other hosts")
            nodes.update_node(node.id, availability=Availability.DRAIN)
            job.drained = True
            if job.machine is not None and node.state == NodeState.READY:
                self._wait_moved(nodes, node.id, job, emit)
            if node.role == Role.MANAGER:
                emit("demoting it from Swarm manager to worker")
                nodes.update_node(node.id, role=Role.WORKER)
        if job.machine is not None:
            self._provision.swarm_leave(job.machine, force=True)
            emit(f"{job.name} left the Swarm")
        elif node is not None:
            emit(f"{job.name} is unreachable: removing its node without it leaving (--force)")
        if node is not None:
            down = job.machine is not None and self._wait_down(nodes, node.id)
            nodes.remove_node(node.id, force=not down)
            emit(f"node {node.id[:12]} removed from the Swarm")

    def _node_or_none(self, nodes: Nodes, node_id: str | None) -> NodeInfo | None:
        if not node_id:
            return None
        try:
            return nodes.node(node_id)
        except NotFound:
            return None

    def _wait_moved(self, nodes: Nodes, node_id: str, job: Job, emit: Callable[[str], None]) -> None:
        deadline = time.monotonic() + self.timings.drain_timeout_s
        said = -1
        while True:
            left = nodes.running_tasks(node_id)
            if left == 0:
                return
            if left != said:
                emit(f"waiting for {left} instance{'s' if left != 1 else ''} to move")
                said = left
            if time.monotonic() >= deadline:
                if job.force:
                    waited = self.timings.drain_timeout_s
                    emit(f"{left} still run after {waited:.0f}s: removing it anyway (--force)")
                    return
                raise Conflict(
                    f"{left} instance(s) still run on {job.name} after {self.timings.drain_timeout_s:.0f}s; "
                    f"it stays drained: `mypaas host rm {job.name} --force` removes it anyway",
                    field="host",
                )
            time.sleep(self.timings.poll_s)

    def _wait_down(self, nodes: Nodes, node_id: str) -> bool:
        """After a node left, the manager sees it down within a few heartbeats."""
        deadline = time.monotonic() + self.timings.ready_timeout_s
        while time.monotonic() < deadline:
            node = self._node_or_none(nodes, node_id)
            if node is None or node.state != NodeState.READY:
                return True
            time.sleep(self.timings.poll_s)
        return False

    # -- both -----------------------------------------------------------------------------------

    def _emitter(self, op_id: str) -> Callable[[str], None]:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        return emit

    def _finish(self, op_id: str, *, ok: bool, message: str) -> None:
        with self._sessions.begin() as s:
            self._ops.finish(s, op_id, ok=ok, message=message)
        self._ops.notify()


def recover(sessions: sessionmaker[Session]) -> set[tuple[str, str]]:
    """Adds and removals cannot resume after a manager restart: fail their operations, forget a host
    that never joined, and mark one caught half-way as failed, saying what to do. -> (account, name) of
    the forgotten hosts `host create` was making: the only machines the orphan sweep may delete."""
    now = time.time()
    lost: set[tuple[str, str]] = set()
    kinds = (KIND_ADD, KIND_REMOVE, KIND_CREATE, KIND_DESTROY)
    with sessions.begin() as s:
        for op in s.scalars(
            select(OperationRow).where(
                OperationRow.kind.in_(kinds), OperationRow.status == OperationStatus.RUNNING
            )
        ):
            op.status, op.finished_at = OperationStatus.FAILED, now
            op.message = "the manager restarted during this operation; run it again"
        for row in s.scalars(
            select(HostRow).where(HostRow.state.in_((HostState.ADDING, HostState.REMOVING)))
        ):
            if row.state == HostState.ADDING and not row.node_id:
                if row.account:
                    lost.add((row.account, row.name))
                s.delete(row)
                continue
            command = "destroy" if row.account else "rm"
            again = ", then `host create` it again" if row.account else " and add it again"
            verb, then = (
                ("adding", f" --force`{again}") if row.state == HostState.ADDING else ("removing", "`")
            )
            row.state = HostState.FAILED
            row.message = f"the manager restarted while {verb} it: `mypaas host {command} {row.name}{then}"
    return lost


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, MyPaasError) else f"{type(exc).__name__}: {exc}"


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _ip_or_none(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
