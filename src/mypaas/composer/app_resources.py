"""An app's networks and named volumes on one Docker engine, as its removal and `mypaas volumes` see
them: which containers hold a network or mount a volume, removing a network (cutting the containers
MyPaas did not make off it, when forced), listing and removing the volumes an app leaves behind."""

from __future__ import annotations

import contextlib
from typing import Any

import docker.errors

from mypaas.composer.base import LABEL_APP, LABEL_PLATFORM, VolumeInfo
from mypaas.composer.errors import engine_errors
from mypaas.errors import Conflict, NotFound

# the engine's name of an app's volume is mypaas_<app>_<volume> (engine.volume_name)
_PREFIX = "mypaas_"


def _names(holders: list[str]) -> str:
    return f"container{'s' if len(holders) > 1 else ''} {', '.join(sorted(holders))}"


def _container_name(row: dict[str, Any]) -> str:
    return str((row.get("Names") or [str(row.get("Id", "?"))[:12]])[0]).lstrip("/")


def remove_networks(api: Any, platform: str, app: str, *, force: bool, also: str | None = None) -> None:
    """Remove the app's networks: those labelled for it, and ``also`` (the pooled one it took). A running
    container MyPaas did not make still attached to one raises Conflict naming it (it will not leave by
    itself), unless ``force``, which disconnects every container first (they keep running). The
    platform's own containers still leaving (a Swarm task shutting down) make the engine refuse for
    now: a temporary error, tried again."""
    filters = {"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
    with engine_errors(f"removing the networks of {app}"):
        nets = api.networks(filters=filters)
        # the engine's name filter matches parts of names: keep the one named exactly
        nets += [n for n in (api.networks(names=[also]) if also else []) if n.get("Name") == also]
        for net in nets:
            attached = api.containers(filters={"network": net["Id"]})
            foreign = [
                _container_name(c)
                for c in attached
                if (c.get("Labels") or {}).get(LABEL_PLATFORM) != platform
            ]
            if foreign and not force:
                raise Conflict(f"network {net.get('Name')} has active endpoints ({_names(foreign)})")
            for row in attached if force else []:
                with contextlib.suppress(docker.errors.NotFound):
                    api.disconnect_container_from_network(row["Id"], net["Id"], force=True)
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_network(net["Id"])


def _mounts(api: Any) -> dict[str, list[str]]:
    """Volume name -> the containers (running or not) that mount it."""
    users: dict[str, list[str]] = {}
    for row in api.containers(all=True):
        name = _container_name(row)
        for mount in row.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(str(mount["Name"]), []).append(name)
    return users


def list_volumes(api: Any, platform: str) -> list[VolumeInfo]:
    with engine_errors("listing volumes"):
        rows = (api.volumes(filters={"label": [f"{LABEL_PLATFORM}={platform}"]}) or {}).get("Volumes") or []
        users = _mounts(api) if rows else {}
    out = []
    for row in rows:
        name = str(row["Name"])
        app = str((row.get("Labels") or {}).get(LABEL_APP) or "")
        prefix = f"{_PREFIX}{app}_"
        volume = name[len(prefix) :] if name.startswith(prefix) else name
        used = tuple(sorted(users.get(name, [])))
        out.append(VolumeInfo(name, app, volume, used, str(row.get("CreatedAt") or "")))
    return sorted(out, key=lambda v: (v.app, v.name))


def remove_volume(api: Any, platform: str, name: str) -> None:
    with engine_errors(f"removing volume {name}"):
        try:
            labels = api.inspect_volume(name).get("Labels") or {}
        except docker.errors.NotFound:
            labels = {}
        if labels.get(LABEL_PLATFORM) != platform or not labels.get(LABEL_APP):
            raise NotFound(f"no app volume named {name!r} (mypaas volumes ls lists them)", field="name")
        holders = _mounts(api).get(name, [])
        if holders:
            raise Conflict(f"volume {name} is in use by {_names(holders)}", field="name")
        try:
            api.remove_volume(name)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # mounted meanwhile
                raise Conflict(f"volume {name} is in use: {exc.explanation}", field="name") from exc
            raise
