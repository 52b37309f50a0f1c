"""`mypaas certs add|ls|rm`: a user's own certificate and key for one of an app's domains (instead of one
from an ACME CA). The key goes to the manager, which stores it encrypted; it is never shown back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mypaas.cli.groups import ListByDefault
from mypaas.cli.output import fail, print_json, say, table
from mypaas.cli.params import AppArg, JsonOpt, api

certs_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="""Serve an app's domain with your own certificate (instead of one from an ACME CA).

The certificate must cover the domain, match the key and be valid; the key (PEM, no passphrase) is
stored encrypted and never shown back. HTTP to such a domain redirects to HTTPS (see domains https).

Examples:

  mypaas certs add hello www.example.com --cert chain.pem --key key.pem
  mypaas certs ls                    (every app's)
  mypaas certs hello                 (or certs ls hello: one app's)
  mypaas certs rm hello www.example.com""",
)

FileOpt = Annotated[Path, typer.Option(metavar="FILE", dir_okay=False, show_default=False)]


def _read(path: Path, what: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"{what}: cannot read {path}: {exc.strerror or exc}")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        fail(f"{what}: {path} is not a PEM file (text beginning with -----BEGIN)")


@certs_app.command("add", no_args_is_help=True)
def certs_add(
    name: AppArg,
    domain: Annotated[str, typer.Argument(help="One of the app's domains, like www.example.com.")],
    cert: Annotated[Path, typer.Option("--cert", help="The certificate (PEM), then its chain.")],
    key: Annotated[Path, typer.Option("--key", help="Its private key (PEM, no passphrase).")],
) -> None:
    """Serve DOMAIN of the app with this certificate and key (replacing the one there)."""
    cert_pem, key_pem = _read(cert, "cert"), _read(key, "key")
    with api() as client:
        added = client.add_cert(name, domain, cert_pem, key_pem)
    say(
        f"{name}: {added['domain']} served with your certificate (issuer {added['issuer']}, "
        f"expires {added['expires']})"
    )


@certs_app.command("ls")
def certs_ls(
    name: Annotated[str | None, typer.Argument(metavar="[APP]", help="Only this app's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the users' own certificates: app, domain, issuer, expiry (never the key)."""
    with api() as client:
        certs = client.certs(name)
    if as_json:
        print_json(certs)
        return
    table(["APP", "DOMAIN", "ISSUER", "EXPIRES"], [_row(c) for c in certs], empty=_none(name))


def _row(cert: dict[str, Any]) -> list[str]:
    return [cert["app"], cert["domain"], cert["issuer"], cert["expires"]]


def _none(name: str | None) -> str:
    return f"no certificates of your own for {name}" if name else "no certificates of your own"


@certs_app.command("rm", no_args_is_help=True)
def certs_rm(
    name: AppArg, domain: Annotated[str, typer.Argument(help="The domain whose certificate goes.")]
) -> None:
    """Forget the app's own certificate for DOMAIN (it then gets one from the ACME CA again)."""
    with api() as client:
        client.remove_cert(name, domain)
    say(f"{name}: your certificate for {domain} removed")
