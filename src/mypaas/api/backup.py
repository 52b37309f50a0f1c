"""Routes of backups (`mypaas backup`): the whole platform as one archive, streamed as it is made."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User, in_thread
from mypaas.manager.backup.service import BackupOptions
from mypaas.manager.platform import Platform


class BackupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passphrase: str = Field(description="encrypts the archive (at least 12 characters); kept nowhere")
    with_images: bool = Field(False, description="the registry's data (every release's images) too")
    with_volumes: bool = Field(False, description="the apps' named volumes too (read through the engine)")


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: str = Field(description="an absolute folder on the manager's machine, made beforehand")
    every: str = Field("24h", description="how often: 90m, 24h, 7d (at least a minute)")
    keep: int = Field(7, description="archives kept in the folder; the oldest beyond go")
    passphrase: str = Field(description="encrypts the archives; kept sealed with the platform key")
    with_images: bool = False
    with_volumes: bool = False


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

    @v1.get("/backup/schedule", tags=["platform"])
    def backup_schedule(_: User) -> dict[str, Any]:
        """The scheduled backups: folder, interval, how many are kept, the last one and its error."""
        return platform.backups.schedule.show()

    @v1.put("/backup/schedule", tags=["platform"])
    def set_backup_schedule(body: ScheduleBody, _: User) -> dict[str, Any]:
        """Back the platform up into ``dir`` every ``every``, keeping the newest ``keep`` archives."""
        return platform.backups.schedule.set(
            folder=body.dir,
            every=body.every,
            keep=body.keep,
            passphrase=body.passphrase,
            with_images=body.with_images,
            with_volumes=body.with_volumes,
        )

    @v1.delete("/backup/schedule", tags=["platform"])
    def remove_backup_schedule(_: User) -> dict[str, Any]:
        """No more scheduled backups (the archives made stay)."""
        return platform.backups.schedule.off()
