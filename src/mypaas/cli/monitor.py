"""Monitor commands: `events` (the event log, followed with -f) and `metrics` (an app's figures over
time); `top` (a live view of apps and the host) is in top.py."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.output import print_json, say, table
from mypaas.cli.params import AppArg, JsonOpt, api

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

FOLLOW_WAIT_S = 25.0
REQUESTS_SPAN_S = 60.0  # `metrics` shows the router's figures of the last minute
TREND_POINTS = 24  # `metrics` draws the CPU trend of the newest points, one character each
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
    """Show an app's figures over time, per service and in all.

    CPU (with its trend), memory and its limit; network and disk I/O per second and restarts; and
    the requests the router answered for the app over the last minute: per second, the % of 5xx
    errors, the mean and p95 latency. With --json: every point.

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
    series = [(svc, points) for svc, points in sorted(data["services"].items()) if points]
    if series and data["total"]:
        series.append(("(all)", data["total"]))
    if not series and not requests:
        say(f"no metrics for {name} in the last {since} yet")
        return
    if series:
        table(["SERVICE", "INST", "CPU", "CPU TREND", "MEM", "LIMIT"], [_load_row(*s) for s in series])
        say("")
        table(
            ["SERVICE", "NET IN", "NET OUT", "DISK READ", "DISK WRITE", "RESTARTS"],
            [_io_row(*s) for s in series],
        )
    if requests:
        rps, errors, mean, p95 = _request_columns(requests)
        say("" if series else f"no instance figures for {name} in the last {since}")
        say("requests (the router's figures of the app, last minute):")
        say(f"  {rps}/s, {errors} errors (5xx), latency mean {mean}, p95 {p95}")


def _load_row(service: str, points: list[dict[str, Any]]) -> list[Any]:
    """The newest point's figures, and the CPU trend over the last TREND_POINTS points."""
    last = points[-1]
    return [
        service,
        int(last["instances"]),
        f"{last['cpu_pct']:.1f}%",
        sparkline([p["cpu_pct"] for p in points][-TREND_POINTS:]),
        size(last["mem_bytes"]),
        size(last["mem_limit"]) if last["mem_limit"] else "-",
    ]


def _io_row(service: str, points: list[dict[str, Any]]) -> list[Any]:
    last = points[-1]
    rates = ("rx_rate", "tx_rate", "read_rate", "write_rate")
    return [service, *(f"{size(last[key])}/s" for key in rates), int(last["restarts"])]


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
    p95 = max((p["latency_p95_ms"] for p in timed if p["latency_p95_ms"] is not None), default=None)

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"

    return [
        f"{sum(p['rps'] for p in recent) / len(recent):.1f}",
        f"{100 * errors / requests:.1f}%" if requests else "-",
        ms(mean),
        ms(p95),
    ]
