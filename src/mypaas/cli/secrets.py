"""`mypaas secrets ls|set|rm APP`: the secrets a compose file's ``external`` secrets refer to. Values go
in from stdin or a file and never come back out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mypaas.cli.groups import ListByDefault
from mypaas.cli.output import ago, fail, print_json, run_operation, say, table
from mypaas.cli.params import AppArg, JsonOpt, NoWait, TeamOpt, api

NOT_AN_ARGUMENT = (
    "a secret's value is never taken from the command line (every user of the machine sees the "
    "arguments, and the shell keeps them in its history)"
)

secrets_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="""Manage an app's secrets.

A compose file mounts one with `secrets: {NAME: {external: true}}` and a service's `secrets: [NAME]`
(at /run/secrets/NAME). Values are stored encrypted and never shown back; setting one makes a new
release of a deployed app.

Examples:

  mypaas secrets set shop db_password < password.txt
  mypaas secrets set shop tls_key --from-file key.pem
  mypaas secrets shop                (or secrets ls shop)
  mypaas secrets rm shop db_password""",
)


def masked_lines(entries: list[dict[str, Any]]) -> list[str]:
    """One comment line per secret or config (for `mypaas config APP`, whose KEY=VALUE lines a shell
    or an env file can read): its name, the value masked, where it comes from and where it is mounted."""
    lines = []
    for entry in entries:
        where = "; ".join([entry["source"], *entry["mounts"]])
        lines.append(f"# {entry['kind']} {entry['name']}={entry['value']} ({where})")
    return lines


@secrets_app.command("ls", no_args_is_help=True)
def secrets_ls(name: AppArg, as_json: JsonOpt = False) -> None:
    """List an app's secrets and configs (values masked); `mypaas secrets APP` does the same.

    Those of the release it runs, and those set with `secrets set` that it does not mount.
    """
    with api() as client:
        entries = client.secrets(name)
    if as_json:
        print_json(entries)
        return
    rows = [
        [
            e["name"],
            e["kind"],
            e["value"],
            e["source"],
            e["digest"],
            ", ".join(e["mounts"]),
            ago(e.get("set_at")),
        ]
        for e in entries
    ]
    table(["NAME", "KIND", "VALUE", "SOURCE", "DIGEST", "MOUNTED AT", "SET"], rows, empty="no secrets")


@secrets_app.command("set", no_args_is_help=True, context_settings={"allow_extra_args": True})
def secrets_set(
    ctx: typer.Context,
    name: AppArg,
    secret: Annotated[str, typer.Argument(metavar="NAME", help="The secret's name.", show_default=False)],
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Read the value from this file (else stdin).", show_default=False),
    ] = None,
    team: TeamOpt = None,
    no_wait: NoWait = False,
) -> None:
    """Set a secret from stdin or --from-file, as it is (a final newline included).

    Never from the command line: every user of the machine sees the arguments (ps, /proc).

    And the shell keeps them in its history. On a terminal it asks without echoing.

    The app may not exist yet: its first deploy then finds the secret (--team: the team it goes to).
    """
    if ctx.args:  # a value given as an argument: refused, and never sent
        fail(f"{NOT_AN_ARGUMENT}: pipe it in (… | mypaas secrets set {name} {secret}) or use --from-file")
    data = _read_value(from_file)
    with api() as client:
        answer = client.set_secret(name, secret, data, team)
        op = answer.get("operation")
        if op:
            run_operation(client, op, f"setting secret {secret} of {name}", no_wait)
            return
    say(f"{name}: secret {secret} {'set' if answer.get('changed') else 'unchanged'}")


def _read_value(from_file: Path | None) -> bytes:
    if from_file is not None:
        try:
            return from_file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {from_file}: {exc.strerror or exc}")
    if sys.stdin.isatty():
        return str(typer.prompt("value", hide_input=True)).encode()
    return sys.stdin.buffer.read()


@secrets_app.command("rm", no_args_is_help=True)
def secrets_rm(
    name: AppArg,
    secret: Annotated[str, typer.Argument(metavar="NAME", help="The secret to forget.", show_default=False)],
) -> None:
    """Forget a secret set with `secrets set` (refused while the app's release mounts it).

    Releases that used it keep its values, so a rollback to one of them still works.
    """
    with api() as client:
        client.remove_secret(name, secret)
    say(f"{name}: secret {secret} removed")
