"""Autoscaling and alert commands: `autoscale APP [SERVICE]` (set, --off, or list) and
`alerts add|rm|ls`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mypaas.cli.groups import ListByDefault
from mypaas.cli.output import fail, print_json, say, table
from mypaas.cli.params import AppArg, JsonOpt, api
from mypaas.states import ALERT_KINDS, THRESHOLD_KINDS, AlertKind

RuleName = Annotated[str, typer.Argument(metavar="NAME", help="The rule's name.", show_default=False)]
ServiceArg = Annotated[
    str | None, typer.Argument(metavar="[SERVICE]", help="The service (default: list the policies).")
]


def _target(p: dict[str, Any]) -> str:
    parts = []
    if p.get("target_cpu_pct") is not None:
        parts.append(f"cpu {p['target_cpu_pct']:g}%")
    if p.get("target_rps_per_replica") is not None:
        parts.append(f"{p['target_rps_per_replica']:g} req/s per replica")
    return ", ".join(parts)


def _cooldowns(text: str) -> tuple[float, float]:
    up, _, down = text.partition("/")
    try:
        return float(up), float(down or up)
    except ValueError:
        fail(f"invalid --cooldown {text!r}: use seconds, e.g. 30/120 (up/down) or 60")


def autoscale(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    app: AppArg,
    service: ServiceArg = None,
    min_: Annotated[int | None, typer.Option("--min", help="Fewest replicas (default 1).")] = None,
    max_: Annotated[int | None, typer.Option("--max", help="Most replicas.")] = None,
    cpu: Annotated[
        float | None, typer.Option("--cpu", help="Target CPU per replica, in % of one core.")
    ] = None,
    rps: Annotated[
        float | None,
        typer.Option("--rps", help="Target requests per second per replica (the routed service)."),
    ] = None,
    cooldown: Annotated[
        str, typer.Option("--cooldown", metavar="UP[/DOWN]", help="Seconds between changes: up, then down.")
    ] = "30/120",
    off: Annotated[bool, typer.Option("--off", help="Stop autoscaling the service.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Scale a service between --min and --max replicas to keep its CPU near --cpu and/or its
    requests per second per replica near --rps (from the router's access log).

    Scales up in proportion to the load (the larger count when both targets are set), down one
    replica at a time, with cooldowns; each change is a scale of the app (see `mypaas events`).
    Without SERVICE, lists the app's policies (so does `mypaas autoscale ls APP`).

    Examples:

      mypaas autoscale hello web --min 1 --max 5 --cpu 50 --cooldown 30/120
      mypaas autoscale hello web --max 8 --rps 100
      mypaas autoscale hello web --off
      mypaas autoscale hello --json
    """
    if app == "ls" and service is not None and max_ is None and not off:  # `autoscale ls APP` lists too
        app, service = service, None
    with api() as client:
        if service is not None and off:
            client.remove_autoscale(app, service)
            say(f"{app}/{service}: autoscaling off")
            return
        if service is not None and max_ is not None:
            up, down = _cooldowns(cooldown)
            policy = {
                "min": 1 if min_ is None else min_,
                "max": max_,
                "target_cpu_pct": cpu,
                "target_rps_per_replica": rps,
                "cooldown_up_s": up,
                "cooldown_down_s": down,
            }
            _show_policy(app, service, client.set_autoscale(app, service, policy), as_json)
            return
        if service is not None or any(v is not None for v in (min_, cpu, rps)) or off:
            fail(
                "give SERVICE with --max (and --cpu or --rps) to set a policy, or SERVICE --off to remove it"
            )
        _list_policies(client.autoscale_policies(app), as_json)


def _watches(rule: dict[str, Any], app: str) -> bool:
    """Whether the rule is about ``app``: its own, or about every app (not the platform's hosts)."""
    if rule["app"] is None:
        return bool(rule["kind"] != AlertKind.HOST_UNREACHABLE)
    return bool(rule["app"] == app)


def _show_policy(app: str, service: str, saved: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(saved)
    else:
        span = f"{saved['min_replicas']}..{saved['max_replicas']}"
        say(f"{app}/{service}: {span} replicas, {_target(saved)}")


def _list_policies(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    table(
        ["SERVICE", "MIN", "MAX", "TARGET", "COOLDOWN UP/DOWN"],
        [
            (
                p["service"],
                p["min_replicas"],
                p["max_replicas"],
                _target(p),
                f"{p['cooldown_up_s']:g}s/{p['cooldown_down_s']:g}s",
            )
            for p in found
        ],
        empty="no autoscale policies",
    )


_KINDS_HELP = "\n".join(f"  {kind:<18}{what}" for kind, what in ALERT_KINDS.items())
alerts_app = typer.Typer(
    cls=ListByDefault,
    help=f"""Alert rules: a JSON POST to a webhook when a rule fires, and when it resolves.

Kinds (--kind):

{_KINDS_HELP}""",
    no_args_is_help=True,
)


@alerts_app.command("add", no_args_is_help=True)
def add(
    name: RuleName,
    kind: Annotated[
        str, typer.Option("--kind", "-k", help=" | ".join(AlertKind) + " (see `mypaas alerts --help`).")
    ],
    webhook: Annotated[str, typer.Option("--webhook", "-w", help="The URL that receives the JSON POST.")],
    app: Annotated[str | None, typer.Option("--app", "-a", help="Only this app (default: all).")] = None,
    threshold: Annotated[
        float,
        typer.Option("--threshold", "-t", help=f"{', '.join(sorted(THRESHOLD_KINDS))}: the % to go over."),
    ] = 0.0,
    for_s: Annotated[
        float, typer.Option("--for", help="Seconds the condition must hold before it fires.")
    ] = 0.0,
    allow_private: Annotated[
        bool,
        typer.Option(
            "--allow-private",
            help="The webhook may be on a private network (10/8, 172.16/12, 192.168/16, fc00::/7); "
            "a platform admin only. Loopback, link-local (cloud metadata) and the platform's own ports "
            "stay refused.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add an alert rule.

    Examples:

      mypaas alerts add hello-down --kind app_down --app hello --for 30 \\
          --webhook http://hooks.example/x
      mypaas alerts add mem --kind memory_pct --threshold 90 --for 60 \\
          --webhook http://hooks.example/x
    """
    body = {
        "name": name,
        "kind": kind,
        "webhook": webhook,
        "app": app,
        "threshold": threshold,
        "for_s": for_s,
    }
    if allow_private:  # only when asked: the body stays what it was for servers before the flag
        body["allow_private"] = True
    with api() as client:
        rule = client.add_alert(body)
    if as_json:
        print_json(rule)
        return
    say(f"alert {rule['name']} added")
    if not rule.get("has_data", True):
        say(f"note: {kind} has no data source: it never fires")


@alerts_app.command("rm", no_args_is_help=True)
def rm(name: RuleName) -> None:
    """Remove an alert rule."""
    with api() as client:
        client.remove_alert(name)
    say(f"alert {name} removed")


@alerts_app.command("ls")
def ls(
    app: Annotated[
        str | None,
        typer.Argument(metavar="[APP]", help="Only the rules that watch this app.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the alert rules and what each is firing for now.

    `mypaas alerts APP` lists those that watch the app: its own, and those about every app.
    """
    with api() as client:
        if app is not None:
            client.app(app)  # an unknown app is an error (with the close name), not an empty list
        rules = [r for r in client.alerts() if app is None or _watches(r, app)]
    if as_json:
        print_json(rules)
        return
    table(
        ["NAME", "KIND", "APP", "THRESHOLD", "FOR", "FIRING", "WEBHOOK"],
        [
            (
                r["name"],
                r["kind"],
                r["app"] or "(all)",
                f"{r['threshold']:g}" if r["kind"] in THRESHOLD_KINDS else "-",
                f"{r['for_s']:g}s",
                ", ".join(t or "(platform)" for t in r["firing"]) or "-",
                r["webhook"],
            )
            for r in rules
        ],
        empty="no alerts",
    )
