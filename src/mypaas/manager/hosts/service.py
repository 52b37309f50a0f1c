"""Hosts: the machines of the Swarm cluster. The manager's own engine is the Swarm manager; adding a host
logs in over SSH, installs and configures Docker, and joins it to the Swarm; removing one drains it
first. Both run as operations a client follows (jobs.py), and a failed one leaves nothing
half-made.

The platform's backend mode (manager/state/meta.py) becomes swarm once the cluster exists.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.nodes import NodeInfo, Nodes
from mypaas.domain import Availability, BackendMode, HostState, NodeState, OperationStatus, Role, SwarmState
from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound
from mypaas.iaas.base import (
    HostAuthFailed,
    HostDriver,
    HostKeyUnknown,
    HostTarget,
    HostUnreachable,
    Machine,
    run_checked,
)
from mypaas.iaas.catalog import parse_host_url
from mypaas.manager.hosts.jobs import ClusterHooks, HostJobs, Job, Provisioner, Timings
from mypaas.manager.hosts.listing import check_label_key, check_labels, listing
from mypaas.manager.operations import Operations
from mypaas.manager.state.meta import BACKEND_KEY, read_mode
from mypaas.manager.state.models import HostRow, Meta, OperationRow
from mypaas.monitor.pressure import Usage

log = logging.getLogger("mypaas.hosts")

KIND_ADD, KIND_REMOVE = "host-add", "host-remove"
HEARTBEAT_S = 1.0  # Swarm's dispatcher heartbeat: a dead host is noticed within seconds
MAX_KEY_BYTES = 16 * 1024
_ADVERTISE = re.compile(r"^[A-Za-z0-9._:\[\]%-]{1,255}$")


class Hosts:
    """Adds, lists, drains, labels and removes the hosts of the cluster; initialises the cluster."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        operations: Operations,
        home: Path,
        nodes_factory: Callable[[], Nodes],
        drivers: Callable[[str], HostDriver] | None = None,
        hooks: ClusterHooks | None = None,
        advertise_addr: str | None = None,
        provision: Provisioner | None = None,
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._home = home
        self._nodes = nodes_factory
        self._drivers = drivers or self._catalog_driver
        self._hooks = hooks or ClusterHooks()
        self._advertise = advertise_addr or None
        if provision is None:
            from mypaas.iaas import bootstrap

            provision = bootstrap
        self._provision: Provisioner = provision
        self._cluster_lock = threading.Lock()  # one Swarm init / mode switch at a time
        self.timings = Timings()
        self._jobs = HostJobs(
            sessions=sessions,
            operations=operations,
            nodes=nodes_factory,
            provision=self._provision,
            hooks=self._hooks,
            timings=self.timings,
            ensure_cluster=self._ensure_cluster,
            drop_key=self._drop_key,
        )

    @property
    def keys_dir(self) -> Path:
        return self._home / "ssh" / "keys"

    def _catalog_driver(self, name: str) -> HostDriver:
        from mypaas.iaas.catalog import driver

        if name != "ssh":
            return driver(name)
        ssh = self._home / "ssh"
        default_key = ssh / "id_ed25519"
        return driver(
            name, known_hosts=ssh / "known_hosts", default_key=default_key if default_key.is_file() else None
        )

    # -- the backend mode and the cluster -------------------------------------------------------------

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

    def _ensure_cluster(self, nodes: Nodes, local_address: str | None, emit: Callable[[str], None]) -> str:
        """Make the local engine a Swarm manager (idempotent), record it, switch the mode. -> node id"""
        with self._cluster_lock:
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
                    name=self._free_name(s, node.hostname or "manager", "manager"),
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

    def init_cluster(self, advertise_addr: str | None = None) -> dict[str, Any]:
        """`mypaas cluster init`: the local engine becomes the Swarm manager; the mode becomes swarm."""
        if advertise_addr is not None and not _ADVERTISE.match(advertise_addr):
            raise InvalidSpec(
                f"invalid advertise address {advertise_addr!r}: an IP address or interface [:PORT]",
                field="advertise_addr",
            )
        if advertise_addr:
            self._advertise = advertise_addr
        self._ensure_cluster(self._nodes(), None, lambda line: log.info("%s", line))
        return self.cluster()

    def cluster(self) -> dict[str, Any]:
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

    # -- reading --------------------------------------------------------------------------------

    def _row(self, s: Session, name: str) -> HostRow:
        row = s.scalar(select(HostRow).where(HostRow.name == name))
        if row is None:
            row = s.scalar(select(HostRow).where(HostRow.address == name))
        if row is None:
            raise NotFound(f"no host {name!r} (see `mypaas host ls`)", field="host")
        return row

    @staticmethod
    def _free_name(s: Session, wanted: str, fallback: str) -> str:
        for name in (wanted, fallback):
            if name and s.scalar(select(HostRow.id).where(HostRow.name == name)) is None:
                return name
        n = 2
        while s.scalar(select(HostRow.id).where(HostRow.name == f"{fallback}-{n}")) is not None:
            n += 1
        return f"{fallback}-{n}"

    def _live(self) -> dict[str, NodeInfo] | None:
        """The Swarm's nodes by id; None when there is no Swarm (or the engine does not answer)."""
        try:
            nodes = self._nodes()
            if nodes.state() != SwarmState.ACTIVE:
                return None
            return {n.id: n for n in nodes.nodes()}
        except MyPaasError as exc:
            log.warning("listing the Swarm's nodes: %s", exc.message)
            return None

    def _counts(self) -> dict[str, int]:
        try:
            return dict(self._hooks.instances_per_node())
        except Exception:  # the figures are a nicety: a listing never fails for them
            log.exception("counting instances per node")
            return {}

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every host, with Swarm's live view of it (state, resources) and its instance count; nodes
        that joined the Swarm by hand are listed too (driver "unmanaged")."""
        with self._sessions() as s:
            rows = s.scalars(select(HostRow).order_by(HostRow.id)).all()
        return listing(rows, self._live(), self._counts())

    def now(self, usage: Mapping[str, Usage]) -> builtins.list[dict[str, Any]]:
        """A cluster's hosts for `mypaas top`: state, instances, and memory and disk use as last
        checked (``usage``, by host name); none on one machine, or while the engine does not answer."""
        if self.mode() != BackendMode.SWARM:
            return []
        try:
            listed = self.list()
        except MyPaasError:
            return []
        out = []
        for h in listed:
            checked = usage.get(str(h["name"]))
            out.append(
                {
                    "name": h["name"],
                    "state": h["state"],
                    "instances": h["instances"],
                    "cpus": h["cpus"],
                    "memory_bytes": h["memory_bytes"],
                    "mem_pct": round(checked.mem_pct, 1) if checked else None,
                    "disk_pct": checked.disk_pct if checked else None,
                }
            )
        return out

    def get(self, name: str) -> dict[str, Any]:
        with self._sessions() as s:
            row_name = self._row(s, name).name
        return next(e for e in self.list() if e["name"] == row_name)

    # -- adding ---------------------------------------------------------------------------------

    def add(
        self,
        url: str,
        *,
        key_path: Path | None = None,
        key_pem: str | None = None,
        labels: dict[str, str] | None = None,
        manager: bool = False,
        host_key: str | None = None,
        who: str = "",
    ) -> str:
        """Connect to the host now (an unknown host key is reported at once: HostKeyUnknown, nothing
        recorded), record it, then install, configure and join it in the background. -> operation id"""
        target = parse_host_url(url, key_path=key_path, host_key=host_key)
        if target.driver == "local":
            raise InvalidSpec(
                "the manager's own machine joins with `mypaas cluster init`, not `host add`", field="url"
            )
        labels = check_labels(labels or {})
        self._hooks.registries()  # says at once when the cluster's address is not set (nothing made yet)
        with self._sessions() as s:
            self._check_address_free(s, target.address)
        stored = self._store_key(target.address, key_pem) if key_pem is not None else None
        if stored is not None:
            target = parse_host_url(url, key_path=stored, host_key=host_key)
        try:
            machine = self._connect(target, key_field="key" if stored is not None else "key_path")
        except BaseException:
            self._drop_key(stored)
            raise
        try:
            job = self._record_add(target, machine, labels, manager, who, stored)
        except BaseException:
            machine.close()
            self._drop_key(stored)
            raise
        threading.Thread(
            target=self._jobs.run_add, args=(job,), name=f"host-add {job.name}", daemon=True
        ).start()
        return job.op_id

    def _check_address_free(self, s: Session, address: str) -> None:
        taken = s.scalar(select(HostRow).where(HostRow.address == address))
        if taken is not None:
            raise Conflict(f"{address} is already host {taken.name} ({taken.state})", field="url")

    def _connect(self, target: HostTarget, *, key_field: str = "key_path") -> Machine:
        try:
            return self._drivers(target.driver).connect(target)
        except InvalidSpec as exc:
            if exc.field == "key_path" and key_field != "key_path":
                raise InvalidSpec(exc.message, field=key_field) from exc
            raise

    def _record_add(
        self,
        target: HostTarget,
        machine: Machine,
        labels: dict[str, str],
        manager: bool,
        who: str,
        stored: Path | None,
    ) -> Job:
        with self._sessions.begin() as s:
            self._check_address_free(s, target.address)  # again: another add may have won meanwhile
            row = HostRow(
                name=self._free_name(s, target.address, target.address),
                address=target.address,
                port=target.port,
                user=target.user,
                driver=target.driver,
                role=Role.MANAGER if manager else Role.WORKER,
                labels=labels,
                state=HostState.ADDING,
                host_key=target.host_key or "",
                key_path=str(stored or target.key_path) if (stored or target.key_path) else None,
            )
            s.add(row)
            op = self._ops.new(s, app="", kind=KIND_ADD, user=who)
            s.flush()
            return Job(
                row.id, row.name, op.id, target, machine, labels=labels, manager=manager, stored_key=stored
            )

    # -- SSH keys sent with `host add --key` ------------------------------------------------------

    def _store_key(self, address: str, pem: str) -> Path:
        """Keep the private key the manager logs in to ``address`` with (mode 0600)."""
        text = pem.strip()
        if (
            len(text) > MAX_KEY_BYTES
            or not text.startswith("-----BEGIN ")
            or not re.search(r"-----END [A-Z0-9 ]*PRIVATE KEY-----$", text)
        ):
            raise InvalidSpec(
                "the key is not a PEM private key (-----BEGIN ... PRIVATE KEY-----, as in ~/.ssh/id_ed25519)",
                field="key",
            )
        self.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.keys_dir / _key_file(address)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return path

    def _drop_key(self, path: Path | None) -> None:
        if path is not None and path.parent == self.keys_dir:
            path.unlink(missing_ok=True)

    # -- changing a host ------------------------------------------------------------------------

    def _settled(self, s: Session, name: str) -> HostRow:
        """A host no add or removal is working on, that is a Swarm node."""
        row = self._row(s, name)
        _not_busy(row)
        if not row.node_id:
            raise Conflict(f"host {row.name} is not a Swarm node", field="host")
        return row

    def drain(self, name: str) -> dict[str, Any]:
        """Move the host's instances elsewhere and place none there until `activate`."""
        return self._availability(name, Availability.DRAIN, HostState.DRAINED)

    def activate(self, name: str) -> dict[str, Any]:
        """Let the Swarm place instances on the host again."""
        return self._availability(name, Availability.ACTIVE, HostState.READY)

    def pause_for_pressure(self, name: str, why: str) -> None:
        """Place no new instances on a host short of memory or disk (the running ones stay)."""
        self._availability(name, Availability.PAUSE, HostState.PRESSURE)
        with self._sessions.begin() as s:
            row = self._row(s, name)
            row.message = why

    def machine(self, name: str) -> Machine:
        """A connection to the host (over its driver: SSH, or this machine), for a check."""
        with self._sessions() as s:
            row = self._row(s, name)
            target = _target(row)
        return self._connect(target)

    def run(self, name: str, argv: Sequence[str], *, what: str, timeout: float) -> None:
        """Run a command on the host over its connection; a non-zero exit raises CommandFailed."""
        machine = self.machine(name)
        try:
            run_checked(machine, argv, what=what, timeout=timeout)
        finally:
            machine.close()

    def _availability(self, name: str, availability: Availability, state: HostState) -> dict[str, Any]:
        with self._sessions() as s:
            row = self._settled(s, name)
            node_id, host_id = row.node_id or "", row.id
        self._nodes().update_node(node_id, availability=availability)
        with self._sessions.begin() as s:
            changed = s.get(HostRow, host_id)
            if changed is not None:
                changed.state, changed.message = state, ""
        return self.get(name)

    def label(self, name: str, set_: dict[str, str], remove: Sequence[str]) -> dict[str, Any]:
        """Set and remove the host's node labels (what placement constraints match)."""
        check_labels(set_, "set")
        for key in remove:
            check_label_key(key, "remove")
        both = sorted(set(set_) & set(remove))
        if both:
            raise InvalidSpec(f"label {both[0]} is both set and removed", field="remove")
        if not set_ and not remove:
            raise InvalidSpec("nothing to change: give KEY=VALUE to set or KEY- to remove", field="set")
        with self._sessions() as s:
            row = self._settled(s, name)
            node_id, host_id, host = row.node_id or "", row.id, row.name
        nodes = self._nodes()
        labels = dict(nodes.node(node_id).labels)
        missing = [k for k in remove if k not in labels]
        if missing:
            raise NotFound(f"host {host} has no label {missing[0]!r}", field="remove")
        labels = {k: v for k, v in labels.items() if k not in remove} | set_
        nodes.update_node(node_id, labels=labels)
        with self._sessions.begin() as s:
            changed = s.get(HostRow, host_id)
            if changed is not None:
                changed.labels = labels
        return self.get(name)

    # -- removing -------------------------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False, who: str = "") -> str:
        """Drain the host, wait for its instances to move, make it leave the Swarm, forget it.
        An unreachable host needs ``force`` (its node is then removed without it leaving). -> op id"""
        with self._sessions() as s:
            row = self._row(s, name)
            if row.driver == "local":
                raise Conflict(f"host {row.name} is the Swarm manager, this machine: it stays", field="host")
            _not_busy(row)
            target = _target(row)
            host_id, host = row.id, row.name
        machine = self._connect_for_removal(target, host, force)
        try:
            job = self._record_removal(host_id, target, machine, force, who)
        except BaseException:
            if machine is not None:
                machine.close()
            raise
        threading.Thread(
            target=self._jobs.run_remove, args=(job,), name=f"host-rm {host}", daemon=True
        ).start()
        return job.op_id

    def _connect_for_removal(self, target: HostTarget, host: str, force: bool) -> Machine | None:
        try:
            return self._connect(target)
        except MyPaasError as exc:
            if force:
                return None  # its node is removed without it leaving
            if not isinstance(exc, HostUnreachable | HostAuthFailed | HostKeyUnknown):
                raise
            raise Conflict(
                f"cannot reach host {host}: {exc.message}; `mypaas host rm {host} --force` removes it from "
                "the Swarm without it leaving",
                field="host",
            ) from exc

    def _record_removal(
        self, host_id: int, target: HostTarget, machine: Machine | None, force: bool, who: str
    ) -> Job:
        with self._sessions.begin() as s:
            row = s.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"no host {target.address!r}", field="host")
            _not_busy(row)
            job = Job(row.id, row.name, "", target, machine, force=force, node_id=row.node_id)
            job.previous_state, job.manager = row.state, row.role == Role.MANAGER
            row.state, row.message = HostState.REMOVING, ""
            op = self._ops.new(s, app="", kind=KIND_REMOVE, user=who)
            s.flush()
            job.op_id = op.id
        return job

    # -- after a restart --------------------------------------------------------------------------

    def recover(self) -> None:
        """Adds and removals cannot resume after a manager restart: fail their operations, forget a host
        that never joined, and mark one caught half-way as failed, saying what to do."""
        now = time.time()
        kinds = (KIND_ADD, KIND_REMOVE)
        with self._sessions.begin() as s:
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
                    s.delete(row)
                    continue
                verb, then = (
                    ("adding", " --force` and add it again")
                    if row.state == HostState.ADDING
                    else ("removing", "`")
                )
                row.state = HostState.FAILED
                row.message = f"the manager restarted while {verb} it: `mypaas host rm {row.name}{then}"


def _not_busy(row: HostRow) -> None:
    """Refuse to change a host while an add or a removal works on it."""
    if row.state.busy:
        doing = "added" if row.state == HostState.ADDING else "removed"
        raise Conflict(f"host {row.name} is being {doing}; wait for that first", field="host")


def _key_file(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", address) + ".key"


def _target(row: HostRow) -> HostTarget:
    """Where and how to reach a recorded host."""
    return HostTarget(
        driver=row.driver,
        address=row.address,
        port=row.port,
        user=row.user,
        key_path=Path(row.key_path) if row.key_path else None,
        host_key=row.host_key or None,
    )
