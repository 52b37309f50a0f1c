"""Who may do what: the one table every adapter asks (the REST API per operation, the registry's token
service per repository, the monitor's outputs per app). Nothing else in the code decides a permission.

A caller is a ``Principal``: a user acting through a token, with a role per team (``owner`` >
``deployer`` > ``viewer``), perhaps limited to one app, or the platform admin, or the hosts' pull token.
An operation's ``Rule`` says what it needs: nothing (``public``), any valid caller (``user``), a role on
the app it names (``app``) or on the team it names (``team``), a role in some team with the answer filtered
to the caller's teams (``listing``), or the platform admin (``admin``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from mypaas.errors import Forbidden, InvalidSpec, Unauthorized


class Role(IntEnum):
    """A member's role in a team; a higher role can do everything a lower one can."""

    VIEWER = 1
    DEPLOYER = 2
    OWNER = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str, *, field: str = "role") -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise InvalidSpec(f"unknown role {text!r}: expected one of {names}", field=field) from None


class Scope(StrEnum):
    PUBLIC = "public"  # no token needed
    USER = "user"  # any valid API token (about the caller itself: who am I, my tokens, log out)
    LISTING = "listing"  # any role in some team; the answer holds only the caller's teams' apps
    APP = "app"  # a role on the app the request names (its team's role, or an app token for it)
    TEAM = "team"  # a role in the team the request names
    ADMIN = "admin"  # the platform admin: hosts, registry, mirror, settings, users and teams


@dataclass(frozen=True)
class Rule:
    scope: Scope
    role: Role | None = None  # for APP, TEAM and LISTING: the least role

    def describe(self) -> str:
        """What the OpenAPI spec and the README say the operation needs."""
        role = (self.role or Role.VIEWER).label
        return {
            Scope.PUBLIC: "no token",
            Scope.USER: "any valid token",
            Scope.ADMIN: "platform admin",
            Scope.LISTING: f"{role} in a team (lists only the caller's teams)",
            Scope.APP: f"{role} on the app's team (or an app token for it)",
            Scope.TEAM: f"{role} in the team",
        }[self.scope]


def _app(role: Role) -> Rule:
    return Rule(Scope.APP, role)


_PUBLIC = Rule(Scope.PUBLIC)
_USER = Rule(Scope.USER)
_ADMIN = Rule(Scope.ADMIN)
_LIST = Rule(Scope.LISTING, Role.VIEWER)
_VIEW = _app(Role.VIEWER)
_DEPLOY = _app(Role.DEPLOYER)

# Every operation of the REST API (its operation name: the route function's name) and what it needs.
# An operation missing here is refused to everyone (and the policy matrix test fails).
RULES: dict[str, Rule] = {
    # the platform
    "health": _PUBLIC,
    "platform_ca": _PUBLIC,  # the platform CA's certificate: `mypaas login` pins it
    "index": _PUBLIC,  # the dashboard's page at /: no data (its scripts call the API)
    "status_page": _PUBLIC,  # the status page at /status: component health only, no app
    "status": _LIST,
    "reconcile": _ADMIN,
    "backup": _ADMIN,  # the archive holds every key and token
    "backup_schedule": _ADMIN,
    "set_backup_schedule": _ADMIN,
    "remove_backup_schedule": _ADMIN,
    "operation": _VIEW,  # an operation is about one app: a role on it
    # apps
    "list_apps": _LIST,
    "get_app": _VIEW,
    "deploy": _DEPLOY,  # a new app: deployer in the team it goes to
    "instances": _VIEW,
    "logs": _VIEW,
    "scale": _DEPLOY,
    "stop": _DEPLOY,
    "start": _DEPLOY,
    "restart": _DEPLOY,
    "remove": _DEPLOY,
    "releases": _VIEW,
    "rollback": _DEPLOY,
    "get_config": _VIEW,
    "set_config": _DEPLOY,
    "list_secrets": _VIEW,
    "set_secret": _DEPLOY,
    "remove_secret": _DEPLOY,
    # preview apps per git branch: deploying one is `deploy` (with `preview`) on the app itself
    "list_previews": _VIEW,
    "set_previews": _app(Role.OWNER),  # turns them on, sets the limit, gives them the app's secrets
    "remove_preview": _DEPLOY,
    "list_domains": _VIEW,
    "add_domain": _DEPLOY,
    "remove_domain": _DEPLOY,
    "get_https": _VIEW,
    "set_https": _DEPLOY,
    "list_all_certs": _LIST,  # the users' own certificates: domain, issuer, expiry (never the key)
    "list_certs": _VIEW,
    "domain_status": _VIEW,
    "add_cert": _DEPLOY,
    "remove_cert": _DEPLOY,
    "get_autoscale": _VIEW,
    "set_autoscale": _DEPLOY,
    "remove_autoscale": _DEPLOY,
    "app_metrics": _VIEW,
    # the monitor's outputs: filtered to the caller's teams' apps
    "events": _LIST,
    "metrics_now": _LIST,
    "prometheus": _LIST,
    "list_alerts": _LIST,
    "add_alert": Rule(Scope.LISTING, Role.DEPLOYER),  # a rule about an app: deployer on it; else admin
    "remove_alert": Rule(Scope.LISTING, Role.DEPLOYER),
    # the registry: pulls and pushes are decided per repository (``registry_actions``)
    "registry_token": _PUBLIC,  # checks its own Basic credentials, grants per repository
    "list_images": _LIST,
    "import_image": Rule(Scope.LISTING, Role.DEPLOYER),  # then the repository must be writable
    "build_base": _ADMIN,
    "remove_image": _ADMIN,
    "remove_images": _ADMIN,
    "registry_gc": _ADMIN,
    "set_mirror": _ADMIN,
    "remove_mirror": _ADMIN,
    "registry_status": _ADMIN,
    # volumes: an app's, or kept after its app went
    "list_volumes": _LIST,
    "remove_volume": _ADMIN,
    # hosts and the cluster
    "list_hosts": _ADMIN,
    "add_host": _ADMIN,
    "drain_host": _ADMIN,
    "activate_host": _ADMIN,
    "label_host": _ADMIN,
    "remove_host": _ADMIN,
    # driver accounts and the hosts they make: machines and cloud credentials, the admin's only
    "list_drivers": _ADMIN,
    "add_driver": _ADMIN,
    "show_driver": _ADMIN,
    "remove_driver": _ADMIN,
    "update_driver": _ADMIN,
    "driver_sizes": _ADMIN,
    "driver_images": _ADMIN,
    "create_hosts": _ADMIN,
    "destroy_host": _ADMIN,
    "cluster": _ADMIN,
    "cluster_init": _ADMIN,
    "cluster_migrate": _ADMIN,
    # users, teams, tokens, the audit log
    "login": _PUBLIC,
    "whoami": _USER,
    "logout": _USER,
    "sign_in": _PUBLIC,  # the dashboard's session cookie (checks the password or token itself)
    "session_state": _PUBLIC,  # who the session cookie signs in, if anyone (no error without one)
    "sign_out": _PUBLIC,  # clears the cookies; revokes a valid session's token (CSRF-checked)
    "dashboard_asset": _PUBLIC,  # the dashboard's static files: no data
    "list_users": _ADMIN,
    "add_user": _ADMIN,
    "remove_user": _ADMIN,
    "set_password": _USER,  # one's own; another user's: admin (decided in ``may_set_password``)
    "list_teams": _USER,  # one's own teams; all for the admin
    "add_team": _ADMIN,
    "remove_team": _ADMIN,
    "add_member": Rule(Scope.TEAM, Role.OWNER),
    "remove_member": Rule(Scope.TEAM, Role.OWNER),
    "list_tokens": _USER,  # one's own; every user's for the admin
    "create_token": _USER,  # within what the caller has (``may_grant``)
    "revoke_token": _USER,  # one's own; any for the admin
    # SSH keys for `git push`: one's own; any user's for the admin (decided in ``SshKeys``)
    "list_keys": _USER,
    "add_key": _USER,
    "remove_key": _USER,
    # an app's git remote and the branch whose pushes deploy it (a push itself: the "deploy" rule)
    "git_remote": _VIEW,
    "set_git_branch": _DEPLOY,
    "audit": Rule(Scope.LISTING, Role.OWNER),  # the admin: everything; a team owner: the team's apps
    # the platform as one file: what the caller sees; each change of an apply needs its own right
    # (deployer on the app it changes; host labels and rules about every app: the platform admin)
    "export_platform": _LIST,
    "apply": Rule(Scope.LISTING, Role.DEPLOYER),
    # deploys from a repository (issue 17): a new app, as for a deploy, in the team it goes to
    "git_deploy": _DEPLOY,
    "deploy_key": _DEPLOY,  # makes the key on first ask; its public half only
    "git_watch": _DEPLOY,
    "git_unwatch": _DEPLOY,
    "git_watches": _LIST,
    "git_hook": _PUBLIC,  # a forge's webhook: checks the forge's signature of the body itself
}


@dataclass(frozen=True)
class Principal:
    """A checked caller. ``roles``: the caller's effective role per team (a scoped token's role, never
    more than its user's); ``app``: the one app an app token is for."""

    user: str
    token: str
    token_id: int | None = None
    admin: bool = False
    roles: Mapping[str, Role] = field(default_factory=dict)
    app: str | None = None
    pull_only: bool = False

    def role_on(self, team: str | None, app: str | None = None) -> Role | None:
        """The caller's role on ``app`` of ``team`` (or on the team itself when ``app`` is None)."""
        if self.pull_only:
            return None
        if self.app is not None and app != self.app:
            return None
        if self.admin:
            return Role.OWNER
        return self.roles.get(team) if team is not None else None

    def sees(self, team: str | None, app: str | None = None) -> bool:
        return self.role_on(team, app) is not None

    @property
    def best_role(self) -> Role | None:
        if self.pull_only:
            return None
        if self.admin:
            return Role.OWNER
        return max(self.roles.values(), default=None)

    @property
    def label(self) -> str:
        return self.user or self.token

    def only_team(self) -> str | None:
        """The caller's one team (where a new app goes without ``--team``), or None with none or several."""
        teams = list(self.roles)
        return teams[0] if len(teams) == 1 else None


ANONYMOUS = Principal(user="", token="")


def rule_for(operation: str) -> Rule:
    """The rule of ``operation``; an operation without one is refused to everyone (fail closed)."""
    rule = RULES.get(operation)
    if rule is None:
        raise Forbidden(f"operation {operation!r} has no access rule: refused", field="authorization")
    return rule


def decide(
    rule: Rule, who: Principal | None, *, operation: str, team: str | None = None, app: str | None = None
) -> None:
    """Raise Unauthorized (no caller) or Forbidden (the caller's role does not allow it); return if it may.

    For an ``app`` rule, ``team`` is the app's team (None: no such app yet — a deploy then names the team it
    creates the app in; any other operation lets the handler answer 404 to a caller with a team role)."""
    if rule.scope == Scope.PUBLIC:
        return
    if who is None:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)", field="authorization")
    if who.pull_only:
        raise Forbidden("this token can only pull images from the registry", field="authorization")
    need = rule.role or Role.VIEWER
    if rule.scope == Scope.ADMIN and not who.admin:
        raise Forbidden(f"{operation} needs a platform admin", field="authorization")
    if rule.scope == Scope.LISTING and (who.best_role is None or who.best_role < need):
        raise Forbidden(f"{operation} needs the {need.label} role in a team", field="authorization")
    if rule.scope == Scope.TEAM:
        _need_team_role(who, need, operation, team)
    if rule.scope == Scope.APP:
        _need_app_role(who, need, operation, team, app)


def _need_team_role(who: Principal, need: Role, operation: str, team: str | None) -> None:
    have = who.role_on(team) if who.app is None else None
    if have is None or have < need:
        reason = f"{operation} needs the {need.label} role in team {team!r}{_having(have)}"
        raise Forbidden(reason, field="authorization")


def _need_app_role(who: Principal, need: Role, operation: str, team: str | None, app: str | None) -> None:
    if who.app is not None and app != who.app:
        raise Forbidden(f"this token is for app {who.app!r} only", field="authorization")
    have = who.role_on(team, app) if team is not None else who.best_role
    if have is None or have < need:
        what = f"app {app!r}" if app else "the app"
        reason = f"{operation} on {what} needs the {need.label} role{_having(have)}"
        raise Forbidden(reason, field="authorization")


def _having(have: Role | None) -> str:
    return f" (you are {have.label})" if have is not None else " (you have no role there)"


# -- what a caller sees: listings and the monitor's outputs ----------------------------------------


def platform_wide(who: Principal) -> bool:
    """Does ``who`` see what is about the platform itself (hosts, host figures and events, rules about
    every app, volumes kept after their app went)? The platform admin only."""
    return who.admin and who.app is None and not who.pull_only


def visible(who: Principal, team: str | None, app: str | None) -> bool:
    """Does ``who`` see ``app`` (of ``team``) in a listing? ``team`` None: the app is gone (or never was),
    ``app`` None: about no app (the platform, a host) — both the platform admin's only."""
    if app is None or team is None:
        return platform_wide(who)
    return who.sees(team, app)


def visible_apps(who: Principal, app_teams: Mapping[str, str]) -> set[str] | None:
    """The apps ``who`` sees among ``app_teams`` (app -> team); None: every one, and those gone too."""
    if platform_wide(who):
        return None
    return {app for app, team in app_teams.items() if who.sees(team, app)}


def decide_app_or_platform(
    who: Principal, need: Role, *, operation: str, team: str | None, app: str | None
) -> None:
    """Something about one app (an alert rule for it) needs ``need`` on that app; about every app or the
    platform (``app`` None), the platform admin."""
    if app is None:
        decide(_ADMIN, who, operation=operation)
    else:
        decide(_app(need), who, operation=operation, team=team, app=app)


def decide_private_webhook(who: Principal) -> None:
    """A webhook allowed on a private network reaches inside the platform's network: the platform admin's
    call, whatever the rule is about."""
    decide(_ADMIN, who, operation="add_alert --allow-private")


def decide_operation(who: Principal, *, app: str, team: str | None, by: str) -> None:
    """Following an operation: one about an app needs a role on the app; one about a host or the platform
    (no app), the platform admin; one about an app removed since, the admin or the user who started it."""
    if not app:
        decide(_ADMIN, who, operation="operation")
    elif team is not None:
        decide(_VIEW, who, operation="operation", team=team, app=app)
    elif not (platform_wide(who) or (who.user and who.user == by and who.app in (None, app))):
        decide(_VIEW, who, operation="operation")  # 401 / pull-only first, as for any other operation
        raise Forbidden(
            f"operation on removed app {app!r}: only its maker or a platform admin follows it",
            field="authorization",
        )


# -- what a caller may grant and manage --------------------------------------------------------------


def may_grant(who: Principal, team: str, role: Role, app: str | None) -> None:
    """A token the caller makes cannot do more than the caller: raise Forbidden if it would."""
    have = who.role_on(team, app)
    if have is None or have < role:
        raise Forbidden(
            f"you cannot make a {role.label} token for team {team!r}{_having(have)}", field="role"
        )


# -- the audit log ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditReach:
    """Which audit entries a caller reads: all of them (``everything``: the platform admin), or those about
    ``teams`` (None: any team) and, for an app token, about its ``app`` only. Entries about no team
    (hosts, the registry, users, logins) are the platform admin's."""

    everything: bool = False
    teams: frozenset[str] | None = frozenset()
    app: str | None = None


def audit_reach(who: Principal) -> AuditReach:
    """The audit entries ``who`` may read: the platform admin's, all; a team owner's, the team's."""
    if who.pull_only:
        return AuditReach()
    if who.admin:
        return AuditReach(everything=True) if who.app is None else AuditReach(teams=None, app=who.app)
    owned = frozenset(team for team, role in who.roles.items() if role >= Role.OWNER)
    return AuditReach(teams=owned, app=who.app)


# -- the registry -----------------------------------------------------------------------------------

PLATFORM_NAMESPACE = "mypaas"  # the platform's own images: the Debian base, the builders


@dataclass(frozen=True)
class Repo:
    """Who a registry repository belongs to: the platform (``mypaas/…``), an app's team (``APP/…``), or
    nobody in particular (an image an admin imported under another name: shared, read by everyone)."""

    kind: str  # platform | app | shared
    team: str | None = None
    app: str | None = None


def registry_actions(who: Principal, repository: str, owner: Callable[[str], Repo]) -> tuple[str, ...]:
    """The actions ``who`` may take on ``repository`` (the registry token's ``access`` claim)."""
    if who.admin and who.app is None:
        return ("pull", "push", "delete", "*")
    repo = owner(repository)
    if who.pull_only:  # the hosts pull what apps run: always from the apps' repositories (APP/SERVICE)
        return ("pull",) if repo.kind == "app" else ()
    if repo.kind == "app":
        have = who.role_on(repo.team, repo.app)
        if have is None:
            return ()
        return ("pull", "push") if have >= Role.DEPLOYER else ("pull",)
    if who.best_role is None:
        return ()
    return ("pull",)  # the platform's base images and shared images: read by every member


def may_push(who: Principal, repository: str, owner: Callable[[str], Repo]) -> None:
    """Raise Forbidden unless ``who`` may write ``repository`` (an image import: the same as a push)."""
    if "push" in registry_actions(who, repository, owner):
        return
    repo = owner(repository)
    if repo.kind == "platform":
        reason = (
            f"only a platform admin writes {repository!r}: {PLATFORM_NAMESPACE}/* are the platform's images"
        )
    elif repo.kind == "app" and who.app is not None and who.app != repo.app:
        reason = f"this token is for app {who.app!r} only, not for {repository!r} (app {repo.app!r})"
    elif repo.kind == "app":
        have = who.role_on(repo.team, repo.app)
        reason = f"writing {repository!r} needs the deployer role on app {repo.app!r}{_having(have)}"
    else:
        reason = (
            f"{repository!r} is no app's repository: name the image APP/NAME:TAG after an app of your team"
            " (only a platform admin writes other names)"
        )
    raise Forbidden(reason, field="ref")


def catalog_actions(who: Principal) -> tuple[str, ...]:
    """``registry:catalog:*`` (listing every repository): the platform admin only."""
    return ("*",) if who.admin and who.app is None else ()
