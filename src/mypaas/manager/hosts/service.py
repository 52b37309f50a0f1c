"""Hosts: the machines of the Swarm cluster. The manager's own engine is the Swarm manager; adding a host
logs in over SSH, installs and configures Docker, and joins it to the Swarm; removing one drains it
first. Both run as operations a client follows (jobs.py), and a failed one leaves nothing
half-made.

The platform's backend mode (manager/state/meta.py) becomes swarm once the cluster exists.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.nodes import NodeInfo, Nodes
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
from mypaas.manager.hosts.accounts import DriverAccounts
from mypaas.manager.hosts.cluster import Cluster, free_name
from mypaas.manager.hosts.creating import MachineJobs
from mypaas.manager.hosts.hooks import ClusterHooks, Provisioner
from mypaas.manager.hosts.jobs import KIND_ADD, KIND_DESTROY, KIND_REMOVE, Job, Timings, recover
from mypaas.manager.hosts.keys import KeyStore, MachineKey
from mypaas.manager.hosts.listing import check_label_key, check_labels, hosts_now, listing
from mypaas.manager.hosts.machines import MachineHosts
from mypaas.manager.operations import Operations
from mypaas.manager.state.models import HostRow
from mypaas.monitor.pressure import Usage
from mypaas.states import Availability, BackendMode, HostState, Role, SwarmState

log = logging.getLogger("mypaas.hosts")


class Hosts:
    """Adds, lists, drains, labels and removes the hosts of the cluster; initialises the cluster."""

    def __init__(  # noqa: PLR0913 - its collaborators, built in platform.py
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
        accounts: DriverAccounts | None = None,
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._home = home
        self._nodes = nodes_factory
        self._drivers = drivers or self._catalog_driver
        self._hooks = hooks or ClusterHooks()
        if provision is None:
            from mypaas.iaas import bootstrap

            provision = bootstrap
        self._provision: Provisioner = provision
        self._cluster = Cluster(
            sessions=sessions, nodes=nodes_factory, hooks=self._hooks, advertise_addr=advertise_addr
        )
        self.keys = KeyStore(home / "ssh" / "keys")
        self.timings = Timings()
        self._jobs = MachineJobs(
            sessions=sessions,
            operations=operations,
            nodes=nodes_factory,
            provision=self._provision,
            hooks=self._hooks,
            timings=self.timings,
            ensure_cluster=self._cluster.ensure,
            drop_key=self.keys.drop,
        )
        self.accounts = accounts or DriverAccounts(sessions=sessions)
        self.machines = MachineHosts(
            sessions=sessions,
            operations=operations,
            accounts=self.accounts,
            jobs=self._jobs,
            key=MachineKey(home / "ssh" / "machine_ed25519"),
            connect=self._connect,
            check_cluster=self._hooks.registries,
        )

    def _catalog_driver(self, name: str) -> HostDriver:
        from mypaas.iaas.catalog import driver

        if name != "ssh":
            return driver(name)
        ssh = self._home / "ssh"
        default_key = ssh / "id_ed25519"
        return driver(
            name, known_hosts=ssh / "known_hosts", default_key=default_key if default_key.is_file() else None
        )

    # -- the backend mode and the cluster (cluster.py) ------------------------------------------------

    def mode(self) -> BackendMode:
        return self._cluster.mode()

    def init_cluster(self, advertise_addr: str | None = None) -> dict[str, Any]:
        """`mypaas cluster init`: the local engine becomes the Swarm manager; the mode becomes swarm."""
        return self._cluster.init(advertise_addr)

    def cluster(self) -> dict[str, Any]:
        return self._cluster.status()

    # -- reading --------------------------------------------------------------------------------

    def _row(self, s: Session, name: str) -> HostRow:
        row = s.scalar(select(HostRow).where(HostRow.name == name))
        if row is None:
            row = s.scalar(select(HostRow).where(HostRow.address == name))
        if row is None:
            raise NotFound(f"no host {name!r} (see `mypaas host ls`)", field="host")
        return row

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
        """A cluster's hosts for `mypaas top`, with memory and disk use as last checked (``usage``, by
        host name); none on one machine, or while the engine does not answer."""
        if self.mode() != BackendMode.SWARM:
            return []
        try:
            return hosts_now(self.list(), usage)
        except MyPaasError:
            return []

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
        stored = self.keys.store(target.address, key_pem) if key_pem is not None else None
        if stored is not None:
            target = parse_host_url(url, key_path=stored, host_key=host_key)
        try:
            machine = self._connect(target, key_field="key" if stored is not None else "key_path")
        except BaseException:
            self.keys.drop(stored)
            raise
        try:
            job = self._record_add(target, machine, labels, manager, who, stored)
        except BaseException:
            machine.close()
            self.keys.drop(stored)
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
                name=free_name(s, target.address, target.address),
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

    def create(self, name: str, **options: Any) -> builtins.list[str]:
        """`host create`: make machines with a driver account and add them (machines.py). -> op ids"""
        return self.machines.create(name, **options)

    def remove(self, name: str, *, force: bool = False, who: str = "", destroy: bool = False) -> str:
        """Drain the host, wait for its instances to move, make it leave the Swarm, forget it; with
        ``destroy`` (a host `host create` made), delete its machine too. An unreachable host needs
        ``force`` (its node is then removed without it leaving). -> op id"""
        with self._sessions() as s:
            row = self._row(s, name)
            if row.driver == "local":
                raise Conflict(f"host {row.name} is the Swarm manager, this machine: it stays", field="host")
            _made_by(row, destroy)
            _not_busy(row)
            target, account = _target(row), row.account
            host_id, host = row.id, row.name
        after = self.machines.destroyer(account, target) if destroy and account else None
        machine = self._connect_for_removal(target, host, force)
        try:
            job = self._record_removal(host_id, target, machine, force, who)
            job.after_leave = after
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
            kind = KIND_DESTROY if row.account else KIND_REMOVE
            op = self._ops.new(s, app="", kind=kind, user=who)
            s.flush()
            job.op_id = op.id
        return job

    # -- after a restart --------------------------------------------------------------------------

    def recover(self) -> None:
        """Adds, creations and removals cannot resume after a manager restart (see jobs.recover); the
        machines of the creations it cut short are deleted in the background (machines.py)."""
        self.machines.sweep_in_background(recover(self._sessions))


def _made_by(row: HostRow, destroy: bool) -> None:
    """`host rm` is for hosts `host add` added; `host destroy` for those `host create` made."""
    if destroy and not row.account:
        raise Conflict(f"host {row.name} was added with `host add`; remove it with `host rm`", field="host")
    if not destroy and row.account:
        raise Conflict(
            f"host {row.name} was made by driver account {row.account}: `mypaas host destroy {row.name}` "
            "takes it out and deletes its machine",
            field="host",
        )


def _not_busy(row: HostRow) -> None:
    """Refuse to change a host while an add or a removal works on it."""
    if row.state.busy:
        doing = "added" if row.state == HostState.ADDING else "removed"
        raise Conflict(f"host {row.name} is being {doing}; wait for that first", field="host")


def _target(row: HostRow) -> HostTarget:
    """Where and how to reach a recorded host."""
    return HostTarget(
        driver=row.driver,
        address=row.address,
        port=row.port,
        user=row.user,
        key_path=Path(row.key_path) if row.key_path else None,
        host_key=row.host_key or None,
        machine_id=row.machine_id,
    )
