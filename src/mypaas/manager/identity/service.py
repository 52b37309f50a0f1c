"""Users, teams, members and tokens in the state store; checking a bearer token into a ``Principal``.

Tokens are stored as SHA-256 digests and looked up on every request (no cache: a revocation, an expiry,
a role taken away count from the next request on). The admin-token file ``mypaas up`` writes is a token
of the platform admin; replacing the file's content retires the token it held before.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mypaas.build.rootfs import check_ref
from mypaas.errors import Conflict, Forbidden, InvalidSpec, NotFound, TooManyAttempts, Unauthorized
from mypaas.manager.identity import passwords
from mypaas.manager.identity.policy import (
    PLATFORM_NAMESPACE,
    Principal,
    Repo,
    Role,
    catalog_actions,
    may_grant,
    may_push,
    registry_actions,
)
from mypaas.manager.state.models import AppRow, MemberRow, TeamRow, TokenRow, UserRow
from mypaas.registry.tokens import Access

DEFAULT_TEAM = "default"
FIRST_ADMIN = "admin"
PULL = "pull"
TOKEN_PREFIX = "mp_"  # noqa: S105 - what every token starts with, not a secret
LOGIN_TTL_S = 30 * 86400
API_TOKEN_TTL_S = 90 * 86400
USED_EVERY_S = 60.0  # how often a token's last-used time is written (not on every request)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
TOKEN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str, what: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise InvalidSpec(
            f"invalid {what} name {name!r}: lowercase letters, digits and '-', at most 63, not starting"
            " or ending with '-'",
            field=what,
        )
    return name


def parse_expiry(text: str | None, default_s: float) -> float | None:
    """``30d``, ``12h``, ``90m``, ``2w`` -> seconds from now; ``never`` -> None; empty -> the default."""
    if text is None or not text.strip():
        return default_s
    text = text.strip().lower()
    if text == "never":
        return None
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise InvalidSpec(
            f"invalid expiry {text!r}: expected e.g. 30d, 12h, 90m, 2w or never", field="expires"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def _write_secret_file(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewToken:
    """A token just made: its record and its secret, shown once."""

    info: dict[str, Any]
    secret: str


class LoginThrottle:
    """Failed logins per user and per source within a window: each failure makes the next answer slower
    (0.25 s doubling, at most 8 s), and past ``limit`` failures the user or source is refused for a while."""

    def __init__(self, window_s: float = 900.0, limit: int = 20) -> None:
        self.window_s = window_s
        self.limit = limit
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def count(self, user: str, source: str) -> int:
        now = time.time()
        with self._lock:
            return max(len(self._recent(f"u:{user}", now)), len(self._recent(f"s:{source}", now)))

    def delay(self, user: str, source: str) -> float:
        """How long to wait before answering a login of ``user`` from ``source``."""
        n = self.count(user, source)
        return 0.0 if n == 0 else min(0.25 * 2 ** (n - 1), 8.0)

    def check(self, user: str, source: str) -> None:
        now = time.time()
        with self._lock:
            times = self._recent(f"u:{user}", now) + self._recent(f"s:{source}", now)
        if (
            len(self._failures.get(f"u:{user}", [])) >= self.limit
            or len(self._failures.get(f"s:{source}", [])) >= self.limit
        ):
            wait = int(self.window_s - (now - min(times))) + 1 if times else int(self.window_s)
            raise TooManyAttempts(
                f"too many failed logins for {user!r} or from {source}: try again in {wait} s", field="user"
            )

    def failed(self, user: str, source: str) -> int:
        now = time.time()
        with self._lock:
            for key in (f"u:{user}", f"s:{source}"):
                self._failures.setdefault(key, []).append(now)
            return max(len(self._recent(f"u:{user}", now)), len(self._recent(f"s:{source}", now)))

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{user}", None)


class Identity:
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
                token = _new_secret()
                _write_secret_file(admin_token_path, token)
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
        token = _new_secret()
        _write_secret_file(path, token)
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
        with self._sessions() as s:
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

    # -- users ----------------------------------------------------------------------------------------

    def add_user(self, name: str, password: str | None, *, admin: bool = False) -> dict[str, Any]:
        check_name(name, "user")
        if password is not None:
            passwords.check_rule(password, name)
        with self._sessions.begin() as s:
            if s.scalar(select(UserRow).where(UserRow.name == name)) is not None:
                raise Conflict(f"user {name!r} already exists", field="user")
            row = UserRow(
                name=name, admin=admin, password=passwords.hash_password(password) if password else None
            )
            s.add(row)
            s.flush()
            return _user_dict(row)

    def users(self) -> list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(
                select(UserRow)
                .options(selectinload(UserRow.memberships).selectinload(MemberRow.team))
                .order_by(UserRow.name)
            )
            return [_user_dict(r) for r in rows]

    def remove_user(self, name: str) -> None:
        with self._sessions.begin() as s:
            row = self._user(s, name)
            if row.admin and self._admins(s) <= 1:
                raise Conflict(f"{name!r} is the last platform admin: make another admin first", field="user")
            if any(t.kind == "file" for t in row.tokens):
                raise Conflict(
                    f"{name!r} holds the admin-token file's token the manager itself uses: it stays",
                    field="user",
                )
            for m in row.memberships:
                if m.role == Role.OWNER.label and self._owners(s, m.team_id) <= 1:
                    raise Conflict(
                        f"{name!r} is the last owner of team {m.team.name!r}: add another owner first",
                        field="user",
                    )
            s.delete(row)

    def set_password(self, who: Principal, name: str, password: str) -> None:
        """Change a password: one's own, or anyone's for the platform admin; the user's logins end."""
        if name != who.user and not (who.admin and who.app is None):
            raise Forbidden("only a platform admin changes another user's password", field="user")
        passwords.check_rule(password, name)
        with self._sessions.begin() as s:
            row = self._user(s, name)
            row.password = passwords.hash_password(password)
            now = time.time()
            for tok in row.tokens:
                if tok.kind == "login" and tok.id != who.token_id and tok.revoked_at is None:
                    tok.revoked_at = now

    @staticmethod
    def _user(s: Session, name: str) -> UserRow:
        row = s.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise NotFound(f"no user {name!r}", field="user")
        return row

    @staticmethod
    def _admins(s: Session) -> int:
        return s.scalar(select(func.count()).select_from(UserRow).where(UserRow.admin.is_(True))) or 0

    @staticmethod
    def _owners(s: Session, team_id: int) -> int:
        query = (
            select(func.count())
            .select_from(MemberRow)
            .where(MemberRow.team_id == team_id, MemberRow.role == Role.OWNER.label)
        )
        return s.scalar(query) or 0

    # -- teams ----------------------------------------------------------------------------------------

    def add_team(self, name: str, owner: str | None = None) -> dict[str, Any]:
        check_name(name, "team")
        with self._sessions.begin() as s:
            if s.scalar(select(TeamRow).where(TeamRow.name == name)) is not None:
                raise Conflict(f"team {name!r} already exists", field="team")
            team = TeamRow(name=name)
            s.add(team)
            s.flush()
            if owner:
                s.add(MemberRow(team_id=team.id, user_id=self._user(s, owner).id, role=Role.OWNER.label))
            s.flush()
            s.refresh(team)
            return _team_dict(team, 0)

    def teams(self, who: Principal) -> list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(
                select(TeamRow)
                .options(selectinload(TeamRow.members).selectinload(MemberRow.user))
                .order_by(TeamRow.name)
            )
            per_team = s.execute(select(AppRow.team_id, func.count()).group_by(AppRow.team_id))
            counts = {team: n for team, n in per_team}
            return [_team_dict(t, counts.get(t.id, 0)) for t in rows if who.admin or t.name in who.roles]

    def remove_team(self, name: str) -> None:
        with self._sessions.begin() as s:
            team = self._team(s, name)
            apps = list(s.scalars(select(AppRow.name).where(AppRow.team_id == team.id)))
            if apps:
                raise Conflict(
                    f"team {name!r} still has apps ({', '.join(sorted(apps)[:5])}): remove them first",
                    field="team",
                )
            s.delete(team)

    def add_member(self, team: str, user: str, role: Role) -> dict[str, Any]:
        """Add ``user`` to ``team`` with ``role``, or change the role of a member."""
        with self._sessions.begin() as s:
            t, u = self._team(s, team), self._user(s, user)
            row = s.scalar(select(MemberRow).where(MemberRow.team_id == t.id, MemberRow.user_id == u.id))
            if row is None:
                s.add(MemberRow(team_id=t.id, user_id=u.id, role=role.label))
            else:
                if row.role == Role.OWNER.label and role != Role.OWNER and self._owners(s, t.id) <= 1:
                    raise Conflict(f"{user!r} is the last owner of team {team!r}", field="role")
                row.role = role.label
            return {"team": team, "user": user, "role": role.label}

    def remove_member(self, team: str, user: str) -> None:
        with self._sessions.begin() as s:
            t, u = self._team(s, team), self._user(s, user)
            row = s.scalar(select(MemberRow).where(MemberRow.team_id == t.id, MemberRow.user_id == u.id))
            if row is None:
                raise NotFound(f"{user!r} is not a member of team {team!r}", field="user")
            if row.role == Role.OWNER.label and self._owners(s, t.id) <= 1:
                raise Conflict(
                    f"{user!r} is the last owner of team {team!r}: add another owner first", field="user"
                )
            s.delete(row)

    @staticmethod
    def _team(s: Session, name: str) -> TeamRow:
        row = s.scalar(select(TeamRow).where(TeamRow.name == name))
        if row is None:
            raise NotFound(f"no team {name!r}", field="team")
        return row

    def team_exists(self, name: str) -> bool:
        with self._sessions() as s:
            return s.scalar(select(TeamRow.id).where(TeamRow.name == name)) is not None

    # -- apps and their teams -----------------------------------------------------------------------

    def team_of_app(self, app: str) -> str | None:
        """The team that owns ``app``; None when there is no such app."""
        with self._sessions() as s:
            row = s.execute(
                select(TeamRow.name).join(AppRow, AppRow.team_id == TeamRow.id).where(AppRow.name == app)
            ).first()
            return row[0] if row is not None else None

    def app_teams(self) -> dict[str, str]:
        """Every app's team, for filtering a listing."""
        with self._sessions() as s:
            rows = s.execute(select(AppRow.name, TeamRow.name).join(TeamRow, AppRow.team_id == TeamRow.id))
            return {app: team for app, team in rows}

    def team_for_new_app(self, who: Principal, requested: str | None) -> str:
        """The team a new app goes to: the one asked for, else the caller's only team (or the default team
        for a platform admin in none); InvalidSpec when the caller must choose."""
        if requested:
            check_name(requested, "team")
            if not self.team_exists(requested):
                raise NotFound(f"no team {requested!r}", field="team")
            return requested
        only = who.only_team()
        if only is not None:
            return only
        if who.admin and not who.roles and self.team_exists(DEFAULT_TEAM):
            return DEFAULT_TEAM
        mine = ", ".join(sorted(who.roles)) or "none"
        raise InvalidSpec(f"choose the app's team with --team (your teams: {mine})", field="team")

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

    # -- tokens ---------------------------------------------------------------------------------------

    def create_token(
        self,
        who: Principal,
        name: str,
        *,
        team: str,
        role: Role,
        user: str | None = None,
        app: str | None = None,
        expires: str | None = None,
    ) -> NewToken:
        """A token scoped to ``team`` and ``role`` (and ``app``), never more than its maker has; for another
        user only by a platform admin (and never more than that user has, checked at each use)."""
        if not TOKEN_NAME_RE.fullmatch(name or ""):
            raise InvalidSpec(
                f"invalid token name {name!r}: letters, digits, '.', '_' and '-', at most 64", field="name"
            )
        owner = user or who.user
        if owner != who.user and not (who.admin and who.app is None):
            raise Forbidden("only a platform admin makes tokens for another user", field="user")
        if not owner:
            raise Forbidden("this token cannot make tokens", field="authorization")
        if not self.team_exists(team):
            raise NotFound(f"no team {team!r}", field="team")
        if app is not None and self.team_of_app(app) != team:
            raise InvalidSpec(f"app {app!r} is not an app of team {team!r}", field="app")
        may_grant(who, team, role, app)
        ttl = parse_expiry(expires, API_TOKEN_TTL_S)
        return self._add_token(owner, name, kind="api", team=team, role=role.label, app=app, ttl=ttl)

    def _add_token(
        self,
        user: str,
        name: str,
        *,
        kind: str,
        team: str | None,
        role: str,
        app: str | None,
        ttl: float | None,
    ) -> NewToken:
        secret = _new_secret()
        now = time.time()
        with self._sessions.begin() as s:
            u = self._user(s, user)
            taken = s.scalar(
                select(TokenRow).where(
                    TokenRow.user_id == u.id, TokenRow.name == name, TokenRow.revoked_at.is_(None)
                )
            )
            if taken is not None:
                raise Conflict(f"{user!r} already has a token named {name!r}", field="name")
            for old in s.scalars(select(TokenRow).where(TokenRow.user_id == u.id, TokenRow.name == name)):
                old.name = f"{name[:50]}~{old.id}"  # a revoked token keeps its record under another name
            row = TokenRow(
                name=name,
                digest=digest(secret),
                kind=kind,
                user_id=u.id,
                team_id=self._team(s, team).id if team else None,
                role=role,
                app=app,
                created_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )
            s.add(row)
            s.flush()
            s.refresh(row)
            return NewToken(_token_dict(row), secret)

    def tokens(
        self, who: Principal, *, user: str | None = None, everyone: bool = False
    ) -> list[dict[str, Any]]:
        """The caller's tokens (a platform admin: any user's, or everyone's)."""
        if (user not in (None, who.user) or everyone) and not (who.admin and who.app is None):
            raise Forbidden("only a platform admin lists another user's tokens", field="user")
        with self._sessions() as s:
            query = select(TokenRow).options(selectinload(TokenRow.user), selectinload(TokenRow.team))
            if not everyone:
                query = query.join(UserRow, TokenRow.user_id == UserRow.id).where(
                    UserRow.name == (user or who.user)
                )
            return [_token_dict(r) for r in s.scalars(query.order_by(TokenRow.id))]

    def revoke_token(self, who: Principal, ref: str) -> dict[str, Any]:
        """Revoke a token by id (or by name among the caller's own); it stops working on the next request."""
        with self._sessions.begin() as s:
            row = None
            if ref.isdigit():
                row = s.get(TokenRow, int(ref))
            if row is None:
                mine = s.scalar(select(UserRow).where(UserRow.name == who.user))
                if mine is not None:
                    row = s.scalar(select(TokenRow).where(TokenRow.user_id == mine.id, TokenRow.name == ref))
            owner = row.user.name if row is not None and row.user is not None else ""
            if row is None or (owner != who.user and not (who.admin and who.app is None)):
                raise NotFound(f"no token {ref!r} of yours", field="token")
            if row.kind == "file":
                raise Conflict("the admin-token file's token is retired by replacing the file", field="token")
            if row.revoked_at is None:
                row.revoked_at = time.time()
            return _token_dict(row)


def _user_dict(row: UserRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "admin": row.admin,
        "password_set": row.password is not None,
        "teams": {m.team.name: m.role for m in row.memberships} if row.memberships else {},
        "created": row.created_at,
    }


def _team_dict(row: TeamRow, apps: int) -> dict[str, Any]:
    return {
        "name": row.name,
        "members": {m.user.name: m.role for m in row.members},
        "apps": apps,
        "created": row.created_at,
    }


def _token_dict(row: TokenRow) -> dict[str, Any]:
    now = time.time()
    state = "active"
    if row.revoked_at is not None:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    return {
        "id": row.id,
        "name": row.name,
        "user": row.user.name if row.user is not None else "",
        "kind": row.kind,
        "team": row.team.name if row.team is not None else None,
        "role": row.role or "all of the user's",
        "app": row.app,
        "created": row.created_at,
        "expires": row.expires_at,
        "last_used": row.last_used_at,
        "last_used_from": row.last_used_from,
        "state": state,
    }
