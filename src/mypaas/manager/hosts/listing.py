"""How the hosts are listed (the recorded rows merged with Swarm's live view of the nodes), and the
checks of host labels."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mypaas.composer.nodes import NodeInfo
from mypaas.errors import InvalidSpec
from mypaas.manager.state.models import HostRow
from mypaas.monitor.pressure import Usage
from mypaas.states import Availability, HostState, NodeState

LABEL_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}\Z")
MAX_LABEL_VALUE = 256


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


def listing(
    rows: Sequence[HostRow], live: dict[str, NodeInfo] | None, counts: dict[str, int]
) -> list[dict[str, Any]]:
    """Every recorded host with Swarm's view of its node (``live``: None when the engine did not
    answer), then the nodes that joined by hand (driver "unmanaged"); this machine first."""
    out = []
    for row in rows:
        entry = host_entry(row, (live or {}).get(row.node_id or ""), counts)
        if live is not None and row.node_id and row.node_id not in live and row.state == HostState.READY:
            entry["state"] = HostState.MISSING  # gone from the Swarm (removed by hand?)
        out.append(entry)
    if live is not None:
        known = {row.node_id for row in rows}
        out += [node_entry(n, counts) for n in live.values() if n.id not in known]
    return sorted(out, key=lambda e: (e["driver"] != "local", e["name"]))


def live_state(row_state: HostState, node: NodeInfo | None, instances: int) -> HostState:
    """What a host is now: the row's state while MyPaas works on it, else what Swarm reports."""
    if row_state.busy or node is None:
        return row_state
    if node.state in (NodeState.DOWN, NodeState.DISCONNECTED):
        return HostState.DOWN
    if node.state != NodeState.READY:
        return HostState.UNKNOWN
    if node.availability == Availability.DRAIN:
        return HostState.DRAINING if instances else HostState.DRAINED
    if node.availability == Availability.PAUSE:
        return HostState.PRESSURE if row_state == HostState.PRESSURE else HostState.PAUSED
    return HostState.READY


def host_entry(row: HostRow, node: NodeInfo | None, counts: dict[str, int]) -> dict[str, Any]:
    instances = counts.get(row.node_id or "", 0)
    return {
        "name": row.name,
        "address": row.address,
        "port": row.port or None,
        "user": row.user or None,
        "driver": row.driver,
        "account": row.account,
        "machine_id": row.machine_id,
        "role": node.role if node else row.role,
        "state": live_state(row.state, node, instances),
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


def node_entry(node: NodeInfo, counts: dict[str, int]) -> dict[str, Any]:
    """A Swarm node with no host row: it joined by hand."""
    instances = counts.get(node.id, 0)
    return {
        "name": node.hostname or node.id[:12],
        "address": node.address,
        "port": None,
        "user": None,
        "driver": "unmanaged",
        "account": None,
        "machine_id": None,
        "role": node.role,
        "state": live_state(HostState.READY, node, instances),
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


def hosts_now(listed: Sequence[dict[str, Any]], usage: Mapping[str, Usage]) -> list[dict[str, Any]]:
    """The hosts for `mypaas top`: state, instances, and memory and disk use as last checked."""
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
