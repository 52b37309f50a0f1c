"""What the Docker engine reports, read into MyPaas's types (a container -> an Instance, an engine
timestamp -> unix time), and an instance's mounts as the engine wants them; shared by the docker and
swarm backends."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import docker.types

from mypaas.composer.base import (
    LABEL_APP,
    LABEL_GENERATION,
    LABEL_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    InstanceRequest,
    ServiceRequest,
)
from mypaas.composer.engine import mount_source
from mypaas.domain import HealthResult, Instance, InstanceReport, VolumeMount
from mypaas.states import InstanceState

_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_STAMP = re.compile(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _state(summary: dict[str, Any]) -> InstanceState:
    state = summary.get("State", "")
    if state == "running":
        match = _HEALTH.search(summary.get("Status", ""))
        if match is None:
            return InstanceState.STARTING  # readiness is decided by the monitor's probes
        return {
            "healthy": InstanceState.HEALTHY,
            "unhealthy": InstanceState.UNHEALTHY,
        }.get(match.group(1), InstanceState.STARTING)
    return {
        "created": InstanceState.CREATED,
        "restarting": InstanceState.RESTARTING,
        "exited": InstanceState.EXITED,
        "dead": InstanceState.EXITED,
        "paused": InstanceState.UNHEALTHY,
        "removing": InstanceState.EXITED,
    }.get(state, InstanceState.UNKNOWN)


def _exit_code(status: str) -> int | None:
    """The last exit code in a listing's status: "Exited (3) ..." or "Restarting (3) ..." (in place)."""
    match = re.match(r"(?:Exited|Restarting) \((-?\d+)\)", status)
    return int(match.group(1)) if match else None


def container_instance(summary: dict[str, Any], network: str | None = None) -> Instance:
    """A container as the engine lists it (``GET /containers/json``) -> Instance; its address is on
    ``network`` when given, else on the first network that gave it one."""
    labels = summary.get("Labels") or {}
    nets = (summary.get("NetworkSettings") or {}).get("Networks") or {}
    ip = None
    if network and network in nets:
        ip = nets[network].get("IPAddress") or None
    else:
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), None)
    port = labels.get(LABEL_PORT)
    state = _state(summary)
    return Instance(
        id=summary["Id"],
        name=(summary.get("Names") or ["/?"])[0].lstrip("/"),
        app=labels.get(LABEL_APP, ""),
        service=labels.get(LABEL_SERVICE, ""),
        release=int(labels.get(LABEL_RELEASE, "0") or 0),
        generation=int(labels.get(LABEL_GENERATION, "0") or 0),
        state=state,
        ip=ip,
        address=f"{ip}:{port}" if ip and port and state not in (InstanceState.EXITED,) else None,
        created=float(summary.get("Created", 0)),
        has_healthcheck=_HEALTH.search(summary.get("Status", "")) is not None,
        exit_code=_exit_code(summary.get("Status", "")),
        status_text=summary.get("Status", ""),
    )


def container_host_ports(summary: dict[str, Any]) -> set[int]:
    """The TCP ports a container (as the engine lists it) holds on its host."""
    return {
        int(p["PublicPort"])
        for p in summary.get("Ports") or []
        if p.get("PublicPort") and p.get("Type", "tcp") == "tcp"
    }


def inspected_instance(info: dict[str, Any], network: str) -> Instance:
    """A container as the engine inspects it (``GET /containers/{id}/json``) -> Instance, with its
    start time and restart count."""
    state = info.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    status = "Up" if state.get("Running") else f"Exited ({state.get('ExitCode', 0)})"
    if health:
        status += f" ({'health: starting' if health == 'starting' else health})"
    summary = {
        "Id": info["Id"],
        "Names": [info.get("Name", "")],
        "Labels": (info.get("Config") or {}).get("Labels") or {},
        "State": state.get("Status", ""),
        "Status": status,
        "Created": unix_time(info.get("Created")),
        "NetworkSettings": info.get("NetworkSettings") or {},
    }
    inst = container_instance(summary, network)
    started = unix_time(state.get("StartedAt"))
    return inst.model_copy(update={"started": started or None, "restarts": int(info.get("RestartCount", 0))})


def container_report(info: dict[str, Any]) -> InstanceReport:
    """A container as the engine inspects it -> how often it exited (a container restarting in place
    has exited once more than its RestartCount; a running one as often), its last exit code (unknown
    once it runs again) and its health check's last results."""
    state = info.get("State") or {}
    running = bool(state.get("Running")) and not state.get("Restarting")
    started = not str(state.get("StartedAt") or "").startswith("0001-")
    restarts = int(info.get("RestartCount") or 0)
    exits = restarts + (0 if running or not started else 1)
    health = tuple(
        HealthResult(exit_code=int(run.get("ExitCode", 0)), output=str(run.get("Output") or ""))
        for run in (state.get("Health") or {}).get("Log") or []
    )
    code = state.get("ExitCode")  # reset to 0 when the engine starts it again: unknown while it runs
    return InstanceReport(
        exits=exits,
        exit_code=int(code) if exits and not running and code is not None else None,
        health=health,
        message=str(state.get("Error") or ""),
    )


def unix_time(stamp: Any) -> float:
    """An engine timestamp (unix seconds, or RFC 3339 with nanoseconds) -> unix time; 0 for none."""
    if isinstance(stamp, int | float):
        return float(stamp)
    if not stamp or str(stamp).startswith("0001-"):
        return 0.0
    # Docker gives RFC 3339 with nanoseconds; Python wants at most microseconds.
    match = _STAMP.match(str(stamp))
    if not match:
        return 0.0
    frac = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(match.group(1) + frac + zone).timestamp()


def volume_mounts(req: InstanceRequest | ServiceRequest) -> list[docker.types.Mount]:
    """The service's mounts: host paths as they are, the app's named volumes by their engine name,
    anonymous volumes (no source: one per instance) and tmpfs folders. Options only when set."""
    mounts = [
        docker.types.Mount(
            target=v.target,
            source=v.source if v.bind else mount_source(req, v.source) or None,
            type="bind" if v.bind else "volume",
            read_only=v.read_only,
            **_mount_options(v),
        )
        for v in req.service.volumes
    ]
    mounts.extend(
        docker.types.Mount(
            target=t.target,
            source=None,
            type="tmpfs",
            read_only=t.read_only,
            tmpfs_size=t.size,
            tmpfs_mode=t.mode,
        )
        for t in req.service.tmpfs
    )
    return mounts


def _mount_options(v: VolumeMount) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if v.no_copy:
        options["no_copy"] = True
    if v.propagation:
        options["propagation"] = v.propagation
    if v.consistency:
        options["consistency"] = v.consistency
    return options
