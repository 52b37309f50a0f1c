"""Routes of backups (`mypaas backup`): the whole platform as one archive, streamed as it is made."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User, in_thread
from mypaas.manager.backup.service import BackupOptions
from mypaas.manager.platform import Platform


class BackupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passphrase: str = Field(description="encrypts the archive (at least 8 characters); kept nowhere")
    with_images: bool = Field(False, description="the registry's data (every release's images) too")
    with_volumes: bool = Field(False, description="the apps' named volumes too (read through the engine)")


def backup_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.post(
        "/backup",
        tags=["platform"],
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-tar": {}}, "description": "the archive"}},
    )
    async def backup(body: BackupBody, _: User) -> StreamingResponse:
        """The platform in one archive (a tar; everything but its manifest encrypted with the passphrase):
        a consistent copy of the state store taken now, the keys, tokens, certificates and settings, and
        optionally the registry's data and the apps' volumes. Deploys go on meanwhile."""
        options = BackupOptions(with_images=body.with_images, with_volumes=body.with_volumes)
        pieces = await in_thread(platform.backups.start, body.passphrase, options)
        name = time.strftime("mypaas-backup-%Y%m%d-%H%M%S.tar")
        return StreamingResponse(
            pieces,
            media_type="application/x-tar",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
