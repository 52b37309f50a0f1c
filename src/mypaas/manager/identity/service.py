"""Users, teams, members and tokens in the state store; checking a bearer token into a ``Principal``.

Tokens are stored as SHA-256 digests and looked up on every request (no cache: a revocation, an expiry,
a role taken away count from the next request on). The admin-token file ``mypaas up`` writes is a token
of the platform admin; replacing the file's content retires the token it held before.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mypaas.build.rootfs import check_ref
from mypaas.errors import Conflict, Unauthorized
from mypaas.manager.identity import passwords
from mypaas.manager.identity.directory import DEFAULT_TEAM, check_name
from mypaas.manager.identity.policy import (
    PLATFORM_NAMESPACE,
    Principal,
    Repo,
    Role,
    catalog_actions,
    may_push,
    registry_actions,
)
from mypaas.manager.identity.sshkeys import SshKeys
from mypaas.manager.identity.throttle import LoginThrottle
from mypaas.manager.identity.tokens import (
    NewToken,
    Tokens,
    digest,
    new_secret,
    parse_expiry,
    write_secret_file,
)
from mypaas.manager.state.db import reading
from mypaas.manager.state.models import AppRow, MemberRow, TeamRow, TokenRow, UserRow
from mypaas.registry.tokens import Access

FIRST_ADMIN = "admin"
PULL = "pull"
LOGIN_TTL_S = 30 * 86400
USED_EVERY_S = 60.0  # how often a token's last-used time is written (not on every request)

__all__ = ["DEFAULT_TEAM", "Identity", "LoginThrottle", "NewToken", "check_name", "digest", "parse_expiry"]


class Identity(Tokens, SshKeys):
    """The platform's users, teams and tokens."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.throttle = LoginThrottle()
        self._used: dict[int, float] = {}  # token id -> when its last use was written

    # -- start-up -------------------------------------------------------------------------------------

    def bootstrap(self, admin_token_path: Path) -> str:
        """Make sure there is a team, a platform admin in it, and a token of that admin in
        ``admin_token_path`` (0600); return that token. A token the file held before is retired."""
        with self._sessions.begin() as s:
            team = s.scalar(select(TeamRow).where(TeamRow.name == DEFAULT_TEAM))
            if team is None and s.scalar(select(func.count()).select_from(TeamRow)) == 0:
                team = TeamRow(name=DEFAULT_TEAM)
                s.add(team)
                s.flush()
            admin = s.scalar(select(UserRow).where(UserRow.admin.is_(True)).order_by(UserRow.id))
            if admin is None:
                admin = UserRow(name=self._free_user_name(s), admin=True)
                s.add(admin)
                s.flush()
                if team is not None:
                    s.add(MemberRow(team_id=team.id, user_id=admin.id, role=Role.OWNER.label))
            if team is not None:
                for app in s.scalars(select(AppRow).where(AppRow.team_id.is_(None))):
                    app.team_id = team.id
            token = admin_token_path.read_text().strip() if admin_token_path.exists() else ""
            if not token:
                token = new_secret()
                write_secret_file(admin_token_path, token)
            key = digest(token)
            for row in s.scalars(select(TokenRow).where(TokenRow.kind == "file")):
                if row.digest != key:
                    s.delete(row)  # the file was replaced: its old token stops working
            s.flush()
            if s.scalar(select(TokenRow).where(TokenRow.digest == key)) is None:
                s.add(TokenRow(name="admin-token", digest=key, kind="file", user_id=admin.id, role=""))
        return token

    @staticmethod
    def _free_user_name(s: Session) -> str:
        taken = set(s.scalars(select(UserRow.name)))
        name, n = FIRST_ADMIN, 1
        while name in taken:
            n += 1
            name = f"{FIRST_ADMIN}{n}"
        return name

    def ensure_pull_token(self, path: Path) -> str:
        """The token a cluster's hosts pull images with: pull-only in the registry, refused by the API.
        Made at first need, kept in a 0600 file like the admin token."""
        if path.exists():
            token = path.read_text().strip()
            with self._sessions() as s:
                row = s.scalar(select(TokenRow).where(TokenRow.digest == digest(token)))
                if row is not None and row.revoked_at is None:
                    return token
        token = new_secret()
        write_secret_file(path, token)
        with self._sessions.begin() as s:
            for row in s.scalars(select(TokenRow).where(TokenRow.kind == PULL)):
                s.delete(row)
            s.flush()
            s.add(TokenRow(name="hosts-pull", digest=digest(token), kind=PULL, role=PULL))
        return token

    # -- checking a token -----------------------------------------------------------------------------

    def identify(self, authorization: str | None, source: str = "") -> Principal:
        """The caller of a ``Bearer`` header; Unauthorized for none, an unknown, expired or revoked one."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)", field="authorization")
        return self.principal_of(authorization[7:].strip(), source)

    def principal_of(self, token: str, source: str = "") -> Principal:
        now = time.time()
        with reading(self._sessions) as s:  # every request: it neither waits for a write nor holds one up
            row = s.scalar(
                select(TokenRow)
                .where(TokenRow.digest == digest(token))
                .options(
                    selectinload(TokenRow.user)
                    .selectinload(UserRow.memberships)
                    .selectinload(MemberRow.team),
                    selectinload(TokenRow.team),
                )
            )
            if row is None:
                raise Unauthorized("invalid token", field="authorization")
            if row.revoked_at is not None:
                raise Unauthorized(f"token {row.name!r} was revoked", field="authorization")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthorized(f"token {row.name!r} expired: make a new one", field="authorization")
            principal = self._principal(row)
        self._note_use(row.id, now, source)
        return principal

    @staticmethod
    def _principal(row: TokenRow) -> Principal:
        if PULL in (row.kind, row.role):
            return Principal(user="", token=row.name, token_id=row.id, pull_only=True)
        user = row.user
        if user is None:  # pragma: no cover - every other token has a user (the store cascades deletes)
            raise Unauthorized("invalid token", field="authorization")
        mine = {m.team.name: Role[m.role.upper()] for m in user.memberships}
        if not row.role:  # all of the user's rights
            return Principal(user=user.name, token=row.name, token_id=row.id, admin=user.admin, roles=mine)
        team = row.team.name if row.team is not None else ""
        scoped = Role[row.role.upper()]
        have = Role.OWNER if user.admin else mine.get(team)
        roles = {team: min(scoped, have)} if have is not None else {}
        return Principal(user=user.name, token=row.name, token_id=row.id, roles=roles, app=row.app)

    def _note_use(self, token_id: int, now: float, source: str) -> None:
        if now - self._used.get(token_id, 0.0) < USED_EVERY_S:
            return
        self._used[token_id] = now
        with self._sessions.begin() as s:
            row = s.get(TokenRow, token_id)
            if row is not None:
                row.last_used_at, row.last_used_from = now, source[:64]

    # -- logging in -----------------------------------------------------------------------------------

    def login(
        self, user: str, password: str, source: str, *, name: str = "", expires: str | None = None
    ) -> NewToken:
        """A login token for ``user`` when the password matches; Unauthorized (counted) when not."""
        self.throttle.check(user, source)
        ttl = parse_expiry(expires, LOGIN_TTL_S)
        with self._sessions() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == user))
            stored = row.password if row is not None else None
        if not passwords.verify(stored, password):
            n = self.throttle.failed(user, source)
            raise Unauthorized(f"wrong user name or password ({n} failed recently)", field="password")
        self.throttle.succeeded(user)
        label = name or f"login-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        return self._add_token(user, label, kind="login", team=None, role="", app=None, ttl=ttl)

    def principal_of_user(self, user: str) -> Principal:
        """``user`` with all of their rights (who signed in with one of their SSH keys)."""
        with self._sessions() as s:
            row = s.scalar(
                select(UserRow)
                .where(UserRow.name == user)
                .options(selectinload(UserRow.memberships).selectinload(MemberRow.team))
            )
            if row is None:
                raise Unauthorized(f"no user {user!r}", field="user")
            mine = {m.team.name: Role[m.role.upper()] for m in row.memberships}
            return Principal(user=row.name, token="ssh-key", admin=row.admin, roles=mine)  # noqa: S106 - a label

    def push_token(self, user: str, team: str, app: str, ttl: float) -> NewToken:
        """A short-lived deployer token of ``user`` for ``app`` only (a `git push` deploys with it)."""
        name = f"git-push-{app}-{secrets.token_hex(3)}"[:64]
        return self._add_token(user, name, kind="git", team=team, role=Role.DEPLOYER.label, app=app, ttl=ttl)

    def revoke_id(self, token_id: int) -> None:
        """Revoke a token by its id (a push's token when the push ends)."""
        with self._sessions.begin() as s:
            row = s.get(TokenRow, token_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = time.time()

    def revoke_push_tokens(self) -> int:
        """Revoke every git deploy token still active (a push's or a watch's): when the manager starts no
        git deploy is in flight, so these are what a killed manager left behind. Answers how many."""
        now = time.time()
        with self._sessions.begin() as s:
            rows = list(
                s.scalars(select(TokenRow).where(TokenRow.kind == "git", TokenRow.revoked_at.is_(None)))
            )
            for row in rows:
                row.revoked_at = now
            return len(rows)

    def logout(self, who: Principal) -> None:
        """Revoke the token the caller used (a login's, or any other)."""
        if who.token_id is None:
            return
        with self._sessions.begin() as s:
            row = s.get(TokenRow, who.token_id)
            if row is not None and row.kind == "file":
                raise Conflict(
                    "the admin-token file's token is not logged out (replace the file to retire it)",
                    field="authorization",
                )
            if row is not None and row.revoked_at is None:
                row.revoked_at = time.time()

    def repo_owner(self, repository: str) -> Repo:
        """Who a registry repository belongs to: ``mypaas/…`` the platform, ``APP/…`` the app's team."""
        first = repository.split("/", 1)[0]
        if first == PLATFORM_NAMESPACE:
            return Repo("platform")
        team = self.team_of_app(first)
        return Repo("app", team=team, app=first) if team is not None else Repo("shared")

    def may_import(self, who: Principal, ref: str) -> None:
        """Forbidden unless ``who`` may write image ``ref`` (NAME:TAG) the way a push to its repository is
        allowed: a deployer imports only into its team's apps' repositories (``APP/…``)."""
        may_push(who, check_ref(ref).rpartition(":")[0], self.repo_owner)

    def registry_grant(self, password: str, asked: list[Access]) -> tuple[str, list[Access]]:
        """The registry token service's answer for an API token used as a ``docker login`` password:
        each asked scope with only the actions the policy gives the token's caller."""
        who = self.principal_of(password)
        granted = []
        for access in asked:
            if access.type == "registry" and access.name == "catalog":
                allowed = catalog_actions(who)
            elif access.type == "repository":
                allowed = registry_actions(who, access.name, self.repo_owner)
            else:
                allowed = ()
            actions = tuple(a for a in access.actions if a in allowed or "*" in allowed)
            granted.append(Access(access.type, access.name, actions))
        return who.label or "hosts", granted
