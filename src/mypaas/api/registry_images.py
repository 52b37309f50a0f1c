"""REST routes over the registry's images and their engine copies: listing them, and removing them
(several tags, a digest or whole repositories at once; registry and engine copies together)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.manager.identity.policy import registry_actions
from mypaas.manager.image_copies import Removal
from mypaas.manager.platform import Platform


class RemoveImagesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refs: list[str] = Field(description="REPO:TAG, REPO@sha256:DIGEST, or REPO with all")
    all: bool = Field(False, description="each name is a repository: remove every tag of it")
    force: bool = Field(False, description="remove even the image a live app's release runs")
    registry: bool = Field(True, description="remove the registry's copy (manifest and its tags)")
    engine: bool = Field(True, description="remove this host's engine references of the same names")


def registry_image_routes(v1: APIRouter, platform: Platform) -> None:
    copies = platform.image_copies

    @v1.get("/images", tags=["registry"])
    def list_images(who: User, repository: str | None = None) -> list[dict[str, Any]]:
        """Tags in the private registry: digest and size (compressed) are the registry's manifest;
        engine_id and engine_size (uncompressed) are this host's engine copy, null where it has none.
        A member sees the repositories they may pull: their teams' apps', ``mypaas/*`` and shared ones."""
        owner = platform.identity.repo_owner
        rows = copies.listing(repository)
        return [r for r in rows if "pull" in registry_actions(who, str(r.get("repository", "")), owner)]

    @v1.post("/images/remove", tags=["registry"])
    def remove_images(body: RemoveImagesBody, _: User) -> dict[str, Any]:
        """Remove images: a manifest goes from the registry when each of its tags is named (or its
        digest, or its repository with ``all``); the engine references of the same names go too.
        Refused (409) for the image a live app's release runs, unless ``force``."""
        ask = Removal(body.refs, whole=body.all, force=body.force, registry=body.registry, engine=body.engine)
        return copies.remove(ask)

    @v1.delete("/images/{ref:path}", tags=["registry"])
    def remove_image(
        ref: str, _: User, force: Annotated[bool, Query(description="even if a live app runs it")] = False
    ) -> dict[str, Any]:
        """Remove one image (REPO:TAG or REPO@sha256:DIGEST) from the registry and this host's engine."""
        return copies.remove(Removal([ref], force=force))
