"""REST routes of the cluster (``/cluster``) and its hosts (``/hosts``); the manager's Hosts service
does the work, adds and removals run as operations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.api.drivers import driver_routes
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform


class HostBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=300, description="ssh://USER@ADDRESS[:PORT]")
    key: str | None = Field(
        None, max_length=16384, description="the private key (PEM text) to log in with; kept by the manager"
    )
    labels: dict[str, str] = Field(default_factory=dict, description="node labels, for placement")
    manager: bool = Field(False, description="join as a Swarm manager (default: a worker)")
    host_key: str | None = Field(None, description="the host's SSH key fingerprint to trust, SHA256:...")


class LabelsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[str, str] = Field(default_factory=dict, description="labels to set")
    remove: list[str] = Field(default_factory=list, description="label keys to remove")


class ClusterInitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advertise_addr: str | None = Field(
        None, description="where the other hosts reach this machine (default: the setting)"
    )


def host_routes(v1: APIRouter, platform: Platform) -> None:
    driver_routes(v1, platform)  # before /hosts/{name}: /hosts/create is theirs
    _host_routes(v1, platform)
    _cluster_routes(v1, platform)


def _host_routes(v1: APIRouter, platform: Platform) -> None:
    hosts = platform.hosts

    @v1.get("/hosts", tags=["hosts"])
    def list_hosts(_: User) -> list[dict[str, Any]]:
        """Every host: role, state (Swarm's live view), availability, labels, resources, instances."""
        return hosts.list()

    @v1.post("/hosts", status_code=202, tags=["hosts"])
    def add_host(body: HostBody, who: User) -> dict[str, Any]:
        """Add a machine over SSH: Docker is installed and configured, then it joins the Swarm.

        A host seen for the first time answers 409 with its key's ``fingerprint``: check it, then send
        it again as ``host_key``. Otherwise 202 with the operation to follow.
        """
        op_id = hosts.add(
            body.url,
            key_pem=body.key,
            labels=body.labels,
            manager=body.manager,
            host_key=body.host_key,
            who=who.label,
        )
        return op_dict(platform.operations.get(op_id))

    @v1.post("/hosts/{name}/drain", tags=["hosts"])
    def drain_host(name: str, _: User) -> dict[str, Any]:
        """Move the host's instances to the other hosts; none are placed there until activated."""
        return hosts.drain(name)

    @v1.post("/hosts/{name}/activate", tags=["hosts"])
    def activate_host(name: str, _: User) -> dict[str, Any]:
        """Let instances be placed on the host again (undo a drain)."""
        return hosts.activate(name)

    @v1.patch("/hosts/{name}/labels", tags=["hosts"])
    def label_host(name: str, body: LabelsBody, _: User) -> dict[str, Any]:
        """Set and remove the host's labels (what placement constraints match)."""
        return hosts.label(name, body.set, body.remove)

    @v1.delete("/hosts/{name}", status_code=202, tags=["hosts"])
    def remove_host(name: str, who: User, force: Annotated[bool, Query()] = False) -> dict[str, Any]:
        """Drain the host, then take it out of the Swarm. An unreachable host needs ``force``."""
        return op_dict(platform.operations.get(hosts.remove(name, force=force, who=who.label)))


def _cluster_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/cluster", tags=["hosts"])
    def cluster(_: User) -> dict[str, Any]:
        """The backend mode, the Swarm's state, the manager's address and the node counts."""
        return platform.hosts.cluster()

    @v1.post("/cluster/init", tags=["hosts"])
    def cluster_init(body: ClusterInitBody, _: User) -> dict[str, Any]:
        """Make this machine's engine the Swarm manager; apps then run as Swarm services."""
        return platform.hosts.init_cluster(body.advertise_addr)

    @v1.post("/cluster/migrate", status_code=202, tags=["hosts"])
    def cluster_migrate(who: User) -> dict[str, Any]:
        """Move every app still running as plain containers onto Swarm (a rollout of its current
        release as services; releases and domains stay)."""
        ops = platform.apps.migrate(who.label)
        return {"operations": [op_dict(op) for op in ops]}
