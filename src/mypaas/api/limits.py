"""Request bodies at the door: a pure ASGI middleware that runs before routing parses anything.

For each HTTP request it finds the operation the router will call (the route's name, as in
``policy.RULES``) and then, before a byte of the body is read:

- a non-public operation needs a valid token: an unknown, expired or revoked one (or none) is answered
  401 at once, with the usual JSON body; ``current_user`` still makes the per-route decision (roles,
  the app or team the request names) afterwards;
- the body has a cap by kind of route (``Caps``): a JSON body, a deploy's JSON (compose files and
  project files inline), a deploy's multipart upload (build contexts), an image import's archive. A
  ``Content-Length`` over the cap is answered 413 at once; a body without one (chunked) is counted as it
  streams and answered 413 as soon as it passes the cap.

The answer leaves in the API's error shape: ``{"error": "...", "field": "body"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mypaas.api.cookies import authorization_of
from mypaas.errors import MyPaasError, Unavailable
from mypaas.manager.identity.policy import RULES, Principal
from mypaas.manager.identity.policy import Scope as Access
from mypaas.manager.platform import Platform
from mypaas.settings import Settings

MiB = 1024 * 1024
IDENTIFIED = "identified"  # request.state: (the Authorization the caller was found for, the caller)
UPLOAD_ROUTES = frozenset({"deploy"})  # multipart: the upload cap; else the deploy (JSON) cap
ARCHIVE_ROUTES = frozenset({"import_image"})  # the body is an archive, streamed to the engine


class BodyTooLarge(MyPaasError):
    """A request body past its route's cap (HTTP 413)."""

    status = 413


@dataclass(frozen=True)
class Caps:
    """The largest body, in bytes, each kind of route takes."""

    json: int = 1 * MiB
    deploy: int = 64 * MiB
    upload: int = 512 * MiB
    archive: int = 20 * 1024 * MiB

    def of(self, operation: str, content_type: str) -> tuple[int, str]:
        """The cap of a request to ``operation`` and the name of its setting."""
        if operation in ARCHIVE_ROUTES:
            return self.archive, "archive_max_bytes"
        if operation in UPLOAD_ROUTES:
            if content_type.startswith("multipart/"):
                return self.upload, "body_max_upload"
            return self.deploy, "body_max_deploy"
        return self.json, "body_max_json"


def caps_of(settings: Settings) -> Caps:
    return Caps(
        json=settings.body_max_json,
        deploy=settings.body_max_deploy,
        upload=settings.body_max_upload,
        archive=settings.archive_max_bytes,
    )


def size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def too_large(cap: int, setting: str) -> BodyTooLarge:
    return BodyTooLarge(
        f"the request body is larger than this route takes: at most {size_text(cap)} (setting {setting})",
        field="body",
    )


class BodyLimits:
    """Checks the token of a non-public operation and caps its body, before the body is read."""

    def __init__(
        self, app: ASGIApp, platform: Platform, routes: Callable[[], Iterable[BaseRoute]], caps: Caps
    ) -> None:
        self.app = app
        self.platform = platform
        self._routes = routes  # called once, at the first request: every route is in by then
        self._known: list[Route] | None = None
        self.caps = caps

    @property
    def routes(self) -> list[Route]:
        if self._known is None:
            self._known = [r for r in self._routes() if isinstance(r, Route)]
        return self._known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation, matched = self._operation(scope)
        headers = _headers(scope)
        cap, setting = self.caps.of(operation, headers.get("content-type", ""))
        try:
            await self._identify(scope, operation, headers)
            if _declared_length(headers) > cap:
                raise too_large(cap, setting)
        except MyPaasError as exc:
            scope.update(matched)  # the route and its path parameters, for the audit log
            await _answer(send, exc)
            return
        await self._capped(scope, receive, send, cap, setting)

    def _operation(self, scope: Scope) -> tuple[str, Scope]:
        """The name of the route the router will call and what it matched ("" when no route matches
        the path: the router answers 404; a route of another method: 405 for a valid caller)."""
        partial: tuple[str, Scope] = ("", {})
        for route in self.routes:
            match, child = route.matches(scope)
            name = route.name
            if match == Match.FULL:
                return name, child
            if match == Match.PARTIAL and not partial[0]:
                partial = (name, child)
        return partial

    async def _identify(self, scope: Scope, operation: str, headers: dict[str, str]) -> None:
        rule = RULES.get(operation)  # none: current_user refuses the call (fail closed) if it is one
        if rule is None or rule.scope == Access.PUBLIC:
            return
        authorization = authorization_of(headers, str(scope.get("method", "GET")))
        client = scope.get("client")
        source = str(client[0]) if client else ""
        who = await run_in_threadpool(self.platform.identity.identify, authorization, source)
        scope.setdefault("state", {})[IDENTIFIED] = (authorization, who)  # current_user takes it as is

    async def _capped(self, scope: Scope, receive: Receive, send: Send, cap: int, setting: str) -> None:
        """Run the app with a receive that counts the body; past ``cap`` it answers 413 instead."""
        received = 0
        over = False
        started = False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                raise too_large(cap, setting)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    raise too_large(cap, setting)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if over:  # the app's own answer to the cut body (a parse error...) gives way to the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not over:
                raise
        if over and not started:
            await _answer(send, too_large(cap, setting))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _declared_length(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


def error_headers(exc: MyPaasError) -> dict[str, str]:
    """The headers an error's answer carries besides its JSON body: when to try again, for a busy store."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else {}


async def _answer(send: Send, exc: MyPaasError) -> None:
    body = json.dumps(exc.to_dict()).encode()
    head: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in error_headers(exc).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def identified(state: Any, authorization: str | None) -> Principal | None:
    """The caller this middleware found for ``authorization`` in this request (``request.state``), if it
    did: the route's access check does not read the token again."""
    found = getattr(state, IDENTIFIED, None)
    if isinstance(found, tuple) and found[0] == authorization:
        who: Principal = found[1]
        return who
    return None
