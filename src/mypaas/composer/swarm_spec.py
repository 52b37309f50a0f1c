"""What MyPaas asks of Swarm: a ServiceRequest as the engine's service spec (the SDK's create/update
arguments), its name, and the key that says whether a running service already has it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import docker.types

from mypaas.composer.base import ServiceRequest
from mypaas.composer.containers import volume_mounts
from mypaas.composer.engine import instance_labels, service_name, service_networks
from mypaas.composer.options import (
    aliases,
    healthcheck,
    log_options,
    swarm_container,
    swarm_mode,
    swarm_restart,
    swarm_task,
    swarm_update,
)
from mypaas.composer.swarm_secrets import references
from mypaas.container_options import check_swarm
from mypaas.domain import ServiceSpec

_NS = 1_000_000_000
LABEL_SPEC = "mypaas.spec"


@dataclass(frozen=True)
class Rollout:
    """How Swarm restarts and rolls out every service of the platform."""

    restart_delay_s: float = 1.0
    update_delay_s: float = 2.0
    update_monitor_s: float = 5.0
    ipvs: bool = True  # routed ports by virtual IP (IPVS); else DNS round-robin


def service_key(req: ServiceRequest, rollout: Rollout, constraints: list[str]) -> str:
    """A digest of everything in the spec but the replica count: equal keys need no rollout."""
    body = service_spec(req, rollout, constraints, replicas=0, key="")
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def service_spec(
    req: ServiceRequest,
    rollout: Rollout,
    constraints: list[str],
    *,
    replicas: int,
    key: str,
    secret_ids: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The create/update arguments of the SDK for ``req`` (the same every time for the same input);
    ``key`` is kept in a label, for ``list_services`` to report. ``secret_ids``: the engine ids of
    the Swarm secrets and configs ``req`` mounts, by name (none: the spec for the key, without ids)."""
    svc = req.service
    check_swarm(svc, f"services.{svc.name}")
    labels = {**svc.service_labels, **instance_labels(req)}
    if key:
        labels = {**labels, LABEL_SPEC: key}
    update = swarm_update(svc, rollout.update_delay_s, rollout.update_monitor_s)
    monitor = int(rollout.update_monitor_s * _NS)
    return {
        "task_template": swarm_task(svc, _task_template(req, rollout, constraints, secret_ids)),
        "name": service_name(req.app, svc.name, req.release, req.generation),
        "labels": labels,
        "mode": swarm_mode(svc, replicas),
        "update_config": docker.types.UpdateConfig(**update),
        "rollback_config": docker.types.RollbackConfig(
            parallelism=0, failure_action="pause", monitor=monitor, order=update["order"]
        ),
        # the SDK's EndpointSpec cannot say "host mode, any port": the engine's own JSON instead
        "endpoint_spec": {"Mode": "vip" if rollout.ipvs else "dnsrr", "Ports": published_ports(svc)},
    }


def _task_template(
    req: ServiceRequest, rollout: Rollout, constraints: list[str], secret_ids: Mapping[str, str] | None
) -> docker.types.TaskTemplate:
    svc = req.service
    mounts = volume_mounts(req)
    secrets, configs = references(req.app, req.secret_files, secret_ids)
    hc = svc.healthcheck
    container = docker.types.ContainerSpec(
        image=req.image,
        command=svc.entrypoint,
        args=svc.command,
        env=[f"{k}={v}" for k, v in sorted(req.environment.items())],
        labels=instance_labels(req),
        mounts=mounts or None,
        healthcheck=docker.types.Healthcheck(**healthcheck(hc)) if hc else None,
        init=True,
        stop_grace_period=10 * _NS,
        secrets=secrets or None,
        configs=configs or None,
    )
    driver, log = log_options(svc)
    return docker.types.TaskTemplate(
        container_spec=swarm_container(svc, container),
        resources=docker.types.Resources(
            cpu_limit=int(svc.cpus * _NS) if svc.cpus else None,
            mem_limit=svc.memory,
            cpu_reservation=int(svc.reserve_cpus * _NS) if svc.reserve_cpus else None,
            mem_reservation=svc.reserve_memory,
        ),
        restart_policy=swarm_restart(svc, rollout.restart_delay_s),
        placement=docker.types.Placement(constraints=constraints or None, preferences=None),
        log_driver={"Name": driver, "Options": log},
        networks=[
            {"Target": net, "Aliases": aliases(svc, name)}
            for net, name in zip(service_networks(req), req.networks or ("",), strict=True)
        ],
    )


def published_ports(svc: ServiceSpec) -> list[dict[str, Any]]:
    """The service's ports on the hosts, all in ``host`` mode: its fixed ones (but those bound to one
    address), and the routed port at a number each host picks (the router reaches a task at its host's
    address and that port)."""
    ports: list[dict[str, Any]] = [
        {
            "Protocol": p.protocol,
            "TargetPort": p.container,
            "PublishedPort": p.host,
            "PublishMode": "host",
        }
        for p in svc.ports
        if p.host is not None and p.host_ip is None  # Swarm cannot bind one address: not published
    ]
    if svc.http_port and not any(p["TargetPort"] == svc.http_port and p["Protocol"] == "tcp" for p in ports):
        ports.append({"Protocol": "tcp", "TargetPort": svc.http_port, "PublishMode": "host"})
    return ports
