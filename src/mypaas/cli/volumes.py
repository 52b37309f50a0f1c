"""`mypaas volumes ls|rm`: the apps' named volumes, those kept after `mypaas rm` included; and what
`mypaas rm` says of an app's volumes (in its question and once it is done)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mypaas.cli.output import print_json, say, table
from mypaas.cli.params import JsonOpt, api

volumes_app = typer.Typer(
    no_args_is_help=True,
    help="""See and remove the apps' named volumes.

`mypaas rm APP` keeps an app's volumes (its data) unless given --volumes.

Deploying an app of the same name again mounts them again.
A kept volume stays listed, with the app it belonged to, until removed.

Examples:

  mypaas volumes ls
  mypaas volumes ls shop --json
  mypaas volumes rm mypaas_shop_data""",
)


def _names(names: list[str]) -> str:
    return f"volume{'s' if len(names) > 1 else ''} {', '.join(names)}"


def removal_question(name: str, volumes: list[str], remove_volumes: bool, images: bool = False) -> str:
    """What `mypaas rm` asks, naming the volumes that go or stay (and the registry images that go)."""
    goes = ["instances", "releases", "config"] + (["registry images"] if images else [])
    if volumes and remove_volumes:
        goes.append(f"{_names(volumes)} (data lost)")
    what = f"{', '.join(goes[:-1])} and {goes[-1]}"
    if volumes and not remove_volumes:
        return f"Remove app {name} with its {what}, keeping {_names(volumes)}?"
    return f"Remove app {name} with its {what}?"


def removal_line(volumes: list[str], remove_volumes: bool, waited: bool) -> str:
    """What `mypaas rm` says of the app's volumes once the removal is done (or accepted)."""
    if not volumes:
        return ""
    if remove_volumes:
        return f"{'removed' if waited else 'removing'} {_names(volumes)}"
    them = "them" if len(volumes) > 1 else "it"
    return f"kept {_names(volumes)} (mypaas volumes rm {' '.join(volumes)} removes {them})"


def _row(v: dict[str, Any]) -> list[str]:
    state = v["app_state"] if v["app_state"] != "removed" else "removed (kept)"
    return [v["name"], v["app"], v["volume"], state, ", ".join(v["used_by"]) or "-"]


@volumes_app.command("ls")
def volumes_ls(
    app: Annotated[
        str | None, typer.Argument(metavar="APP", help="Only this app's volumes.", show_default=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the apps' named volumes.

    Each with the app it belongs to and the containers that mount it.
    APP STATE "removed (kept)": the app is gone, its volume was kept.
    """
    with api() as client:
        volumes = client.volumes(app)
    if as_json:
        print_json(volumes)
        return
    if not volumes:
        say(f"no volumes of app {app}" if app else "no app volumes")
        return
    table(["NAME", "APP", "VOLUME", "APP STATE", "USED BY"], [_row(v) for v in volumes])


@volumes_app.command("rm", no_args_is_help=True)
def volumes_rm(
    names: Annotated[
        list[str], typer.Argument(metavar="NAME...", help="Volumes, as `volumes ls` names them.")
    ],
) -> None:
    """Remove volumes and their data.

    Not while a container mounts one, or its app still uses it
    (then `mypaas rm APP --volumes`).
    """
    with api() as client:
        for name in names:  # the first refused one stops the rest (the error names it)
            client.remove_volume(name)
            say(f"removed volume {name}")
