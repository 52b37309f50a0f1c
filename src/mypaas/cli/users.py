"""`mypaas user add|ls|rm|passwd` and `mypaas team add|ls|rm`, `mypaas team member add|rm`: the platform's
users, its teams and their members' roles (owner > deployer > viewer). Passwords are read from a hidden
prompt or stdin, never from the command line."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mypaas.cli.keys import key_app
from mypaas.cli.output import ago, fail, print_json, say, table
from mypaas.cli.params import JsonOpt, api

user_app = typer.Typer(
    no_args_is_help=True,
    help="""Add, list and remove users; set passwords.

A user logs in with `mypaas login` and acts with their role in each team. The platform admin
(the first user, "admin", made by `mypaas up`) manages users, teams, hosts and the registry.

Examples:

  mypaas user add alice
  printf '%s\\n' "$PASSWORD" | mypaas user add ci-bot --password-stdin
  mypaas user ls
  mypaas user passwd
  mypaas user key add alice ~/.ssh/id_ed25519.pub
  mypaas user rm alice""",
)
user_app.add_typer(key_app, name="key")

team_app = typer.Typer(
    no_args_is_help=True,
    help="""Add, list and remove teams; add and remove their members.

Every app belongs to one team. Roles: owner (members), deployer (deploy, scale, config,
secrets, domains, logs), viewer (read, logs, metrics, events).

Examples:

  mypaas team add shop --owner alice
  mypaas team member add shop bob --role deployer
  mypaas team ls
  mypaas team member rm shop bob""",
)

member_app = typer.Typer(no_args_is_help=True, help="Add or remove a team's members, or change a role.")
team_app.add_typer(member_app, name="member")

UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user's name.", show_default=False)]
TeamArg = Annotated[str, typer.Argument(metavar="TEAM", help="The team's name.", show_default=False)]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from stdin (its first line) instead of asking."),
]


def read_password(from_stdin: bool, *, confirm: bool, prompt: str = "Password") -> str:
    """The password from stdin's first line, or from a hidden prompt (asked twice when ``confirm``)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _roles(roles: dict[str, str]) -> str:
    return ", ".join(f"{name} ({role})" for name, role in sorted(roles.items())) or "-"


# -- users --------------------------------------------------------------------------------------------


@user_app.command("add", no_args_is_help=True)
def user_add(
    name: UserArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make a platform admin.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user, with a password (asked twice, hidden; or --password-stdin).

    A password needs at least 12 characters, 5 of them different, and must not contain the user name.
    """
    password = read_password(password_stdin, confirm=True)
    with api() as client:
        client.add_user(name, password, admin=admin)
    say(f"added user {name}{' (platform admin)' if admin else ''}")
    say(f"add them to a team: mypaas team member add TEAM {name} --role deployer")


@user_app.command("ls")
def user_ls(as_json: JsonOpt = False) -> None:
    """List the users: platform admin or not, password set, role per team."""
    with api() as client:
        users = client.users()
    if as_json:
        print_json(users)
        return
    rows = [
        [
            u["name"],
            "yes" if u.get("admin") else "-",
            "set" if u.get("password_set") else "none",
            _roles(u.get("teams") or {}),
            ago(u.get("created")),
        ]
        for u in users
    ]
    table(["NAME", "ADMIN", "PASSWORD", "TEAMS", "CREATED"], rows, empty="no users")


@user_app.command("rm", no_args_is_help=True)
def user_rm(name: UserArg) -> None:
    """Remove a user: their tokens and logins stop working at once.

    Not the last platform admin, nor a team's last owner.
    """
    with api() as client:
        client.remove_user(name)
    say(f"removed user {name} (their tokens stop working)")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[
        str | None,
        typer.Argument(metavar="[USER]", help="Whose password (default: yours).", show_default=False),
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set your password (a platform admin: anyone's).

    The user's other login sessions end; tokens made with `mypaas token create` stay.
    """
    with api() as client:
        user = name or client.whoami().get("user") or ""
        if not user:
            fail("this token belongs to no user: name one (mypaas user passwd USER)")
        password = read_password(password_stdin, confirm=True, prompt=f"New password for {user}")
        client.set_password(user, password)
    say(f"password of {user} changed; their other login sessions ended")


# -- teams --------------------------------------------------------------------------------------------


@team_app.command("add", no_args_is_help=True)
def team_add(
    name: TeamArg,
    owner: Annotated[
        str | None,
        typer.Option("--owner", metavar="USER", help="The team's first owner.", show_default=False),
    ] = None,
) -> None:
    """Add a team (a platform admin), with its first owner."""
    with api() as client:
        client.add_team(name, owner)
    say(f"added team {name}" + (f" (owner {owner})" if owner else ""))


def _team_row(t: dict[str, Any]) -> list[Any]:
    return [t["name"], t.get("apps", 0), _roles(t.get("members") or {})]


@team_app.command("ls")
def team_ls(as_json: JsonOpt = False) -> None:
    """List your teams (a platform admin: every team): apps and members with their role."""
    with api() as client:
        teams = client.teams()
    if as_json:
        print_json(teams)
        return
    table(["NAME", "APPS", "MEMBERS"], [_team_row(t) for t in teams], empty="no teams")


@team_app.command("rm", no_args_is_help=True)
def team_rm(name: TeamArg) -> None:
    """Remove a team that has no apps (remove or move them first)."""
    with api() as client:
        client.remove_team(name)
    say(f"removed team {name}")


@member_app.command("add", no_args_is_help=True)
def member_add(
    team: TeamArg,
    user: UserArg,
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="owner, deployer or viewer.", show_default=False)
    ],
) -> None:
    """Add a member to a team with a role, or change a member's role (a team owner)."""
    with api() as client:
        answer = client.add_member(team, user, role)
    say(f"{user} is {answer.get('role', role)} in team {team}")


@member_app.command("rm", no_args_is_help=True)
def member_rm(team: TeamArg, user: UserArg) -> None:
    """Take a member out of a team (a team owner); not its last owner."""
    with api() as client:
        client.remove_member(team, user)
    say(f"removed {user} from team {team}")
