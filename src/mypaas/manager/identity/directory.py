"""The platform's users and teams in the state store: adding and removing them, members and their roles,
and which team each app belongs to."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from mypaas.errors import Conflict, Forbidden, InvalidSpec, NotFound
from mypaas.manager.identity import passwords
from mypaas.manager.identity.policy import Principal, Role
from mypaas.manager.state.models import AppRow, MemberRow, TeamRow, UserRow

DEFAULT_TEAM = "default"
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def check_name(name: str, what: str) -> str:
    if not NAME_RE.fullmatch(name or ""):
        raise InvalidSpec(
            f"invalid {what} name {name!r}: lowercase letters, digits and '-', at most 63, not starting"
            " or ending with '-'",
            field=what,
        )
    return name


class Directory:
    """Users, teams, members; the teams of apps."""

    _sessions: sessionmaker[Session]

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
