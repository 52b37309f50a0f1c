"""The commands about one running app: ps, logs, scale, stop, start, restart, rm (cli/main.py registers
them in the Apps panel, in this order)."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer

from mypaas.cli import registry
from mypaas.cli.output import fail, print_json, run_operation, say, table, version
from mypaas.cli.params import AppArg, JsonOpt, NoWait, api

_SERVICE_N = re.compile(r"^([a-z0-9][a-z0-9-]*)=(\d+)\Z")


def ps(name: AppArg, as_json: JsonOpt = False) -> None:
    """List an app's instances (its running replicas)."""
    with api() as client:
        instances = client.instances(name)
        deleting = client.app(name).get("deleting") if not as_json else None
    if as_json:
        print_json(instances)
        return
    if deleting:  # on stderr: the table stays the instances
        print(deleting, file=sys.stderr)
    rows = [
        [
            i["name"],
            i["service"],
            version(i.get("release")),
            i["state"],
            "yes" if i.get("ready") else "no",
            i.get("address") or "",
        ]
        for i in instances
    ]
    headers = ["NAME", "SERVICE", "RELEASE", "STATE", "READY", "ADDRESS"]
    if any(i.get("host") for i in instances):  # on a cluster: where each one runs
        headers.append("HOST")
        for row, inst in zip(rows, instances, strict=True):
            row.append(inst.get("host") or "")
    table(headers, rows, empty="no instances")


def logs(
    name: AppArg,
    service: Annotated[
        str | None, typer.Argument(metavar="SERVICE", help="Only this service.", show_default=False)
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming new lines.")] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines of each instance.")
    ] = None,
    probes: Annotated[
        bool, typer.Option("--probes", help="Also the lines MyPaas's health probes left (MyPaas-probe/…).")
    ] = False,
) -> None:
    """Print an app's logs (all instances, or one service's).

    With -f it keeps streaming new lines until Ctrl-C. The lines MyPaas's own health checks leave in
    an access log are left out (--probes shows them).

    Examples:

      mypaas logs hello --tail 50
      mypaas logs shop web -f
    """
    try:
        with api() as client:
            for line in client.logs(name, service, tail=tail, follow=follow, probes=probes):
                sys.stdout.write(line + "\n")
                if follow:
                    sys.stdout.flush()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _service_counts(values: list[str]) -> list[str]:
    for value in values:
        if not _SERVICE_N.match(value):
            raise typer.BadParameter(f"{value!r} is not SERVICE=N (like web=3)")
    return values


def scale(
    name: AppArg,
    counts: Annotated[
        list[str],
        typer.Argument(metavar="SERVICE=N...", help="Replicas per service.", callback=_service_counts),
    ],
    no_wait: NoWait = False,
    as_json: JsonOpt = False,
) -> None:
    """Set how many replicas of each service run; says what changed ("web: 1 → 3 replicas").

    Example:  mypaas scale shop web=3 worker=0
    """
    from mypaas.cli.outcome import finish, replica_changes, replica_words

    replicas = {}
    for value in counts:
        match = _SERVICE_N.match(value)
        assert match is not None
        replicas[match[1]] = int(match[2])
    with api() as client:
        summary = client.app(name)
        changes = replica_changes(summary, replicas)
        op = client.scale(name, replicas)
        words = replica_words(changes)
        if summary.get("state") == "stopped":
            words += f"\n{name} is stopped: these counts run at `mypaas start {name}`"
        title = f"scaling {name}"
        extra = {"replicas": changes}
        finish(client, op, title, no_wait=no_wait, as_json=as_json, done_message=lambda _: words, extra=extra)
        if no_wait and not as_json:
            say(words)


def _lifecycle(name: str, action: str, title: str, no_wait: bool) -> None:
    with api() as client:
        run_operation(client, client.action(name, action), f"{title} {name}", no_wait)


def stop(name: AppArg, no_wait: NoWait = False) -> None:
    """Stop an app's instances (releases and config stay)."""
    _lifecycle(name, "stop", "stopping", no_wait)


def start(name: AppArg, no_wait: NoWait = False) -> None:
    """Start a stopped app again."""
    _lifecycle(name, "start", "starting", no_wait)


def restart(name: AppArg, no_wait: NoWait = False) -> None:
    """Replace an app's instances one by one (it keeps serving)."""
    _lifecycle(name, "restart", "restarting", no_wait)


def rm(
    name: AppArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    with_volumes: Annotated[
        bool, typer.Option("--volumes", help="Remove its named volumes (their data) too.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Finish a removal that is stuck (see `mypaas ls`).")
    ] = False,
    no_wait: NoWait = False,
    keep_images: registry.KeepImagesOpt = False,
) -> None:
    """Remove an app with its instances, releases and config.

    Its named volumes are kept unless --volumes (`mypaas volumes ls`);
    a new deploy of the same name mounts them again.
    Its images in the private registry (repositories APP/SERVICE) go too, unless --keep-images.

    Asks first, unless --yes (which scripts must pass).
    """
    from mypaas.cli.volumes import removal_line, removal_question

    if not yes and not sys.stdin.isatty():
        fail(f"removing {name} needs confirmation: pass --yes")
    with api() as client:
        if not yes:
            client.app(name)  # an unknown name is said (with the close one) before the question
        kept = [v["name"] for v in client.volumes(name)]
        if not yes and not typer.confirm(
            removal_question(name, kept, with_volumes, images=not keep_images), default=False
        ):
            fail(f"{name} not removed")
        op = client.remove(name, volumes=with_volumes, force=force, keep_images=keep_images)
        registry.say_app_images(name, op.get("images"))
        run_operation(client, op, f"removing {name}", no_wait)
    if line := removal_line(kept, with_volumes, waited=not no_wait):
        say(line)
