"""`mypaas login [URL]`, `mypaas logout` and `mypaas whoami`: a user's password traded for a login token,
kept in the user's config folder (credentials.py) and used by every command after (unless MYPAAS_TOKEN)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli import credentials
from mypaas.cli.output import fail, print_json, say
from mypaas.cli.params import JsonOpt, api
from mypaas.cli.tokens import day, scope, until
from mypaas.cli.users import PasswordStdin, read_password
from mypaas.errors import InvalidSpec, MyPaasError, Unauthorized

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient


def connect_to(url: str, token: str, ca: str | None = None) -> ApiClient:
    """A client of the API at ``url`` with ``token`` ("" for none), verifying its certificate against
    ``ca`` (PEM) when given; tests replace this function."""
    from mypaas.cli.client import ApiClient

    return ApiClient(url, token, ca=ca)


def _default_url() -> str:
    url = os.environ.get("MYPAAS_URL", "").strip()
    if url:
        return url
    try:
        saved = credentials.stored()
    except InvalidSpec:
        saved = None
    if saved is not None:
        return saved.url
    from mypaas.cli.client import client_conf

    return client_conf().api_url


def _in_clear(url: str) -> bool:
    """Whether a password sent to ``url`` would cross a network unencrypted (http:// off this machine)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1") or (parts.hostname or "").endswith(
        ".localhost"
    )
    return parts.scheme == "http" and not local


def login(
    url: Annotated[
        str | None,
        typer.Argument(
            metavar="[URL]",
            help="The API, e.g. https://paas.example.com"
            " (default: MYPAAS_URL, the last login's, this machine's).",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", metavar="USER", help="Your user name (else asked).", show_default=False),
    ] = None,
    password_stdin: PasswordStdin = False,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            metavar="SHA256:...",
            help="The platform CA's fingerprint to trust (`mypaas status` on the manager shows it);"
            " else it is shown and you are asked.",
            show_default=False,
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="WHEN",
            help="The login's lifetime: 12h, 30d... (default 30d).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Log in: trade your user name and password for a login token.

    The token is kept in your config folder ($XDG_CONFIG_HOME/mypaas/credentials.json or
    ~/.config/mypaas/credentials.json, readable by you only) and used by every command after
    (MYPAAS_TOKEN and MYPAAS_URL, when set, win). Failed logins are slowed, then refused for a while.

    An https:// API with its own platform CA: on first contact the CA's fingerprint is shown and you are
    asked to trust it (or pass --fingerprint); it is kept with the credentials and every call after
    refuses a certificate it did not sign.
    """
    from mypaas.cli.trust import platform_ca

    where = (url or _default_url()).rstrip("/")
    if _in_clear(where):
        print(
            f"warning: {where} is plain http: your password and token cross the network unencrypted",
            file=sys.stderr,
        )
    ca = platform_ca(where, fingerprint)
    name = user or str(typer.prompt("User")).strip()
    password = read_password(password_stdin, confirm=False)
    with connect_to(where, "", ca or None) as client:
        answer = client.login(name, password, expires=expires)
    saved = credentials.save(credentials.Credentials(where, answer["token"], answer.get("user") or name, ca))
    expiry = f"expires {until(answer.get('expires'))}" + (
        f" ({day(answer['expires'])})" if answer.get("expires") else ""
    )
    say(f"logged in to {where} as {answer.get('user') or name}; token {answer['name']} {expiry}")
    say(f"credentials kept in {saved} (mode 0600); `mypaas logout` ends the login")


def logout() -> None:
    """Log out: revoke the login's token on the server and remove the credentials file."""
    try:
        saved = credentials.stored()
    except InvalidSpec:
        credentials.remove()
        say(f"removed the unreadable {credentials.path()}")
        return
    if saved is None:
        fail(f"not logged in (no {credentials.path()})")
    ended = "token revoked"
    try:
        with connect_to(saved.url, saved.token) as client:
            client.logout()
    except Unauthorized:
        ended = "the token had already stopped working"
    except MyPaasError as exc:
        fail(f"{exc.message} (the credentials in {credentials.path()} stay; try again)")
    credentials.remove()
    say(f"logged out of {saved.url} ({ended}; removed {credentials.path()})")


def _token_line(token: dict[str, Any]) -> str:
    if not token.get("kind"):
        return str(token.get("name") or "-")
    expiry = until(token.get("expires")) if token.get("state", "active") == "active" else token.get("state")
    return (
        f"{token.get('name')} (id {token.get('id')}, {token.get('kind')}): {scope(token)}; expires {expiry}"
    )


def whoami(as_json: JsonOpt = False) -> None:
    """Who the API takes you for: user, platform admin, role per team, and the token used."""
    with api() as client:
        me = client.whoami()
        url = client.url
    if as_json:
        print_json(me)
        return
    admin = " (platform admin)" if me.get("admin") else ""
    teams = ", ".join(f"{team} ({role})" for team, role in (me.get("teams") or {}).items()) or "none"
    say(f"user:   {me.get('user') or '-'}{admin}")
    say(f"teams:  {teams}")
    say(f"token:  {_token_line(me.get('token') or {})}")
    say(f"api:    {url}")
    if me.get("app"):
        print(f"this token acts on app {me['app']} only", file=sys.stderr)
