"""`mypaas export` and `mypaas apply`: the platform as one reviewable file (or an app as Kubernetes
manifests), and a file applied back after showing the diff, as `terraform plan` shows it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mypaas.cli.output import fail, print_json, say
from mypaas.cli.params import JsonOpt, api

COLORS = {"+": "green", "~": "yellow", "-": "red"}


def export(
    apps: Annotated[list[str] | None, typer.Argument(metavar="[APP]...", help="Only these apps.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE, not stdout.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="mypaas (the platform file) or kubernetes (one app).")
    ] = "mypaas",
    include_secrets: Annotated[
        bool, typer.Option("--include-secrets", help="kubernetes: write the secrets' values.")
    ] = False,
) -> None:
    """Write the platform (or some apps) as one YAML file that `mypaas apply` reads back.

    The file holds each app's spec (its compose file as the platform normalised it), scale per service,
    config vars, the secrets it needs by name (never their values), domains and autoscaling, then the
    alert rules and the hosts' labels. The order is fixed: diff two exports to see what changed.
    With --format kubernetes, one app as Kubernetes manifests (not applied to a live cluster by MyPaas).

    Examples:

      mypaas export -o platform.yml
      mypaas export shop blog > apps.yml
      mypaas export shop --format kubernetes -o shop-k8s.yml
    """
    with api() as client:
        answer = client.export_platform(list(apps or []), fmt, include_secrets)
    text = answer["document"]
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    say(f"wrote {output}")


def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="The platform file (from mypaas export).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove what the file lacks (apps, config vars, domains, ...).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff, change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the platform match a platform file: show the diff, ask, apply.

    Lines start with + (made), ~ (changed) or - (removed: only with --prune). Apps deploy through the
    same services as `mypaas deploy`, with a line per app as each rollout ends; if one fails, apply stops
    and says which app and what was already applied. Applying the same file twice says "No changes".

    Examples:

      mypaas export -o platform.yml; $EDITOR platform.yml
      mypaas apply -f platform.yml --dry-run
      mypaas apply -f platform.yml --prune --yes
    """
    try:
        document = file.read_text()
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")
    with api() as client:
        plan = client.apply_platform(document, prune=prune, dry_run=True, name=file.name)
        if as_json and (dry_run or plan["empty"]):
            print_json(plan)
            return
        if not as_json:
            _show(plan)
        if plan["empty"] or dry_run:
            return
        if not yes:
            if not sys.stdin.isatty():
                fail("apply changes the platform: confirm with --yes (stdin is not a terminal)")
            typer.confirm("Apply these changes?", abort=True)
        done = client.apply_platform(document, prune=prune, dry_run=False, name=file.name)
        failed = _follow(client, done["operations"], quiet=as_json)
    if as_json:
        print_json(done)
    if failed:
        fail(f"{failed}; already applied: {', '.join(done['applied'])}")


def _show(plan: dict[str, Any]) -> None:
    for change in plan["changes"]:
        line = f"{change['op']} {change['path']}" + (f": {change['detail']}" if change["detail"] else "")
        typer.secho(line, fg=COLORS[change["op"]])
    for path in plan["kept"]:
        typer.secho(f"  {path}: not in the file, kept (--prune removes it)", dim=True)
    if plan["empty"]:
        say("No changes: the platform matches the file.")
        return
    counts = {op: sum(1 for c in plan["changes"] if c["op"] == op) for op in "+~-"}
    say(f"Plan: {counts['+']} to add, {counts['~']} to change, {counts['-']} to remove.")


def _follow(client: Any, operations: list[dict[str, Any]], quiet: bool) -> str | None:
    """Wait for each app's last operation in turn (it follows what the earlier ones began: a later
    release supersedes an earlier one), a line for each; the first failure's message, if any."""
    last = {op.get("app"): op for op in operations}
    for op in last.values():
        done = client.wait_operation(op["id"], lambda _text: None)
        ok = done.get("status") == "succeeded"
        message = done.get("message") or f"{done.get('kind')} {'done' if ok else 'failed'}"
        if not quiet:  # "shop v3 is running", "removed blog": a message naming its app stands alone
            say(message if op.get("app") in message.split() else f"{op.get('app')}: {message}")
        if not ok:
            return f"app {op.get('app')} failed: {message}"
    return None
