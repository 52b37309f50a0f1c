"""Commands about what an app runs: `releases`, `rollback`, `config …` and `domains …`."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from mypaas.cli.groups import ListByDefault
from mypaas.cli.outcome import finish
from mypaas.cli.output import ago, fail, print_json, say, table, version
from mypaas.cli.params import AppArg, JsonOpt, NoWait, api, app_url
from mypaas.cli.secrets import masked_lines

_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


config_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="""Show or change an app's config vars (environment).

Each change makes a new release.

Examples:

  mypaas config hello                (or config ls hello, config show hello)
  mypaas config set hello GREETING=hi DEBUG=1
  mypaas config unset hello DEBUG""",
)
domains_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="""Manage an app's custom domains.

Besides APP.<base domain>, which every app gets.

Examples:

  mypaas domains add hello www.example.com
  mypaas domains hello               (or domains ls hello)""",
)


def releases(name: AppArg, as_json: JsonOpt = False) -> None:
    """List an app's releases, newest first.

    Each deploy, config change and rollback makes one.
    """
    with api() as client:
        rels = client.releases(name)
    if as_json:
        print_json(rels)
        return
    rows = [
        [
            version(r["version"]),
            r["status"],
            r.get("description") or "",
            r.get("created_by") or "",
            ago(r.get("created_at")),
        ]
        for r in rels
    ]
    table(["RELEASE", "STATUS", "DESCRIPTION", "BY", "CREATED"], rows, empty="no releases")


def _release_number(value: str) -> int:
    match = re.fullmatch(r"[vV]?(\d+)", value.strip())
    if not match or int(match[1]) < 1:
        raise typer.BadParameter(f"{value!r} is not a release: give a number like 3 or v3")
    return int(match[1])


def rollback(
    name: AppArg,
    release: Annotated[
        int | None,
        typer.Argument(
            metavar="RELEASE",
            parser=_release_number,
            help="The release to go back to (3 or v3); default: the previous one.",
            show_default=False,
        ),
    ] = None,
    no_wait: NoWait = False,
    as_json: JsonOpt = False,
) -> None:
    """Go back to an earlier release (its images and config).

    The rollback itself is recorded as a new release.

    Examples:  mypaas rollback hello ; mypaas rollback hello v2
    """
    with api() as client:
        op = client.rollback(name, release)
        finish(client, op, f"rolling back {name}", no_wait=no_wait, as_json=as_json)


@config_app.command("ls", no_args_is_help=True)
@config_app.command("show", no_args_is_help=True)
def config_show(name: AppArg, as_json: JsonOpt = False) -> None:
    """Print an app's config vars as KEY=VALUE lines, then its secrets and configs, masked.

    `mypaas config APP` and `config show APP` do the same.

    The secrets are comment lines (# secret NAME=********).
    """
    with api() as client:
        config = client.config(name)
        entries = [] if as_json else client.secrets(name)
    if as_json:
        print_json(config)
    elif not config:  # on stderr: stdout stays KEY=VALUE lines a shell or an env file reads
        print("no config vars", file=sys.stderr)
    for key in [] if as_json else sorted(config):
        say(f"{key}={config[key]}")
    for line in masked_lines(entries):
        say(line)


def _pairs(values: list[str]) -> list[str]:
    for value in values:
        if not _KEY_VALUE.match(value):
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE")
    return values


@config_app.command("set", no_args_is_help=True)
def config_set(
    name: AppArg,
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", callback=_pairs, help="Vars to set.")],
    no_wait: NoWait = False,
    as_json: JsonOpt = False,
) -> None:
    """Set config vars; the app restarts with them (a new release; none when nothing changes)."""
    changes = {}
    for value in pairs:
        key, _, val = value.partition("=")
        changes[key] = val
    with api() as client:
        op = client.set_config(name, changes, [])
        finish(client, op, f"updating config of {name}", no_wait=no_wait, as_json=as_json)


@config_app.command("unset", no_args_is_help=True)
def config_unset(
    name: AppArg,
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Vars to remove.")],
    no_wait: NoWait = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove config vars; the app restarts without them (a new release)."""
    with api() as client:
        op = client.set_config(name, {}, keys)
        finish(client, op, f"updating config of {name}", no_wait=no_wait, as_json=as_json)


@domains_app.command("ls", no_args_is_help=True)
def domains_ls(name: AppArg, as_json: JsonOpt = False) -> None:
    """List an app's custom domains (`mypaas domains APP` does the same): the certificate serving each
    (user: yours, acme, internal, none), its issuer, expiry and the last error getting one."""
    with api() as client:
        domains = client.domain_status(name)
    if as_json:
        print_json(domains)
        return
    table(
        ["DOMAIN", "CERTIFICATE", "ISSUER", "EXPIRES", "ERROR"],
        [
            [d["domain"], d["certificate"], d["issuer"] or "-", d["expires"] or "-", d["error"] or "-"]
            for d in domains
        ],
        empty=f"no domains (only {app_url(name)})",
    )


@domains_app.command("add", no_args_is_help=True)
def domains_add(name: AppArg, domain: Annotated[str, typer.Argument(help="Like www.example.com.")]) -> None:
    """Route a domain to the app (point its DNS at this host)."""
    with api() as client:
        added = client.add_domain(name, domain).get("domain", domain)
    say(f"{name}: added {added}")


@domains_app.command("rm", no_args_is_help=True)
def domains_rm(name: AppArg, domain: Annotated[str, typer.Argument(help="The domain to remove.")]) -> None:
    """Stop routing a domain to the app."""
    with api() as client:
        client.remove_domain(name, domain)
    say(f"{name}: removed {domain}")


@domains_app.command("https", no_args_is_help=True)
def domains_https(
    name: AppArg,
    switch: Annotated[str, typer.Argument(metavar="on|off", help="on: redirect to HTTPS; off: keep HTTP.")],
) -> None:
    """Redirect HTTP to HTTPS for the app's domains with a trusted certificate (on, the default), or keep
    plain HTTP for them (off). HTTPS is served either way."""
    if switch not in ("on", "off"):
        fail(f"https: expected on or off, not {switch!r}")
    with api() as client:
        client.set_https(name, switch == "on")
    if switch == "on":
        say(f"{name}: HTTP redirects to HTTPS where a trusted certificate is there")
    else:
        say(f"{name}: plain HTTP kept (no redirect to HTTPS)")
