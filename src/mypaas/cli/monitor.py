"""Monitor commands: `events` (the event log, followed with -f), `metrics` (an app's figures over time)
and `top` (a live view of apps and the host)."""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.output import print_json, say, table
from mypaas.cli.params import AppArg, JsonOpt, api

if TYPE_CHECKING:
    from rich.console import RenderableType

    from mypaas.cli.client import ApiClient

FOLLOW_WAIT_S = 25.0
REQUESTS_SPAN_S = 60.0  # `metrics` shows the router's figures of the last minute
_BARS = "▁▂▃▄▅▆▇█"

SinceOpt = Annotated[str, typer.Option("--since", help="How far back: 30s, 15m, 1h, 7d.")]


def _event_line(e: dict[str, Any]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"]))
    return f"{stamp}  {e['app'] or '(platform)':<16} {e['kind']:<20} {e['message']}"


def events(
    app: Annotated[str | None, typer.Argument(metavar="[APP]", help="Only this app's events.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="How far back: 30s, 15m, 1h, 7d.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many past events.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show the event log of an app, or of the whole platform.

    Deploys, releases, scale and config changes, readiness changes, exits, restarts and OOM kills.

    Examples:

      mypaas events hello --since 1h
      mypaas events -f
    """
    with api() as client:
        found = client.events(app=app, since=since, limit=limit)
        if as_json and not follow:
            print_json(found)
            return
        _print_events(found, as_json)
        if not follow:
            if not found:
                say("no events")
            return
        after = found[-1]["id"] if found else _last_id(client)
        try:
            while True:
                found = client.events(app=app, after=after, wait=FOLLOW_WAIT_S, limit=1000)
                _print_events(found, as_json)
                if found:
                    after = found[-1]["id"]
        except KeyboardInterrupt:
            return


def _last_id(client: ApiClient) -> int:
    newest = client.events(limit=1)
    return int(newest[-1]["id"]) if newest else 0


def _print_events(found: list[dict[str, Any]], as_json: bool) -> None:
    for e in found:
        say(json.dumps(e) if as_json else _event_line(e))


def sparkline(values: list[float]) -> str:
    """Values as a line of block characters, scaled from 0 to their maximum."""
    top = max(values, default=0.0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] for v in values)


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}GB"


def metrics(name: AppArg, since: SinceOpt = "1h", as_json: JsonOpt = False) -> None:
    """Show an app's CPU, memory, network and disk figures over time, per service, and the requests
    the router answered for it over the last minute: per second, the % of 5xx errors, the mean and
    p95 latency (--json: every point).

    Examples:

      mypaas metrics hello
      mypaas metrics hello --since 6h --json
    """
    with api() as client:
        data = client.app_metrics(name, since)
    if as_json:
        print_json(data)
        return
    requests = data.get("requests") or []
    rows = []
    for svc, points in [*sorted(data["services"].items()), ("(all)", data["total"])]:
        if not points and not (svc == "(all)" and requests):
            continue
        rows.append([svc, *_instance_columns(points), *_request_columns(requests if svc == "(all)" else [])])
    if not rows:
        say(f"no metrics for {name} in the last {since} yet")
        return
    columns = ["SERVICE", "INST", "CPU", "CPU TREND", "MEM", "LIMIT", "NET IN", "NET OUT", "READ", "WRITE"]
    table([*columns, "RESTARTS", "REQ/S", "ERRORS", "LATENCY", "P95"], rows)
    if requests:
        say("REQ/S, ERRORS (5xx), LATENCY (mean) and P95: the router's figures of the app, last minute")


def _instance_columns(points: list[dict[str, Any]]) -> list[Any]:
    """The newest point's figures (the CPU trend over the last 30 points)."""
    if not points:
        return [0, *["-"] * 9]
    last = points[-1]
    return [
        int(last["instances"]),
        f"{last['cpu_pct']:.1f}%",
        sparkline([p["cpu_pct"] for p in points][-30:]),
        size(last["mem_bytes"]),
        size(last["mem_limit"]) if last["mem_limit"] else "-",
        f"{size(last['rx_rate'])}/s",
        f"{size(last['tx_rate'])}/s",
        f"{size(last['read_rate'])}/s",
        f"{size(last['write_rate'])}/s",
        int(last["restarts"]),
    ]


def _request_columns(points: list[dict[str, Any]]) -> list[str]:
    """The router's figures over the last minute of ``points``: requests/s, the % of them that were
    5xx, the mean latency and the highest p95. The router counts per app: service rows show "-"."""
    if not points:
        return ["-"] * 4
    recent = [p for p in points if p["at"] > points[-1]["at"] - REQUESTS_SPAN_S]
    requests = sum(p["requests"] for p in recent)
    errors = sum(p["errors"] for p in recent)
    timed = [p for p in recent if p["requests"] and p["latency_ms"] is not None]
    mean = (
        sum(p["latency_ms"] * p["requests"] for p in timed) / sum(p["requests"] for p in timed)
        if timed
        else None
    )
    p95 = max((p["latency_p95_ms"] for p in timed), default=None)

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"

    return [
        f"{sum(p['rps'] for p in recent) / len(recent):.1f}",
        f"{100 * errors / requests:.1f}%" if requests else "-",
        ms(mean),
        ms(p95),
    ]


def top(
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 2.0,
) -> None:
    """A live view of every app's CPU, memory, network and requests (the router's requests/s, error %
    and p95 latency), of this machine and, on a cluster, of every host (Ctrl-C to quit)."""
    from rich.console import Console
    from rich.live import Live

    console = Console(width=None if sys.stdout.isatty() else 120)
    with api() as client:
        if once:
            console.print(_frame(client.metrics_now()))
            return
        try:
            with Live(_frame(client.metrics_now()), console=console, screen=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(_frame(client.metrics_now()))
        except KeyboardInterrupt:
            return


def _frame(now: dict[str, Any]) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    host = now.get("host") or {}
    header = Text(
        f"host  cpu {host.get('cpu_pct', 0):.1f}%  mem {size(host.get('mem_bytes', 0))}"
        f"/{size(host.get('mem_limit') or 0)}  net in {size(host.get('rx_rate', 0))}/s"
        f" out {size(host.get('tx_rate', 0))}/s   every {now.get('interval_s', 0):g}s"
    )
    apps: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for inst in now.get("instances", []):
        figures = apps[inst["app"]]
        figures["instances"] += 1
        for key in ("cpu_pct", "mem_bytes", "rx_rate", "tx_rate", "read_rate", "write_rate", "restarts"):
            figures[key] += inst[key] or 0
    requests: dict[str, dict[str, Any]] = now.get("requests") or {}
    grid = Table(box=None, pad_edge=False)
    columns = (
        "APP",
        "INST",
        "CPU",
        "MEM",
        "NET IN",
        "NET OUT",
        "DISK R/W",
        "RESTARTS",
        "REQ/S",
        "ERR",
        "P95",
    )
    for column in columns:
        grid.add_column(column, justify="left" if column == "APP" else "right")
    for app, f in sorted(apps.items(), key=lambda item: -item[1]["cpu_pct"]):
        r = requests.get(app) or {}
        grid.add_row(
            app,
            str(int(f["instances"])),
            f"{f['cpu_pct']:.1f}%",
            size(f["mem_bytes"]),
            f"{size(f['rx_rate'])}/s",
            f"{size(f['tx_rate'])}/s",
            f"{size(f['read_rate'])}/{size(f['write_rate'])}",
            str(int(f["restarts"])),
            f"{r['rps']:.1f}" if r else "-",
            f"{r['error_pct']:.1f}%" if r.get("error_pct") is not None else "-",
            f"{r['latency_p95_ms']:.0f}ms" if r.get("latency_p95_ms") is not None else "-",
        )
    hosts = now.get("hosts") or []
    if not hosts:
        return Group(header, grid)
    return Group(header, grid, Text(""), _hosts_table(hosts))


def _hosts_table(hosts: list[dict[str, Any]]) -> RenderableType:
    from rich.table import Table

    machines = Table(box=None, pad_edge=False)
    for column in ("HOST", "STATE", "INST", "CPUS", "MEM", "MEM USED", "DISK USED"):
        machines.add_column(column, justify="left" if column in ("HOST", "STATE") else "right")
    for h in hosts:
        machines.add_row(
            h["name"],
            h["state"],
            str(h["instances"]),
            str(h["cpus"] or "-"),
            size(h["memory_bytes"] or 0) if h["memory_bytes"] else "-",
            f"{h['mem_pct']:.0f}%" if h["mem_pct"] is not None else "-",
            f"{h['disk_pct']:.0f}%" if h["disk_pct"] is not None else "-",
        )
    return machines
