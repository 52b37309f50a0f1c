"""``mypaas audit``: the audit log — who changed what, from where, with which token, and how it ended;
denied calls and failed logins too."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer

from mypaas.cli.output import print_json, table
from mypaas.cli.params import JsonOpt, api

COLUMNS = ("TIME", "USER", "TOKEN", "SOURCE", "ACTION", "APP/HOST", "RESULT")


def audit(
    app: Annotated[str | None, typer.Option("--app", help="Only the entries about this app.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's calls.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="How far back: 30m, 1h, 2d, or a time such as 2026-12-01T10:00 (local time)."
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many entries (the newest).")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show the audit log: calls that changed something, denied calls and failed logins.

    Each entry says who (user and token name), from where, what (the operation; --json also has the
    method and path, and the error of a failure), on which app or host, and how it ended. A platform
    admin sees every entry; a team owner, those about the team's apps. No entry holds a secret's value,
    a password or a token.

    Examples:

      mypaas audit --since 1h
      mypaas audit --app shop --user ci --limit 20
    """
    with api() as client:
        found = client.audit(app=app, user=user, since=zoned(since), limit=limit)
    if as_json:
        print_json(found)
        return
    table(COLUMNS, [row(e) for e in found], empty="no audit entries")


def zoned(since: str | None) -> str | None:
    """A time without a zone is the user's local time: send it with its offset (durations unchanged)."""
    if since is None:
        return None
    try:
        when = datetime.fromisoformat(since.strip())
    except ValueError:
        return since
    return when.astimezone().isoformat() if when.tzinfo is None else since


def row(e: dict[str, Any]) -> list[str]:
    result = str(e.get("result", ""))
    return [
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e.get("at") or 0))),
        e.get("user") or "-",
        e.get("token") or "-",
        e.get("source") or "-",
        str(e.get("action", "")),
        e.get("app") or (f"host {e['host']}" if e.get("host") else "-"),
        result if result == "ok" else f"{result} ({e.get('status')})",
    ]
