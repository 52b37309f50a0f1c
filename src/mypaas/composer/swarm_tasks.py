"""What Swarm reports, read into MyPaas's types: a task -> an Instance, a service -> a ServiceState,
the node list -> each node's address and host name."""

from __future__ import annotations

from typing import Any

from mypaas.composer.base import (
    LABEL_APP,
    LABEL_GENERATION,
    LABEL_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    ServiceState,
)
from mypaas.composer.containers import unix_time
from mypaas.composer.swarm_spec import LABEL_SPEC
from mypaas.domain import Instance, InstanceReport
from mypaas.states import InstanceState

# Swarm task states, in order; all before "running" are on their way to it.
_STARTING = {"new", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
_GONE = {"complete", "shutdown", "failed", "rejected", "remove", "orphaned"}

# node id -> (address, host name)
NodeTable = dict[str, tuple[str, str]]


def revision(labels: dict[str, str] | None) -> tuple[int, int]:
    """(release, generation) from a service's or a task's labels."""
    labels = labels or {}
    return int(labels.get(LABEL_RELEASE, "0") or 0), int(labels.get(LABEL_GENERATION, "0") or 0)


def node_table(nodes: list[dict[str, Any]]) -> NodeTable:
    """Each node's address (where its published ports are reached) and host name."""
    known: NodeTable = {}
    for node in nodes:
        addr = (node.get("Status") or {}).get("Addr") or ""
        manager = node.get("ManagerStatus") or {}
        if addr in ("", "0.0.0.0") and manager.get("Addr"):  # noqa: S104 - reading, not binding
            addr = str(manager["Addr"]).rsplit(":", 1)[0]
        hostname = (node.get("Description") or {}).get("Hostname") or node["ID"][:12]
        known[node["ID"]] = (addr, hostname)
    return known


def service_state(row: dict[str, Any]) -> ServiceState:
    """A service as the engine lists it (``GET /services``) -> ServiceState."""
    spec = row.get("Spec") or {}
    labels = spec.get("Labels") or {}
    prev = row.get("PreviousSpec")
    update = row.get("UpdateStatus") or {}
    return ServiceState(
        id=row["ID"],
        name=spec.get("Name", ""),
        app=labels.get(LABEL_APP, ""),
        service=labels.get(LABEL_SERVICE, ""),
        release=revision(labels)[0],
        generation=revision(labels)[1],
        replicas=int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0)),
        spec_key=labels.get(LABEL_SPEC, ""),
        update_state=update.get("State") or None,
        update_message=update.get("Message", ""),
        previous=revision(prev.get("Labels")) if prev else None,
    )


def service_host_ports(row: dict[str, Any]) -> set[int]:
    """The TCP ports a service (as the engine lists it) publishes on the hosts: those its spec fixes,
    and those the engine assigned it (in ``ingress`` mode)."""
    declared = ((row.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
    assigned = (row.get("Endpoint") or {}).get("Ports") or []
    return {
        int(p["PublishedPort"])
        for p in [*declared, *assigned]
        if p.get("PublishedPort") and p.get("Protocol", "tcp") == "tcp"
    }


def _task_state(state: str, has_healthcheck: bool) -> InstanceState:
    if state == "running":
        return InstanceState.HEALTHY if has_healthcheck else InstanceState.STARTING
    if state in _STARTING:
        return InstanceState.CREATED if state in ("new", "pending", "assigned") else InstanceState.STARTING
    return InstanceState.EXITED


def _published(status: dict[str, Any], port: str | None) -> int | None:
    """The host port a task's routed ``port`` is published on. The first binding is the IPv4 one:
    with IPv6 on, the engine also binds [::] to another random port, which is not the one to reach
    at the host's IPv4 address."""
    return next(
        (
            p["PublishedPort"]
            for p in (status.get("PortStatus") or {}).get("Ports") or []
            if str(p.get("TargetPort")) == port and p.get("PublishedPort")
        ),
        None,
    )


def task_instance(task: dict[str, Any], svc_name: str, nodes: NodeTable) -> Instance | None:
    """A task as the engine lists it (``GET /tasks``) -> Instance, reached at its node's address and
    published port; None for a task that is gone (but for one that completed)."""
    status = task.get("Status") or {}
    state = status.get("State", "")
    if state in _GONE and state != "complete":
        return None
    spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
    labels = spec.get("Labels") or {}
    release, generation = revision(labels)
    node_addr, hostname = nodes.get(task.get("NodeID", ""), ("", ""))
    published = _published(status, labels.get(LABEL_PORT))
    ip = None
    for att in task.get("NetworksAttachments") or []:
        for cidr in att.get("Addresses") or []:
            ip = ip or cidr.split("/")[0]
    has_hc = (spec.get("Healthcheck") or {}).get("Test") not in (None, [], ["NONE"])
    mapped = _task_state(state, has_hc)
    container = status.get("ContainerStatus") or {}
    exit_code = container.get("ExitCode") if mapped == InstanceState.EXITED else None
    return Instance(
        id=task["ID"],
        name=f"{svc_name}.{task.get('Slot', 0)}.{task['ID'][:6]}",
        app=labels.get(LABEL_APP, ""),
        service=labels.get(LABEL_SERVICE, ""),
        release=release,
        generation=generation,
        state=mapped,
        ip=ip,
        address=f"{node_addr}:{published}" if node_addr and published and state == "running" else None,
        created=unix_time(task.get("CreatedAt")),
        started=unix_time(status.get("Timestamp")) if state == "running" else None,
        has_healthcheck=has_hc,
        exit_code=int(exit_code) if exit_code is not None else None,
        status_text=f"{state} on {nodes.get(task.get('NodeID', ''), ('', '?'))[1]}",
        node=task.get("NodeID") or None,
        host=hostname or None,
        routed=bool(labels.get(LABEL_PORT)),
    )


def task_report(task: dict[str, Any]) -> InstanceReport:
    """A task as the engine inspects it (``GET /tasks/{id}``) -> its exit code and the engine's word
    on it ("failed: task: non-zero exit (3)", "pending: no suitable node ..."), for a task whose
    container is not on this host."""
    status = task.get("Status") or {}
    state = status.get("State", "")
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    done = state in _GONE
    words = status.get("Err") or ("" if state == "running" else status.get("Message") or "")
    return InstanceReport(
        exits=1 if done and state != "complete" else 0,
        exit_code=int(code) if done and code is not None else None,
        message=f"{state}: {words}" if words else "",  # nothing to say of a task that runs
    )
