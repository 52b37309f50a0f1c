"""REST routes that make images: a root filesystem archive imported from the streamed request body, and
debootstrap base images built as operations (the manager's Builds service does the work)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from mypaas.api.deps import User, current_user
from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform

BATCH = 1024 * 1024  # the body goes to the worker thread in pieces of about this size
DRAIN_LIMIT = 1024**3  # after a refusal, read (and drop) up to this much more so the client hears why
ANONYMOUS_DRAIN_LIMIT = 16 * 1024 * 1024  # the same for a caller without a valid token

_ARCHIVE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the archive: a tar, plain or compressed with gzip, bzip2 or xz (found by content)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class BaseImageBody(BaseModel):
    image: str = Field(description="DISTRO:SUITE, e.g. debian:bookworm or ubuntu:jammy")
    if_missing: bool = Field(False, description="keep the image if the engine has it already")


class _Body:
    """The request body, read in the event loop and handed to a worker thread in batches."""

    def __init__(self, request: Request) -> None:
        self._parts: AsyncIterator[bytes] = request.stream().__aiter__()
        self.received = 0

    async def _batch(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while size < BATCH:
            try:
                part = await self._parts.__anext__()
            except StopAsyncIteration:
                break
            parts.append(part)
            size += len(part)
        self.received += size
        return b"".join(parts)

    def chunks(self) -> Iterator[bytes]:
        """The body's bytes, for a worker thread (started by ``run_in_threadpool``)."""
        while batch := anyio.from_thread.run(self._batch):
            yield batch

    async def drain(self, limit: int) -> None:
        """Read what is left of the body, so that the client, still sending, gets the answer."""
        try:
            while self.received < limit:
                self.received += len(await self._parts.__anext__())
        except (StopAsyncIteration, ClientDisconnect, RuntimeError):
            return


def image_build_routes(v1: APIRouter, platform: Platform) -> None:
    builds = platform.builds

    @v1.post("/images/import", tags=["images"], openapi_extra=_ARCHIVE_BODY)
    async def import_image(
        request: Request,
        ref: Annotated[str, Query(description="the image to make, NAME:TAG")],
        change: Annotated[list[str] | None, Query(description="Dockerfile-style: CMD, ENV, LABEL...")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Import a root filesystem archive, sent as the request body, as image ``ref``.

        The archive is checked while it streams to the engine; a refused one leaves nothing behind.
        Device nodes (a ``tar -cp /`` holds /dev's) are left out, said in ``warnings``.
        """
        body = _Body(request)
        try:
            who = current_user(request, authorization)
            platform.identity.may_import(who, ref)  # the repository must be the caller's to write
        except MyPaasError:
            await body.drain(ANONYMOUS_DRAIN_LIMIT)
            raise
        try:
            info, registry, warnings = await run_in_threadpool(
                lambda: builds.import_archive(body.chunks(), ref=ref, changes=change or [])
            )
        except ClientDisconnect as exc:
            raise InvalidSpec("the upload was interrupted", field="archive") from exc
        except MyPaasError:
            await body.drain(body.received + DRAIN_LIMIT)
            raise
        # id and size are the engine's (uncompressed); registry: the registry's copy, its digest and
        # compressed size (None: the private registry is off); warnings: what was left out, one line each
        return {"ref": info.ref, "id": info.id, "size": info.size, "registry": registry, "warnings": warnings}

    @v1.post("/images/base", status_code=202, tags=["images"])
    def build_base(body: BaseImageBody, who: User) -> dict[str, Any]:
        """Build a minimal Debian or Ubuntu image with debootstrap (``mypaas/debian:bookworm``)."""
        return op_dict(builds.start_base(body.image, who.label, if_missing=body.if_missing))
