"""Routes of the apps' named volumes (`mypaas volumes ls|rm`): those of running apps and those kept
after their app was removed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mypaas.api.deps import User
from mypaas.api.scoping import narrowed_to, only_seen, seen_apps
from mypaas.manager.platform import Platform


def volume_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/volumes", tags=["volumes"])
    def list_volumes(who: User, app: str | None = None) -> list[dict[str, Any]]:
        """The apps' named volumes (only ``app``'s, when given): the engine's name, the app and its
        state (``removed`` once the app is gone: the volume was kept), the containers that mount it.
        A member sees the volumes of their teams' apps; those kept after their app went, the admin."""
        narrowed_to(platform, who, app, "list_volumes")
        return only_seen(platform.volumes.list(app), seen_apps(platform, who))

    @v1.delete("/volumes/{name}", tags=["volumes"])
    def remove_volume(name: str, who: User) -> dict[str, Any]:
        """Remove an app's volume and its data: 409 while a container mounts it or its app uses it."""
        return platform.volumes.remove(name, who.label)
