"""Routes of an app's preview apps (`mypaas previews APP|on|off|rm`); a preview is deployed through the
app's own deploy route with the body field ``preview`` (``preview_request``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from mypaas.api.deps import User, app_url, in_thread
from mypaas.api.schemas import PreviewsBody
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform
from mypaas.manager.releases import DeployRequest


def preview_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/apps/{name}/previews", tags=["previews"])
    def list_previews(name: str, _: User) -> list[dict[str, Any]]:
        """The app's preview apps: name, git branch, URL, status (running, deploying, failed, stopped,
        deleting), release and when each was made."""
        return [{**p, "url": app_url(platform.settings, p["name"])} for p in platform.previews.listing(name)]

    @v1.put("/apps/{name}/previews", tags=["previews"])
    def set_previews(name: str, body: PreviewsBody, _: User) -> dict[str, Any]:
        """Turn the app's preview apps on (with a ``limit`` of how many exist at once, and whether they get
        the app's secrets) or off; off removes none of them (``previews`` names those that exist)."""
        return platform.previews.configure(
            name, enabled=body.enabled, limit=body.limit, with_secrets=body.with_secrets
        )

    @v1.delete("/apps/{name}/previews/{branch:path}", tags=["previews"])
    async def remove_preview(name: str, branch: str, who: User) -> dict[str, Any]:
        """Remove the app's preview for a git branch completely (instances, networks, volumes, releases,
        its registry images); a preview that is gone already answers ``removed: false``."""
        preview, op = await in_thread(platform.previews.remove, name, branch, who.label)
        if op is None:
            return {"app": preview, "removed": False, "operation": None}
        repos = platform.image_copies.app_repositories(preview)
        images = await in_thread(platform.image_copies.remove_repositories, repos)
        return {"app": preview, "removed": True, "operation": op_dict(op), "images": images}


async def preview_request(
    platform: Platform, name: str, branch: str, req: DeployRequest
) -> tuple[str, DeployRequest]:
    """The deploy of app ``name``'s preview for ``branch``: the preview's name and its request (in the
    app's team, one replica per service, the left-out secrets said as warnings)."""
    plan = await in_thread(platform.previews.plan, name, branch)
    changes = {
        "spec": plan.shape(req.spec),
        "team": plan.team,
        "warnings": (*req.warnings, *plan.warnings),
        "hook": platform.previews.hook(plan),
    }
    return plan.name, dataclasses.replace(req, **changes)
