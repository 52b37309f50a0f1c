"""Hosts: the machines of the Swarm cluster. The manager's own engine is the Swarm manager; adding a host
logs in over SSH, installs and configures Docker, and joins it to the Swarm; removing one drains it
first. Both run as operations a client follows, and a failed one leaves nothing half-made.

The platform's backend mode is the ``Meta`` key ``backend``: "docker" (one engine, the default) or
"swarm", set once the cluster exists.
"""

from __future__ import annotations

import builtins
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.nodes import NodeInfo, Nodes
from mypaas.errors import BackendError, Conflict, InvalidSpec, MyPaasError, NotFound
from mypaas.iaas.base import (
    HostAuthFailed,
    HostDriver,
    HostFacts,
    HostKeyUnknown,
    HostTarget,
    HostUnreachable,
    Machine,
)
from mypaas.iaas.catalog import parse_host_url
from mypaas.manager.models import HostRow, Meta, OperationRow
from mypaas.manager.operations import Operations

log = logging.getLogger("mypaas.hosts")

BACKEND_KEY = "backend"  # the Meta row of the platform's backend mode
DOCKER, SWARM = "docker", "swarm"
KIND_ADD, KIND_REMOVE = "host-add", "host-remove"
HEARTBEAT_S = 1.0  # Swarm's dispatcher heartbeat: a dead host is noticed within seconds
LABEL_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_LABEL_VALUE = 256
MAX_KEY_BYTES = 16 * 1024
_ADVERTISE = re.compile(r"^[A-Za-z0-9._:\[\]%-]{1,255}$")


class Provisioner(Protocol):
    """The steps run on a host over its connection: the ``mypaas.iaas.bootstrap`` module itself."""

    def facts(self, m: Machine) -> HostFacts: ...

    def check_os(self, f: HostFacts) -> None: ...

    def ensure_docker(self, m: Machine, emit: Callable[[str], None]) -> str: ...

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

    registries: Callable[[], list[str]] = list  # registry addresses every engine must trust
    mirrors: Callable[[], list[str] | None] = _no_mirrors  # registry mirrors for every engine
    instances_per_node: Callable[[], dict[str, int]] = dict  # node id -> running instances
    on_mode_change: Callable[[], None] = _nothing  # the backend mode just became "swarm"


@dataclass
class _Job:
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
    stored_key: Path | None = None  # the key `host add --key` sent, kept under keys_dir
    previous_state: str = "ready"


def check_labels(labels: dict[str, str], field_name: str = "labels") -> dict[str, str]:
    """Label keys look like DNS-ish keys (``zone``, ``disk.ssd``); values are printable, ≤ 256 chars."""
    for key, value in labels.items():
        check_label_key(key, field_name)
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE or not value.isprintable():
            raise InvalidSpec(
                f"label {key}: the value must be printable text of at most {MAX_LABEL_VALUE} characters",
                field=f"{field_name}.{key}",
            )
    return dict(labels)


def check_label_key(key: str, field_name: str = "labels") -> None:
    if not LABEL_KEY.match(key):
        raise InvalidSpec(
            f"invalid label key {key!r}: lower-case letters, digits, '.', '_' and '-', starting with a "
            "letter or digit",
            field=field_name,
        )


def read_mode(session: Session) -> str:
    """The platform's backend mode: "docker" unless the cluster was set up ("swarm")."""
    row = session.get(Meta, BACKEND_KEY)
    return row.value if row is not None else DOCKER


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, MyPaasError) else f"{type(exc).__name__}: {exc}"


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def _ip_or_none(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _live_state(row_state: str, node: NodeInfo | None, instances: int) -> str:
    """What a host is now: the row's state while MyPaas works on it, else what Swarm reports."""
    if row_state in ("adding", "removing") or node is None:
        return row_state
    if node.state in ("down", "disconnected"):
        return "down"
    if node.state != "ready":
        return node.state
    if node.availability == "drain":
        return "draining" if instances else "drained"
    if node.availability == "pause":
        return "pressure" if row_state == "pressure" else "paused"
    return "ready"


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
        self.ready_timeout_s = 60.0  # a joined node must report ready within this
        self.drain_timeout_s = 120.0  # a draining node's instances must have moved within this
        self.poll_s = 1.0

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

    def mode(self) -> str:
        with self._sessions() as s:
            return read_mode(s)

    def _switch_to_swarm(self, emit: Callable[[str], None]) -> None:
        """Record mode "swarm" and tell the platform, once; undone if the platform cannot switch."""
        with self._sessions.begin() as s:
            previous = s.get(Meta, BACKEND_KEY)
            before = previous.value if previous is not None else None
            if before == SWARM:
                return
            s.merge(Meta(key=BACKEND_KEY, value=SWARM))
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
            if nodes.state() != "active":
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
                    role="manager",
                    labels=node.labels,
                    host_key="",
                    state="ready",
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
        info: dict[str, Any] = {"mode": self.mode(), "swarm": "inactive", "manager_addr": None, "error": None}
        info |= {"nodes": 0, "managers": 0, "ready": 0}
        try:
            nodes = self._nodes()
            info["swarm"] = nodes.state()
            if info["swarm"] == "active":
                info["manager_addr"] = nodes.manager_addr()
                every = nodes.nodes()
                info["nodes"] = len(every)
                info["managers"] = sum(1 for n in every if n.role == "manager")
                info["ready"] = sum(1 for n in every if n.state == "ready")
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
            if nodes.state() != "active":
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
        live = self._live()
        counts = self._counts()
        out = []
        for row in rows:
            entry = _entry(row, (live or {}).get(row.node_id or ""), counts)
            if live is not None and row.node_id and row.node_id not in live and row.state == "ready":
                entry["state"] = "missing"  # gone from the Swarm (removed by hand?)
            out.append(entry)
        if live is not None:
            known = {row.node_id for row in rows}
            out += [_node_entry(n, counts) for n in live.values() if n.id not in known]
        return sorted(out, key=lambda e: (e["driver"] != "local", e["name"]))

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
        threading.Thread(target=self._run_add, args=(job,), name=f"host-add {job.name}", daemon=True).start()
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
    ) -> _Job:
        with self._sessions.begin() as s:
            self._check_address_free(s, target.address)  # again: another add may have won meanwhile
            row = HostRow(
                name=self._free_name(s, target.address, target.address),
                address=target.address,
                port=target.port,
                user=target.user,
                driver=target.driver,
                role="manager" if manager else "worker",
                labels=labels,
                state="adding",
                host_key=target.host_key or "",
                key_path=str(stored or target.key_path) if (stored or target.key_path) else None,
            )
            s.add(row)
            op = self._ops.new(s, app="", kind=KIND_ADD, user=who)
            s.flush()
            return _Job(
                row.id, row.name, op.id, target, machine, labels=labels, manager=manager, stored_key=stored
            )

    def _emitter(self, op_id: str) -> Callable[[str], None]:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        return emit

    def _run_add(self, job: _Job) -> None:
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

    def _provision_and_join(self, job: _Job, emit: Callable[[str], None]) -> str:
        m = job.machine
        assert m is not None
        facts = self._provision.facts(m)
        emit(
            f"{facts.hostname}: {facts.os_id} {facts.os_version} {facts.arch}, {facts.cpus} CPUs, "
            f"{_gb(facts.memory_bytes)} memory"
        )
        self._provision.check_os(facts)
        job.name = self._rename(job.host_id, facts.hostname)
        version = self._provision.ensure_docker(m, emit)
        emit(f"Docker {version}")
        registries = self._hooks.registries()
        changed = self._provision.configure_engine(
            m, insecure_registries=registries, mirrors=self._hooks.mirrors()
        )
        trusted = f"; it trusts {', '.join(registries)}" if registries else ""
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
                row.state, row.message = "ready", ""
        self._warn_even_managers(nodes, emit)
        role = "manager" if job.manager else "worker"
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

    def _join(self, job: _Job, nodes: Nodes, m: Machine, emit: Callable[[str], None]) -> str:
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
            role = "manager" if job.manager else "worker"
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
        deadline = time.monotonic() + self.ready_timeout_s
        state = "unknown"
        while True:
            try:
                state = nodes.node(node_id).state
            except NotFound:
                state = "unknown"  # not visible to the manager yet
            if state == "ready":
                emit(f"node {node_id[:12]} is ready")
                return
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"its Swarm node is not ready after {self.ready_timeout_s:.0f}s (state {state}): can it "
                    "reach the manager on TCP 2377, and the other hosts on TCP/UDP 7946 and UDP 4789?"
                )
            time.sleep(self.poll_s)

    def _warn_even_managers(self, nodes: Nodes, emit: Callable[[str], None]) -> None:
        managers = sum(1 for n in nodes.nodes() if n.role == "manager")
        if managers > 1 and managers % 2 == 0:
            emit(
                f"note: the Swarm has {managers} managers; an odd number (3, 5) keeps a quorum when one fails"
            )

    def _undo_add(self, job: _Job, emit: Callable[[str], None]) -> None:
        """Take the host out of the Swarm again if it joined, and forget it: nothing half-made."""
        if job.joining and job.machine is not None:
            self._leave_again(job, emit)
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is not None:
                s.delete(row)
        self._drop_key(job.stored_key)

    def _leave_again(self, job: _Job, emit: Callable[[str], None]) -> None:
        assert job.machine is not None
        try:
            nodes = self._nodes()
            node_id = job.node_id or self._provision.swarm_node_id(job.machine)
            if node_id and job.manager:
                nodes.update_node(node_id, role="worker")  # a manager leaves the Raft quorum first
            self._provision.swarm_leave(job.machine, force=True)
            emit("the host left the Swarm again")
            if node_id:
                nodes.remove_node(node_id, force=True)
        except Exception as exc:  # the add fails anyway: say what is left behind
            emit(f"cleaning up failed: {_reason(exc)}; check `docker node ls` on this machine")

    def _finish(self, op_id: str, *, ok: bool, message: str) -> None:
        with self._sessions.begin() as s:
            self._ops.finish(s, op_id, ok=ok, message=message)
        self._ops.notify()

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
        if row.state in ("adding", "removing"):
            raise Conflict(f"host {row.name} is being {row.state[:-3]}ed; wait for that first", field="host")
        if not row.node_id:
            raise Conflict(f"host {row.name} is not a Swarm node", field="host")
        return row

    def drain(self, name: str) -> dict[str, Any]:
        """Move the host's instances elsewhere and place none there until `activate`."""
        return self._availability(name, "drain", "drained")

    def activate(self, name: str) -> dict[str, Any]:
        """Let the Swarm place instances on the host again."""
        return self._availability(name, "active", "ready")

    def pause_for_pressure(self, name: str, why: str) -> None:
        """Place no new instances on a host short of memory or disk (the running ones stay)."""
        self._availability(name, "pause", "pressure")
        with self._sessions.begin() as s:
            row = self._row(s, name)
            row.message = why

    def machine(self, name: str) -> Machine:
        """A connection to the host (over its driver: SSH, or this machine), for a check."""
        with self._sessions() as s:
            row = self._row(s, name)
            target = HostTarget(
                driver=row.driver,
                address=row.address,
                port=row.port,
                user=row.user,
                key_path=Path(row.key_path) if row.key_path else None,
                host_key=row.host_key or None,
            )
        return self._connect(target)

    def _availability(self, name: str, availability: str, state: str) -> dict[str, Any]:
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
            if row.state in ("adding", "removing"):
                raise Conflict(
                    f"host {row.name} is being {row.state[:-3]}ed; wait for that first", field="host"
                )
            target = HostTarget(
                driver=row.driver,
                address=row.address,
                port=row.port,
                user=row.user,
                key_path=Path(row.key_path) if row.key_path else None,
                host_key=row.host_key or None,
            )
            host_id, host = row.id, row.name
        machine = self._connect_for_removal(target, host, force)
        try:
            job = self._record_removal(host_id, target, machine, force, who)
        except BaseException:
            if machine is not None:
                machine.close()
            raise
        threading.Thread(target=self._run_remove, args=(job,), name=f"host-rm {host}", daemon=True).start()
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
    ) -> _Job:
        with self._sessions.begin() as s:
            row = s.get(HostRow, host_id)
            if row is None:
                raise NotFound(f"no host {target.address!r}", field="host")
            if row.state in ("adding", "removing"):
                raise Conflict(
                    f"host {row.name} is being {row.state[:-3]}ed; wait for that first", field="host"
                )
            job = _Job(row.id, row.name, "", target, machine, force=force, node_id=row.node_id)
            job.previous_state, job.manager = row.state, row.role == "manager"
            row.state, row.message = "removing", ""
            op = self._ops.new(s, app="", kind=KIND_REMOVE, user=who)
            s.flush()
            job.op_id = op.id
        return job

    def _run_remove(self, job: _Job) -> None:
        emit = self._emitter(job.op_id)
        try:
            self._drain_and_leave(job, emit)
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
                    row.state = "drained" if job.drained else job.previous_state
                    row.message = _reason(exc)
            self._finish(job.op_id, ok=False, message=f"removing host {job.name} failed: {_reason(exc)}")
        else:
            self._finish(job.op_id, ok=True, message=f"host {job.name} removed")
        finally:
            if job.machine is not None:
                job.machine.close()

    def _drain_and_leave(self, job: _Job, emit: Callable[[str], None]) -> None:
        nodes = self._nodes()
        node = self._node_or_none(nodes, job.node_id)
        if node is None:
            emit("it is no Swarm node (any more)")
        else:
            emit(f"draining {job.name}: its instances move to the other hosts")
            nodes.update_node(node.id, availability="drain")
            job.drained = True
            if job.machine is not None and node.state == "ready":
                self._wait_moved(nodes, node.id, job, emit)
            if node.role == "manager":
                emit("demoting it from Swarm manager to worker")
                nodes.update_node(node.id, role="worker")
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

    def _wait_moved(self, nodes: Nodes, node_id: str, job: _Job, emit: Callable[[str], None]) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
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
                    emit(f"{left} still run after {self.drain_timeout_s:.0f}s: removing it anyway (--force)")
                    return
                raise Conflict(
                    f"{left} instance(s) still run on {job.name} after {self.drain_timeout_s:.0f}s; "
                    f"it stays drained: `mypaas host rm {job.name} --force` removes it anyway",
                    field="host",
                )
            time.sleep(self.poll_s)

    def _wait_down(self, nodes: Nodes, node_id: str) -> bool:
        """After a node left, the manager sees it down within a few heartbeats."""
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            node = self._node_or_none(nodes, node_id)
            if node is None or node.state != "ready":
                return True
            time.sleep(self.poll_s)
        return False

    # -- after a restart --------------------------------------------------------------------------

    def recover(self) -> None:
        """Adds and removals cannot resume after a manager restart: fail their operations, forget a host
        that never joined, and mark one caught half-way as failed, saying what to do."""
        now = time.time()
        kinds = (KIND_ADD, KIND_REMOVE)
        with self._sessions.begin() as s:
            for op in s.scalars(
                select(OperationRow).where(OperationRow.kind.in_(kinds), OperationRow.status == "running")
            ):
                op.status, op.finished_at = "failed", now
                op.message = "the manager restarted during this operation; run it again"
            for row in s.scalars(select(HostRow).where(HostRow.state.in_(("adding", "removing")))):
                if row.state == "adding" and not row.node_id:
                    s.delete(row)
                    continue
                verb, then = (
                    ("adding", " --force` and add it again") if row.state == "adding" else ("removing", "`")
                )
                row.state = "failed"
                row.message = f"the manager restarted while {verb} it: `mypaas host rm {row.name}{then}"


def _key_file(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", address) + ".key"


def _entry(row: HostRow, node: NodeInfo | None, counts: dict[str, int]) -> dict[str, Any]:
    instances = counts.get(row.node_id or "", 0)
    return {
        "name": row.name,
        "address": row.address,
        "port": row.port or None,
        "user": row.user or None,
        "driver": row.driver,
        "role": node.role if node else row.role,
        "state": _live_state(row.state, node, instances),
        "availability": node.availability if node else None,
        "labels": node.labels if node else dict(row.labels),
        "cpus": node.cpus if node else None,
        "memory_bytes": node.memory_bytes if node else None,
        "engine_version": node.engine_version if node else None,
        "instances": instances,
        "node_id": row.node_id,
        "leader": node.leader if node else False,
        "message": row.message,
        "created_at": row.created_at,
    }


def _node_entry(node: NodeInfo, counts: dict[str, int]) -> dict[str, Any]:
    """A Swarm node with no host row: it joined by hand."""
    instances = counts.get(node.id, 0)
    return {
        "name": node.hostname or node.id[:12],
        "address": node.address,
        "port": None,
        "user": None,
        "driver": "unmanaged",
        "role": node.role,
        "state": _live_state("ready", node, instances),
        "availability": node.availability,
        "labels": node.labels,
        "cpus": node.cpus,
        "memory_bytes": node.memory_bytes,
        "engine_version": node.engine_version,
        "instances": instances,
        "node_id": node.id,
        "leader": node.leader,
        "message": "joined the Swarm outside MyPaas",
        "created_at": None,
    }
