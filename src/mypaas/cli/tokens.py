"""`mypaas token create|ls|revoke`: named API tokens scoped to a team and a role (and one app), with an
expiry; a token's secret is shown once, when it is made, and a revoked token stops working at once."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from mypaas.cli.output import ago, print_json, say, table
from mypaas.cli.params import JsonOpt, api

token_app = typer.Typer(
    no_args_is_help=True,
    help="""Make, list and revoke API tokens (for CI, scripts, robots).

A token acts for its user within a team and a role, optionally one app, until it expires
or is revoked; it never does more than its user may. Use it as MYPAAS_TOKEN, or as the
password of `docker login` to the platform's registry.

Examples:

  mypaas token create ci --team shop --role deployer --app shop --expires 90d
  mypaas token ls
  mypaas token revoke 7""",
)


def until(timestamp: float | None) -> str:
    """An expiry as 'in 29d', 'in 3h', 'in 12m', 'expired' or 'never'."""
    if timestamp is None:
        return "never"
    seconds = int(timestamp - time.time())
    if seconds <= 0:
        return "expired"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {round(seconds / size)}{unit}"  # a 90d token just made: "in 90d"
    return f"in {seconds}s"


def day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def scope(t: dict[str, Any]) -> str:
    """'deployer in team shop, app shop' or "all of alice's rights"."""
    if not t.get("team"):
        return f"all of {t.get('user') or 'the user'}'s rights"
    app = f", app {t['app']}" if t.get("app") else ""
    return f"{t.get('role')} in team {t['team']}{app}"


@token_app.command("create", no_args_is_help=True)
def token_create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The token's name (e.g. ci).", show_default=False)
    ],
    team: Annotated[
        str, typer.Option("--team", metavar="TEAM", help="The team it acts in.", show_default=False)
    ],
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="owner, deployer or viewer.", show_default=False)
    ],
    app: Annotated[
        str | None,
        typer.Option("--app", metavar="APP", help="Only this app of the team.", show_default=False),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER",
            help="Whose token (a platform admin; default: yours).",
            show_default=False,
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", metavar="WHEN", help="30d, 12h, 2w, never (default 90d).", show_default=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON, the token in it (for scripts).")
    ] = False,
) -> None:
    """Make a token: its secret is printed once, on stdout.

    It can do no more than you can (nor than its user can, at each use).
    """
    body = {"name": name, "team": team, "role": role, "app": app, "user": user, "expires": expires}
    with api() as client:
        made = client.create_token(body)
    if as_json:
        print_json(made)
        return
    expiry = f"expires {until(made.get('expires'))}" + (
        f" ({day(made['expires'])})" if made.get("expires") else ""
    )
    print(
        f"made token {made['name']} (id {made['id']}) of {made['user']}: {scope(made)}; {expiry}",
        file=sys.stderr,
    )
    say(made["token"])
    print(
        f"this token is shown once: keep it now (mypaas token revoke {made['id']} ends it)", file=sys.stderr
    )


def _used(t: dict[str, Any]) -> str:
    if not t.get("last_used"):
        return "never"
    where = f" from {t['last_used_from']}" if t.get("last_used_from") else ""
    return f"{ago(t['last_used'])}{where}"


def _row(t: dict[str, Any]) -> list[Any]:
    return [
        t["id"],
        t["name"],
        t.get("user") or "-",
        t.get("team") or "(all)",
        t.get("role") if t.get("team") else "(all)",
        t.get("app") or "-",
        until(t.get("expires")) if t.get("state") == "active" else "-",
        _used(t),
        t.get("state"),
    ]


@token_app.command("ls")
def token_ls(
    everyone: Annotated[bool, typer.Option("--all", help="Every user's tokens (a platform admin).")] = False,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="USER", help="This user's tokens (a platform admin).", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List your tokens (logins included): scope, expiry, last use and from where, state.

    TEAM and ROLE "(all)": a login's token, with all of its user's rights.
    """
    with api() as client:
        tokens = client.tokens(user, everyone=everyone)
    if as_json:
        print_json(tokens)
        return
    table(
        ["ID", "NAME", "USER", "TEAM", "ROLE", "APP", "EXPIRES", "LAST USED", "STATE"],
        [_row(t) for t in tokens],
        empty="no tokens",
    )


@token_app.command("revoke", no_args_is_help=True)
def token_revoke(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="The token's id (or one of your tokens' name).", show_default=False
        ),
    ],
) -> None:
    """Revoke a token: it stops working on its next request."""
    with api() as client:
        done = client.revoke_token(ref)
    say(f"revoked token {done['name']} (id {done['id']}) of {done.get('user') or '-'}")
