"""What every route module of the API shares: the caller (its token checked), the JSON shape of
instances, and running blocking manager calls off the event loop. The route modules import this, never
app.py (which imports them)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from mypaas.domain import Instance
from mypaas.manager.platform import Platform
from mypaas.states import InstanceState

T = TypeVar("T")


def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The name of the caller's token; 401 without a valid bearer token."""
    platform: Platform = request.app.state.platform
    return platform.tokens.check(authorization)


User = Annotated[str, Depends(current_user)]


def instance_state(inst: Instance, ready: bool) -> str:
    """What `ps` shows: healthy when ready; an instance the engine keeps restarting is a crash loop
    (Docker's "restarting" state is its back-off between crashes), shown as such, not hidden."""
    if ready:
        return "healthy"
    if inst.state == InstanceState.RESTARTING:
        return "crash-loop"
    return inst.state.value


def instance_dict(inst: Instance, ready: bool) -> dict[str, Any]:
    return {
        "id": inst.id[:12],
        "name": inst.name,
        "service": inst.service,
        "release": inst.release,
        "state": instance_state(inst, ready),
        "ready": ready,
        "address": inst.address,
        "host": inst.host,
        "created": inst.created,
        "status": inst.status_text,
        "exit_code": inst.exit_code,
    }


def field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking manager call in a worker thread."""
    return await run_in_threadpool(fn, *args)
