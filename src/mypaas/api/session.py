"""The dashboard's sign-in: a session cookie holding an API token, and the CSRF check that goes with it.

``POST /api/v1/session`` takes a user name and password (a 12 h login token is made) or an API token, and
sets two cookies: ``mypaas_session`` (the token; HttpOnly, SameSite=Strict: page scripts never read it,
other sites never send it) and ``mypaas_csrf`` (readable by the page). A request authenticated by the
cookie that changes something must send ``X-CSRF-Token`` equal to ``mypaas_csrf``, which is derived from
the session's token: another site can neither read it nor compute it. Requests with an ``Authorization``
header (the CLI, scripts) are not affected. ``DELETE /api/v1/session`` signs out (a password sign-in's
token is revoked) and clears both cookies."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.cookies import COOKIE, CSRF_COOKIE, authorization_of, cookie_value, csrf_of
from mypaas.api.deps import client_address, in_thread
from mypaas.api.identity import PasswordLogin
from mypaas.errors import Forbidden, InvalidSpec, MyPaasError
from mypaas.manager.identity.policy import Principal
from mypaas.manager.platform import Platform

SESSION_TTL = "12h"
SESSION_TOKEN_PREFIX = "dashboard-"  # noqa: S105 (a name, not a secret): a password sign-in's token name: revoked at sign-out


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(None, min_length=1, max_length=200)
    password: str | None = Field(None, max_length=4096, description="never answered back nor logged")
    token: str | None = Field(None, min_length=1, max_length=512, description="an API token instead")


def whoami_of(platform: Platform, who: Principal) -> dict[str, Any]:
    """The caller as the dashboard shows it: user, admin or not, role per team, app of an app token."""
    return {
        "user": who.user,
        "admin": who.admin and who.app is None,
        "teams": {team: role.label for team, role in sorted(who.roles.items())},
        "app": who.app,
        "token": who.token,
    }


def _with_cookies(body: dict[str, Any], token: str, secure: bool, max_age: int | None) -> JSONResponse:
    response = JSONResponse(body)
    same: Literal["strict"] = "strict"
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite=same, secure=secure, path="/")
    response.set_cookie(CSRF_COOKIE, csrf_of(token), max_age=max_age, samesite=same, secure=secure, path="/")
    return response


def session_routes(v1: APIRouter, platform: Platform, password_login: PasswordLogin) -> None:
    identity = platform.identity

    @v1.post("/session", tags=["users"])
    async def sign_in(body: SignInBody, request: Request) -> JSONResponse:
        """Sign the dashboard in: ``user`` and ``password`` (a 12 h login token is made, throttled like
        `mypaas login`) or an API ``token``. Sets the session and CSRF cookies; answers who signed in and
        the CSRF value. No token needed."""
        if body.token:
            token = body.token
            who = await in_thread(identity.principal_of, token, client_address(request))
            max_age = None  # the browser's session: the token's own expiry still applies
        elif body.user and body.password is not None:
            # one token per sign-in: a second browser (or tab after a lost cookie) on the same address
            # must not collide with the first one's token name
            where = (client_address(request) or "browser")[:48]
            name = f"{SESSION_TOKEN_PREFIX}{where}-{secrets.token_hex(4)}"
            token, _ = await password_login(request, body.user, body.password, name=name, expires=SESSION_TTL)
            max_age = 12 * 3600
            who = await in_thread(identity.principal_of, token, client_address(request))
        else:
            raise InvalidSpec("sign in with user and password, or with a token", field="user")
        if who.pull_only:
            raise Forbidden("the hosts' pull token cannot sign in", field="token")
        request.state.principal = who
        body_out = {**whoami_of(platform, who), "csrf": csrf_of(token)}
        return _with_cookies(body_out, token, request.url.scheme == "https", max_age)

    @v1.get("/session", tags=["users"])
    async def session_state(request: Request) -> dict[str, Any]:
        """Who the dashboard's session cookie signs in (``signed_in`` false without one, or when it
        expired or was revoked): the page asks this first, without an error when nobody is signed in."""
        token = cookie_value(request.headers.get("cookie", ""), COOKIE)
        if token is None:
            return {"signed_in": False}
        try:
            who = await in_thread(identity.principal_of, token, client_address(request))
        except MyPaasError as exc:
            return {"signed_in": False, "reason": exc.message}
        request.state.principal = who
        return {"signed_in": True, **whoami_of(platform, who), "csrf": csrf_of(token)}

    @v1.delete("/session", tags=["users"])
    async def sign_out(request: Request) -> JSONResponse:
        """Sign the dashboard out: a password sign-in's token is revoked; both cookies are cleared.
        Needs the X-CSRF-Token header when the session is still valid."""
        token = cookie_value(request.headers.get("cookie", ""), COOKIE)
        if token is not None:
            authorization = authorization_of(request.headers, request.method)  # the CSRF check
            try:
                who = await in_thread(identity.identify, authorization, client_address(request))
            except MyPaasError:
                who = None  # expired or revoked already: only the cookies go
            if who is not None and who.token.startswith(SESSION_TOKEN_PREFIX):
                await in_thread(identity.logout, who)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response
