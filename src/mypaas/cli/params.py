"""Pieces every command shares: argument types, and the API client and settings, loaded only when used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient
    from mypaas.settings import Settings

AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app's name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Return once accepted; don't follow the rollout.")]
TeamOpt = Annotated[
    str | None,
    typer.Option(
        "--team",
        help="The team a new app goes to (default: your only team); an app stays in its team.",
        show_default=False,
    ),
]


def api() -> ApiClient:
    """A client of the REST API (MYPAAS_URL / MYPAAS_TOKEN, else this machine's platform)."""
    from mypaas.cli import client

    return client.connect()


def platform_settings() -> Settings:
    from mypaas.cli.client import settings

    return settings()


def app_url(name: str, settings: Settings | None = None) -> str:
    """Where the router serves the app: http://APP.<base_domain>, with the router's port unless 80."""
    s = settings or platform_settings()
    port = "" if s.router_port == 80 else f":{s.router_port}"
    return f"http://{name}.{s.base_domain}{port}"
