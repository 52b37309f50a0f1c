"""REST routes of users, teams, members and tokens, and of logging in and out (`mypaas user|team|token`,
`mypaas login|logout|whoami`). Who may call each is policy.RULES' say; the Identity service does the work.
A password is read from a request body only: never answered back, never logged."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User, client_address, in_thread
from mypaas.errors import TooManyAttempts, Unauthorized
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform

log = logging.getLogger("mypaas.identity")

# the wait before a login is checked (the throttle's delay after failures); tests replace it
pause = asyncio.sleep
# passwords checked at once: an argon2id check takes 64 MiB, so a flood of logins waits its turn here
# instead of taking the manager's memory
MAX_CHECKS = 2

_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_Body):
    user: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=4096, description="never answered back nor logged")
    name: str = Field("", max_length=64, description="the login token's name (default: login-DATE-...)")
    expires: str | None = Field(None, max_length=16, description="e.g. 12h, 30d, never (default 30d)")


class UserBody(_Body):
    name: str = Field(max_length=200)
    password: str | None = Field(
        None, max_length=4096, description="none: the user logs in only once an admin sets one"
    )
    admin: bool = Field(False, description="a platform admin")


class PasswordBody(_Body):
    password: str = Field(max_length=4096)


class TeamBody(_Body):
    name: str = Field(max_length=200)
    owner: str | None = Field(None, max_length=200, description="a user made the team's first owner")


class MemberBody(_Body):
    role: str = Field(max_length=32, description="owner, deployer or viewer")


class TokenBody(_Body):
    name: str = Field(max_length=200)
    user: str | None = Field(None, max_length=200, description="whose token (default: the caller's)")
    team: str = Field(max_length=200)
    role: str = Field(max_length=32, description="owner, deployer or viewer")
    app: str | None = Field(None, max_length=200, description="only this app of the team")
    expires: str | None = Field(None, max_length=16, description="e.g. 30d, 12h, never (default 90d)")


def printable(text: str, limit: int = 64) -> str:
    """A caller's input fit for one log line (no line breaks nor control characters)."""
    return _UNPRINTABLE.sub("?", text[:limit])


def identity_routes(v1: APIRouter, platform: Platform) -> PasswordLogin:
    """The routes; answers the password check they use, for the dashboard's sign-in."""
    password_login = PasswordLogin(platform)
    _login_routes(v1, platform, password_login)
    _user_routes(v1, platform)
    _team_routes(v1, platform)
    _token_routes(v1, platform)
    return password_login


class PasswordLogin:
    """Logging in with a password (`mypaas login`, the dashboard's sign-in): slowed by the throttle's
    delay after failures, a few checks at a time, failures logged."""

    def __init__(self, platform: Platform) -> None:
        self.identity = platform.identity
        self.checking = asyncio.Semaphore(MAX_CHECKS)

    async def __call__(
        self, request: Request, user: str, password: str, name: str = "", expires: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A login token for ``user`` when ``password`` is theirs: its secret and what it is."""
        identity = self.identity
        source = client_address(request)
        request.state.login_user = user
        await pause(identity.throttle.delay(user, source))
        check = functools.partial(identity.login, user, password, source, name=name, expires=expires)
        try:
            async with self.checking:
                new = await in_thread(check)
            return new.secret, new.info
        except Unauthorized:
            n = identity.throttle.count(user, source)
            log.warning("failed login for %s from %s (%d recently)", printable(user), source, n)
            raise
        except TooManyAttempts:
            log.warning("login refused for %s from %s: too many failed", printable(user), source)
            raise


def _login_routes(v1: APIRouter, platform: Platform, password_login: PasswordLogin) -> None:
    identity = platform.identity

    @v1.post("/login", tags=["users"])
    async def login(body: LoginBody, request: Request) -> dict[str, Any]:
        """Check a user's password; answer a login token (``token``, shown once). No token needed.

        Failed logins are counted per user and per source: each makes the next answer slower, and
        past a limit the answer is 429 for a while."""
        secret, info = await password_login(request, body.user, body.password, body.name, body.expires)
        return {"token": secret, **info}

    @v1.get("/whoami", tags=["users"])
    def whoami(who: User) -> dict[str, Any]:
        """The caller: user, platform admin or not, role per team (what this token may do), and the
        token itself (name, scope, expiry)."""
        mine = [t for t in identity.tokens(who) if t["id"] == who.token_id] if who.user else []
        return {
            "user": who.user,
            "admin": who.admin and who.app is None,
            "teams": {team: role.label for team, role in sorted(who.roles.items())},
            "app": who.app,
            "token": mine[0] if mine else {"id": who.token_id, "name": who.token},
        }

    @v1.post("/logout", tags=["users"])
    def logout(who: User) -> dict[str, Any]:
        """Revoke the token this request came with (a login's, or any other)."""
        identity.logout(who)
        return {"revoked": who.token, "id": who.token_id}


def _user_routes(v1: APIRouter, platform: Platform) -> None:
    identity = platform.identity

    @v1.get("/users", tags=["users"])
    def list_users(_: User) -> list[dict[str, Any]]:
        """Every user: platform admin or not, whether a password is set, role per team."""
        return identity.users()

    @v1.post("/users", status_code=201, tags=["users"])
    def add_user(body: UserBody, _: User) -> dict[str, Any]:
        """Add a user (a password must meet the stated rule; 409 when the name is taken)."""
        return identity.add_user(body.name, body.password, admin=body.admin)

    @v1.delete("/users/{user}", tags=["users"])
    def remove_user(user: str, _: User) -> dict[str, Any]:
        """Remove a user: their tokens stop working at once. Not the last platform admin, nor a team's
        last owner (409)."""
        identity.remove_user(user)
        return {"removed": user}

    @v1.put("/users/{user}/password", tags=["users"])
    def set_password(user: str, body: PasswordBody, who: User) -> dict[str, Any]:
        """Set a password: one's own, or any user's for a platform admin. The user's other login
        sessions end (their login tokens are revoked); other tokens stay."""
        identity.set_password(who, user, body.password)
        return {"user": user, "password_set": True}


def _team_routes(v1: APIRouter, platform: Platform) -> None:
    identity = platform.identity

    @v1.get("/teams", tags=["users"])
    def list_teams(who: User) -> list[dict[str, Any]]:
        """The caller's teams (every team for a platform admin): members with their role, app count."""
        return identity.teams(who)

    @v1.post("/teams", status_code=201, tags=["users"])
    def add_team(body: TeamBody, _: User) -> dict[str, Any]:
        """Add a team, with a first owner when given (409 when the name is taken)."""
        return identity.add_team(body.name, body.owner)

    @v1.delete("/teams/{team}", tags=["users"])
    def remove_team(team: str, _: User) -> dict[str, Any]:
        """Remove a team without apps (409 while it has some); its members' roles and tokens in it go."""
        identity.remove_team(team)
        return {"removed": team}

    @v1.put("/teams/{team}/members/{user}", tags=["users"])
    def add_member(team: str, user: str, body: MemberBody, _: User) -> dict[str, Any]:
        """Add a member with a role, or change a member's role (not the last owner's, 409)."""
        return identity.add_member(team, user, Role.parse(body.role))

    @v1.delete("/teams/{team}/members/{user}", tags=["users"])
    def remove_member(team: str, user: str, _: User) -> dict[str, Any]:
        """Take a member out of the team (not its last owner, 409)."""
        identity.remove_member(team, user)
        return {"team": team, "removed": user}


def _token_routes(v1: APIRouter, platform: Platform) -> None:
    identity = platform.identity

    @v1.get("/tokens", tags=["users"])
    def list_tokens(
        who: User,
        user: Annotated[str | None, Query(max_length=200, description="this user's (admin)")] = None,
        everyone: Annotated[bool, Query(alias="all", description="every user's (admin)")] = False,
    ) -> list[dict[str, Any]]:
        """The caller's tokens (a platform admin: a user's, or all): scope, expiry, last use, state.
        Never a token's secret."""
        return identity.tokens(who, user=user, everyone=everyone)

    @v1.post("/tokens", status_code=201, tags=["users"])
    def create_token(body: TokenBody, who: User) -> dict[str, Any]:
        """Make a token scoped to a team and role (and one app): never more than the caller has. The
        answer's ``token`` is its secret, shown this once."""
        new = identity.create_token(
            who,
            body.name,
            team=body.team,
            role=Role.parse(body.role),
            user=body.user,
            app=body.app,
            expires=body.expires,
        )
        return {"token": new.secret, **new.info}

    @v1.delete("/tokens/{ref}", tags=["users"])
    def revoke_token(ref: str, who: User) -> dict[str, Any]:
        """Revoke a token by id (or by name among one's own): it stops working on the next request."""
        return identity.revoke_token(who, ref)
