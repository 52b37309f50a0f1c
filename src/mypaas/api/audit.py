"""The audit log in the API: a pure ASGI middleware that records, after each request, every call that
changes something (any method but GET, HEAD and OPTIONS), every denied call (401/403, reads included) and
every failed login; and ``GET /api/v1/audit`` to read it back.

An entry holds names only: the caller (``request.state.principal``, which ``current_user`` leaves), the
token's name, the client address, the operation (the route's name) with the method and path, the app or
host the path names, the team, and for a failure the first line of the error the caller got. Never a
request body or a query string (a secret's value, a password, a token).

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware) passes every message through untouched, so
streamed answers (``logs -f``) stream as before; recording only hands the entry to ``AuditLog``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mypaas.api.deps import User
from mypaas.manager.identity.audit import AuditLog, Entry
from mypaas.manager.identity.policy import Principal
from mypaas.manager.platform import Platform

READS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGINS = frozenset({"login", "sign_in"})  # `mypaas login` and the dashboard's sign-in
ERROR_BODY_MAX = 8192  # the part of an error answer kept to find its message


def audit_result(method: str, status: int, operation: str) -> str | None:
    """How an answered call goes into the log (ok | denied | failed | error), or None: not recorded."""
    if operation in LOGINS and status in (401, 429):
        return "failed"
    if status in (401, 403):
        return "denied"
    if method in READS:
        return None
    if status >= 500:
        return "error"
    return "failed" if status >= 400 else "ok"


class AuditMiddleware:
    """Records each call ``audit_result`` keeps into ``log`` once it has been answered."""

    def __init__(self, app: ASGIApp, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        status = 0
        error = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400 and len(error) < ERROR_BODY_MAX:
                error.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            self._record(scope, status or 500, b"")
            raise
        self._record(scope, status, bytes(error))

    def _record(self, scope: Scope, status: int, error: bytes) -> None:
        method = str(scope.get("method", ""))
        operation = str(getattr(scope.get("route"), "name", "") or "")
        result = audit_result(method, status, operation)
        if result is None:
            return
        self.log.record(entry_of(scope, operation, result, status, error))


def entry_of(scope: Scope, operation: str, result: str, status: int, error: bytes) -> Entry:
    """The entry of an answered call: names only, never a body or a query string."""
    state: dict[str, Any] = scope.get("state") or {}
    who = state.get("principal")
    path = str(scope.get("path", ""))
    name = str((scope.get("path_params") or {}).get("name", ""))
    client = scope.get("client")
    detail = f"{scope.get('method', '')} {path}"
    if result != "ok":
        detail += f": {error_message(error, status)}"
    return Entry(
        user=who.user if isinstance(who, Principal) else str(state.get("login_user") or ""),
        token=who.token if isinstance(who, Principal) else "",
        source=str(client[0]) if client else "",
        action=operation or "unknown",
        result=result,
        status=status,
        app=str(state.get("app") or (name if path.startswith("/api/v1/apps/") else "")),
        host=name if path.startswith("/api/v1/hosts/") else "",
        team=str(state.get("team") or ""),
        detail=detail,
    )


def error_message(body: bytes, status: int) -> str:
    """The first line of the error an answer carried (``{"error": ...}``), or its status alone."""
    try:
        text = json.loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        text = None
    if not isinstance(text, str) or not text.strip():
        return "internal error" if status >= 500 else f"status {status}"
    return text.strip().splitlines()[0][:300]


def audit_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/audit", tags=["audit"])
    def audit(
        who: User,
        app: str | None = None,
        user: str | None = None,
        since: Annotated[str | None, Query(description="30m, 1h, 2d, … or an ISO time (UTC)")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        """The audit log, oldest first (the newest ``limit``): calls that changed something, denied calls,
        failed logins. A platform admin reads every entry; a team owner, those about the team's apps."""
        return platform.audit.query(who, app=app, user=user, since=since, limit=limit)
