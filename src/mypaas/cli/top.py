"""`mypaas top`: a live view of every app (its state, CPU, memory, I/O and the router's figures), of this
machine and, on a cluster, of every host; one table on a wide terminal, two that fit 80 columns else."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.monitor import size
from mypaas.cli.params import api

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    from mypaas.cli.client import ApiClient

PIPED_WIDTH = 80  # the width of a frame printed to a file or a pipe
_SUMMED = ("cpu_pct", "mem_bytes", "rx_rate", "tx_rate", "read_rate", "write_rate", "restarts")
_LOAD = ("INST", "CPU", "MEM", "RESTARTS", "REQ/S", "ERR", "P95")
_IO = ("NET IN", "NET OUT", "DISK READ", "DISK WRITE")


def top(
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            min=0.5,
            metavar="SECONDS",
            help="Seconds between refreshes (default: as often as the platform samples, every 5s "
            "unless its setting metrics_interval_s says otherwise).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A live view of every app, of this machine and, on a cluster, of every host.

    Per app: its state, instances, CPU, memory, restarts, the router's requests per second, error %
    and p95 latency, and its network and disk I/O per second. An app being deleted or stopped shows
    with its state. Ctrl-C quits.
    """
    from rich.console import Console
    from rich.live import Live

    console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
    with api() as client:
        now = _now(client)
        every = interval or float(now.get("interval_s") or 5.0)
        if once:
            console.print(frame(now, console.width, every))
            return
        try:
            with Live(frame(now, console.width, every), console=console, screen=False) as live:
                while True:
                    time.sleep(every)
                    live.update(frame(_now(client), console.width, every))
        except KeyboardInterrupt:
            return


def _now(client: ApiClient) -> dict[str, Any]:
    """The newest figures, with the apps' states (an app with no instance shows too)."""
    return {**client.metrics_now(), "apps": client.apps()}


def frame(now: dict[str, Any], width: int, every: float) -> RenderableType:
    """One screen: the host's line, the apps (one table if it fits ``width``, else two), the hosts."""
    from rich.console import Console, Group
    from rich.text import Text

    host = now.get("host")
    figures = (
        f"cpu {host['cpu_pct']:.1f}%  mem {size(host['mem_bytes'])}/{size(host.get('mem_limit') or 0)}"
        f"  net in {size(host['rx_rate'])}/s out {size(host['tx_rate'])}/s"
        if host
        else "figures for platform admins only"
        if now.get("hidden")
        else "no figures yet"
    )
    header = Text(f"host  {figures}   every {every:g}s")
    rows = _app_rows(now)
    whole = _apps_table(("STATE", *_LOAD, *_IO), rows)
    measure = Console(width=10_000).measure(whole).maximum
    parts: list[RenderableType] = [header]
    if measure <= width:
        parts.append(whole)
    else:
        parts += [_apps_table(("STATE", *_LOAD), rows), Text(""), _apps_table(_IO, rows)]
    hosts = now.get("hosts") or []
    if hosts:
        parts += [Text(""), _hosts_table(hosts)]
    return Group(*parts)


def _app_rows(now: dict[str, Any]) -> list[dict[str, str]]:
    """Per app, its figures as shown, the busiest first; every app listed has a row."""
    states = {a["name"]: a.get("state") or "" for a in now.get("apps") or []}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for inst in now.get("instances", []):
        figures = sums[inst["app"]]
        figures["instances"] += 1
        for key in _SUMMED:
            figures[key] += inst[key] or 0
    requests: dict[str, dict[str, Any]] = now.get("requests") or {}
    rows = []
    for app in sorted(set(states) | set(sums), key=lambda name: (-sums[name]["cpu_pct"], name)):
        f, r = sums[app], requests.get(app) or {}
        if not f["instances"]:  # stopped, being deleted, or not started yet: no figures
            rows.append({"APP": app, "STATE": states.get(app) or "-", "INST": "0"})
            continue
        rows.append(
            {
                "APP": app,
                "STATE": states.get(app, "") or "-",
                "INST": str(int(f["instances"])),
                "CPU": f"{f['cpu_pct']:.1f}%",
                "MEM": size(f["mem_bytes"]),
                "RESTARTS": str(int(f["restarts"])),
                "REQ/S": f"{r['rps']:.1f}" if r else "-",
                "ERR": f"{r['error_pct']:.1f}%" if r.get("error_pct") is not None else "-",
                "P95": f"{r['latency_p95_ms']:.0f}ms" if r.get("latency_p95_ms") is not None else "-",
                "NET IN": f"{size(f['rx_rate'])}/s",
                "NET OUT": f"{size(f['tx_rate'])}/s",
                "DISK READ": f"{size(f['read_rate'])}/s",
                "DISK WRITE": f"{size(f['write_rate'])}/s",
            }
        )
    return rows


def _apps_table(columns: tuple[str, ...], rows: list[dict[str, str]]) -> Table:
    from rich.table import Table

    grid = Table(box=None, pad_edge=False)
    for column in ("APP", *columns):
        grid.add_column(column, justify="left" if column in ("APP", "STATE") else "right", no_wrap=True)
    for row in rows:
        grid.add_row(row["APP"], *(row.get(column, "-") for column in columns))
    return grid


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
