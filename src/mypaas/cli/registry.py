"""``mypaas registry``: the private registry's state and garbage collection; ``image ls/rm`` helpers."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mypaas.cli.output import print_json, say, table
from mypaas.cli.params import JsonOpt, api

DOCKER_HUB = "https://registry-1.docker.io"

registry_app = typer.Typer(help="The private registry: status and garbage collection.", no_args_is_help=True)


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@registry_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Address, health, repositories and disk use of the private registry."""
    with api() as client:
        info = client.registry_status()
    if as_json:
        print_json(info)
        return
    say(f"registry:      {info['address']} ({'healthy' if info['healthy'] else 'NOT ANSWERING'})")
    say(f"repositories:  {info['repositories']}")
    say(f"disk use:      {human(info['disk_bytes'])}")
    say(f"retention:     images of the last {info['keep_releases']} releases of each app")
    _say_mirror(info["mirror"])


def _say_mirror(mirror: dict[str, Any]) -> None:
    if not mirror["enabled"]:
        say("mirror:        off (`mypaas registry mirror enable`)")
        return
    health = "healthy" if mirror["healthy"] else "NOT ANSWERING"
    cached = human(mirror["disk_bytes"])
    say(f"mirror:        {mirror['address']} ({health}) caching {mirror['upstream']}, {cached}")


@registry_app.command("gc")
def gc(as_json: JsonOpt = False) -> None:
    """Collect unreferenced blobs. The registry is read-only meanwhile: pulls work, pushes wait."""
    with api() as client:
        info = client.registry_gc()
    if as_json:
        print_json(info)
        return
    freed, disk = human(info["freed_bytes"]), human(info["disk_bytes"])
    say(f"freed {freed} ({info['blobs_deleted']} blobs); disk use {disk}")


mirror_app = typer.Typer(
    help="A pull-through cache of an upstream registry (Docker Hub by default).", no_args_is_help=True
)
registry_app.add_typer(mirror_app, name="mirror")


@mirror_app.command("enable")
def enable_mirror(
    upstream: Annotated[str, typer.Option("--upstream", help="The registry to mirror.")] = DOCKER_HUB,
    as_json: JsonOpt = False,
) -> None:
    """Run the mirror and make the Docker engine pull through it (registry-mirrors)."""
    with api() as client:
        info = client.enable_mirror(upstream)
    print_json(info) if as_json else _say_mirror(info)


@mirror_app.command("disable")
def disable_mirror(as_json: JsonOpt = False) -> None:
    """Stop pulling through the mirror and stop it; its cache stays on disk for next time."""
    with api() as client:
        info = client.disable_mirror()
    print_json(info) if as_json else _say_mirror(info)


def list_images(
    repository: Annotated[str | None, typer.Argument(metavar="[REPO]", help="Only this repository.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Repositories, tags, digests and sizes in the private registry."""
    with api() as client:
        rows = client.images(repository)
    if as_json:
        print_json(rows)
        return
    table(
        ["REPOSITORY", "TAG", "DIGEST", "SIZE"],
        [[r["repository"], r["tag"], r["digest"][:19], human(r["size"])] for r in rows],
        empty=f"no images in {repository}" if repository else "no images",
    )


def remove_image(ref: Annotated[str, typer.Argument(metavar="REPO:TAG", help="The tag to delete.")]) -> None:
    """Delete REPO:TAG from the registry; its space comes back at the next `mypaas registry gc`."""
    with api() as client:
        done = client.remove_image(ref)
    say(f"deleted {done['repository']}:{done['tag']} ({done['digest'][:19]})")
