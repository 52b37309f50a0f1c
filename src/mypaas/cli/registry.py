"""``mypaas registry``: the private registry's state and garbage collection; ``image ls/rm`` helpers."""

from __future__ import annotations

import re
import subprocess
from typing import Annotated, Any

import typer

from mypaas.cli.output import fail, print_json, say, table
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


@registry_app.command("login")
def login(
    user: Annotated[
        str, typer.Option("--user", "-u", help="The user name docker shows (any name works).")
    ] = "mypaas",
) -> None:
    """`docker login` to the private registry with this CLI's token as the password.

    Pushes and pulls then follow the token's role: a deployer pushes to its team's apps' repositories
    (APP/...), every member pulls them and mypaas/*; only a platform admin writes mypaas/* or deletes.
    """
    from mypaas.cli.limits import NO_TOKEN

    with api() as client:
        address = client.status().get("registry")
        token = client.token
    if not address:
        fail("the private registry is turned off (setting registry_enabled)")
    if not token:
        fail(NO_TOKEN)
    try:
        done = subprocess.run(
            ["docker", "login", address, "-u", user, "--password-stdin"],
            input=token + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        fail("the docker command is not installed here: `docker login` needs it")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        fail(f"docker login {address} failed: {why}")
    say(f"logged in to {address} as {user}: docker push and pull there follow this token's role")


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
    if info.get("repositories_removed"):
        say(f"removed the repositories left with no tag: {', '.join(info['repositories_removed'])}")


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


KeepImagesOpt = Annotated[
    bool,
    typer.Option("--keep-images", help="Keep the app's repositories (APP/SERVICE) in the private registry."),
]


def list_images(
    repository: Annotated[str | None, typer.Argument(metavar="[REPO]", help="Only this repository.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Tags in the private registry, and this host's engine copy of each.

    DIGEST (registry) and SIZE (compressed) are the registry's manifest; ENGINE ID and SIZE (engine) the
    same image on this host's engine (uncompressed), blank where the engine has none.
    """
    with api() as client:
        rows = client.images(repository)
    if as_json:
        print_json(rows)
        return
    table(
        ["REPOSITORY", "TAG", "DIGEST (registry)", "SIZE (compressed)", "ENGINE ID", "SIZE (engine)"],
        [
            [
                r["repository"],
                r["tag"],
                r["digest"][:19],
                human(r["size"]),
                short_id(r.get("engine_id")),
                human(r["engine_size"]) if r.get("engine_size") is not None else "",
            ]
            for r in rows
        ],
        empty=f"no images in {repository}" if repository else "no images in the private registry",
    )


def short_id(image_id: str | None) -> str:
    """An engine image id as `docker images` shows it (12 hex digits)."""
    return (image_id or "").removeprefix("sha256:")[:12]


def remove_image(
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE...",
            help="REPO:TAG (name every tag of a manifest), REPO@sha256:DIGEST, or REPO with --all.",
            show_default=False,
        ),
    ],
    whole: Annotated[
        bool, typer.Option("--all", help="Each IMAGE is a repository: remove all its tags.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Remove it even if a live app runs it.")] = False,
    registry_only: Annotated[
        bool, typer.Option("--registry-only", help="Keep this host's engine copy.")
    ] = False,
    engine_only: Annotated[bool, typer.Option("--engine-only", help="Keep the registry's copy.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove images from the private registry and from this host's engine.

    The registry deletes a manifest with all its tags: name each of them, or its digest, or the whole
    repository with --all. The engine's images of the same names go too, so `deploy --image` no longer
    finds them. An image a live app runs is refused unless --force. Other hosts keep what they pulled.

    Examples:

      mypaas image rm uxhello/web:v1 uxhello/web:v2 uxhello/web:v3
      mypaas image rm uxhello/web@sha256:0123...
      mypaas image rm uxhello/web --all
    """
    if registry_only and engine_only:
        fail("--registry-only and --engine-only leave nothing to remove: give one of them")
    how = {"all": whole, "force": force, "registry": not engine_only, "engine": not registry_only}
    with api() as client:
        done = client.remove_images(refs, **how)
    if as_json:
        print_json(done)
        return
    _say_removed(done, registry_only=registry_only, engine_only=engine_only)


def _say_removed(done: dict[str, Any], *, registry_only: bool, engine_only: bool) -> None:
    if engine_only:
        say("registry: kept (--engine-only)")
    for m in done["registry"]:
        tags = ", ".join(tag_order(m["tags"]))
        say(
            f"registry: deleted {m['repository']}:{tags} (manifest {m['digest'][:19]}, "
            f"{human(m['size'])} compressed)"
        )
    if done["registry"]:
        say("registry: its space comes back at the next `mypaas registry gc`")
    if registry_only:
        say("engine (this host): kept (--registry-only)")
    for e in done["engine"]:
        say(f"engine (this host): removed {e['ref']} (image {short_id(e['id'])}, {human(e['size'])})")
    if not registry_only and not done["engine"]:
        say("engine (this host): had no image of these names")


def tag_order(tags: list[str]) -> list[str]:
    """Tags as a person counts them: v2 before v11 (digits compared as numbers)."""
    return sorted(
        tags, key=lambda t: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", t)]
    )


def say_app_images(app: str, images: dict[str, Any] | None) -> None:
    """What ``mypaas rm APP`` removed from the registry (None: nothing was asked)."""
    if images is None:
        return
    if images.get("error"):
        say(f"registry: {app}'s images are still there ({images['error']}); `mypaas image rm REPO --all`")
        return
    for m in images["manifests"]:
        tags = ", ".join(tag_order(m["tags"]))
        say(f"registry: deleted {m['repository']}:{tags} ({human(m['size'])} compressed)")
    if images.get("kept"):
        say(f"registry: kept {', '.join(images['kept'])} (not tagged by {app}'s releases)")
    if images.get("collecting"):
        say("registry: a garbage collection reclaims their space now")
