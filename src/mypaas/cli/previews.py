"""`mypaas previews APP|on|off|rm`: an app's preview apps, one per git branch, deployed with
`mypaas deploy APP DIR --preview BRANCH`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mypaas.cli.groups import ListByDefault
from mypaas.cli.output import ago, print_json, run_operation, say, table, version
from mypaas.cli.params import AppArg, JsonOpt, NoWait, api

previews_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="""Preview apps: one app of its own per git branch of an app.

`mypaas deploy APP DIR --preview BRANCH` deploys the preview of APP for BRANCH (once previews are on):
the app APP-<branch> in APP's team, at its own URL, with APP's config vars (copied again at each
preview deploy) and APP's secrets only with --with-secrets, one replica per service, no custom domain,
autoscale or alert rule. Deploying the same branch again makes a new release of the preview.

Examples:

  mypaas previews on shop --limit 2          (the app's owner)
  mypaas deploy shop . --preview feature/x
  mypaas previews shop                       (or previews ls shop)
  mypaas previews rm shop feature/x
  mypaas previews off shop                   (removes none)""",
)

BranchArg = Annotated[str, typer.Argument(metavar="BRANCH", help="The git branch.", show_default=False)]


@previews_app.command("ls", no_args_is_help=True)
def previews_ls(name: AppArg, as_json: JsonOpt = False) -> None:
    """List an app's preview apps: name, branch, URL, status, when made; `mypaas previews APP` too."""
    with api() as client:
        found = client.previews(name)
        settings = {} if as_json else client.app(name).get("previews") or {}
    if as_json:
        print_json(found)
        return
    if settings:  # on stderr: the table stays the previews
        print(_settings_line(name, settings, len(found)), file=sys.stderr)
    rows = [
        [p["name"], p["branch"], p["url"], p["status"], version(p.get("release")), ago(p.get("created_at"))]
        for p in found
    ]
    table(["NAME", "BRANCH", "URL", "STATUS", "RELEASE", "CREATED"], rows, empty="no previews")


@previews_app.command("on", no_args_is_help=True)
def previews_on(
    name: AppArg,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            metavar="N",
            min=1,
            max=100,
            help="How many previews may exist at once, 1 to 100 (at first 3; unset: kept).",
            show_default=False,
        ),
    ] = None,
    with_secrets: Annotated[
        bool,
        typer.Option(
            "--with-secrets",
            help="Give previews the app's secrets (without it they get none: a branch may run code "
            "nobody reviewed yet).",
        ),
    ] = False,
) -> None:
    """Let deploys with --preview BRANCH make preview apps of APP (the app's team owner).

    Example:  mypaas previews on shop --limit 2 --with-secrets
    """
    with api() as client:
        answer = client.set_previews(name, enabled=True, limit=limit, with_secrets=with_secrets)
    say(_settings_line(name, answer, len(answer.get("previews") or [])))


@previews_app.command("off", no_args_is_help=True)
def previews_off(name: AppArg) -> None:
    """Refuse preview deploys of APP; the previews that exist keep running (`previews rm` removes one)."""
    with api() as client:
        answer = client.set_previews(name, enabled=False)
    say(_settings_line(name, answer, len(answer.get("previews") or [])))


@previews_app.command("rm", no_args_is_help=True)
def previews_rm(name: AppArg, branch: BranchArg, no_wait: NoWait = False) -> None:
    """Remove APP's preview for BRANCH completely: instances, networks, volumes, releases, images.

    Removing a preview that is gone already succeeds (it says so).
    Example:  mypaas previews rm shop feature/x
    """
    with api() as client:
        answer = client.remove_preview(name, branch)
        if not answer.get("removed") or answer.get("operation") is None:
            say(f"no preview of {name} for {branch}: nothing to remove")
            return
        run_operation(client, answer["operation"], f"removing {answer['app']}", no_wait)


def _settings_line(name: str, settings: dict[str, object], count: int) -> str:
    """'previews of shop: on, limit 2, without secrets; 1 exists'."""
    state = "on" if settings.get("enabled") else "off"
    secrets = "with secrets" if settings.get("with_secrets") else "without secrets"
    exists = f"{count} exist{'s' if count == 1 else ''}"
    return f"previews of {name}: {state}, limit {settings.get('limit')}, {secrets}; {exists}"
