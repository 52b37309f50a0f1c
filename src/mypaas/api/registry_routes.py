"""REST routes of the private registry itself: the token endpoint Distribution sends clients to, garbage
collection, the pull-through mirror and the registry's status (api/app.py registers them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from mypaas.api.deps import User
from mypaas.api.schemas import MirrorBody
from mypaas.errors import Unauthorized
from mypaas.manager.platform import Platform


def registry_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/registry/token", tags=["registry"])
    def registry_token(
        request: Request,
        service: str | None = None,
        scope: Annotated[list[str] | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """The token endpoint Distribution sends clients to (Docker token-auth spec): Basic auth with any
        user name and a MyPaas API token as the password, as in ``docker login``."""
        try:
            body = platform.registry().token(authorization, service, scope or [])
        except Unauthorized as exc:
            return JSONResponse(
                exc.to_dict(), status_code=401, headers={"WWW-Authenticate": 'Basic realm="mypaas registry"'}
            )
        return JSONResponse(body)

    @v1.post("/registry/gc", tags=["registry"])
    def registry_gc(_: User) -> dict[str, Any]:
        """Garbage-collect the registry; it is read-only (pulls only) while this runs."""
        return platform.registry().collect()

    @v1.put("/registry/mirror", tags=["registry"])
    def set_mirror(body: MirrorBody, _: User) -> dict[str, Any]:
        """Run a pull-through mirror of ``upstream`` and make the engine pull through it."""
        return platform.mirror.enable(body.upstream)

    @v1.delete("/registry/mirror", tags=["registry"])
    def remove_mirror(_: User) -> dict[str, Any]:
        """Stop pulling through the mirror and stop it (its cache stays on disk)."""
        return platform.mirror.disable()

    @v1.get("/registry/status", tags=["registry"])
    def registry_status(_: User) -> dict[str, Any]:
        """The registry's address, health, repositories and disk use, and the mirror's state."""
        return {**platform.registry().status(), "mirror": platform.mirror.status()}
