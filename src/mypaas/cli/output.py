"""How the CLI shows things: tables (rich), JSON, one-line errors, and operations followed with a spinner."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from mypaas.states import OperationStatus

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

POLL_WITH_SPINNER_S = 2.0  # refresh "waiting for web: 1/2 ready" this often


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr and exit 1."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def say(message: str) -> None:
    print(message, flush=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "") -> None:
    """A plain docker-style table on stdout (no borders); wide enough not to wrap when piped. Without
    rows, the line ``empty`` says so ("no apps") instead of a lone header."""
    if not rows and empty:
        say(empty)
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in columns:
        grid.add_column(column, no_wrap=column != columns[-1], overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    if sys.stdout.isatty():
        Console(emoji=False, highlight=False).print(grid, markup=False)
        return
    console = Console(emoji=False, highlight=False, width=4096, file=io.StringIO())
    with console.capture() as captured:
        console.print(grid, markup=False, crop=False)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def ago(timestamp: float | None) -> str:
    """A Unix time as '12s ago', '5m ago', '3h ago' or '2d ago'."""
    if not timestamp:
        return ""
    seconds = max(0, int(time.time() - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def version(value: int | None) -> str:
    return "" if value is None else f"v{value}"


# -- following an operation -----------------------------------------------------------------------


def follow(client: ApiClient, op: dict[str, Any], title: str) -> dict[str, Any]:
    """Wait for the operation, streaming its log to stderr (a spinner on a terminal); exit 1 if it failed."""
    try:
        if sys.stderr.isatty():
            done = _follow_with_spinner(client, op, title)
        else:
            done = client.wait_operation(op["id"], _plain_log)
    except KeyboardInterrupt:
        print(f"stopped following; the {op.get('kind')} goes on (operation {op.get('id')})", file=sys.stderr)
        raise typer.Exit(130) from None
    if done.get("status") != OperationStatus.SUCCEEDED:
        fail(done.get("message") or f"{done.get('kind', 'operation')} {done.get('id')} failed")
    return done


def _plain_log(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def _follow_with_spinner(client: ApiClient, op: dict[str, Any], title: str) -> dict[str, Any]:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, emoji=False, highlight=False)
    app = op.get("app") or ""
    with console.status(escape(f"{title}…")) as status:

        def on_log(text: str) -> None:
            for line in text.splitlines():
                console.print(line, markup=False, highlight=False, soft_wrap=True)

        def on_poll(current: dict[str, Any]) -> None:
            status.update(escape(progress_line(client, app, title, current)))

        return client.wait_operation(op["id"], on_log, on_poll=on_poll, poll_s=POLL_WITH_SPINNER_S)


def progress_line(client: ApiClient, app: str, title: str, op: dict[str, Any]) -> str:
    """The spinner's text, e.g. 'deploying hello v3… waiting for web: 1/2 ready'."""
    from mypaas.errors import MyPaasError

    head = f"{title} {version(op.get('release'))}".rstrip() + "…"
    if op.get("status") == OperationStatus.BUILDING:
        return f"{head} building"
    if not app:
        return head
    try:
        waiting = client.app(app).get("waiting") or []
    except MyPaasError:  # gone meanwhile (a removal, a failed first deploy): the next poll says how it ended
        return head
    return f"{head} waiting for {'; '.join(waiting)}" if waiting else head


def run_operation(
    client: ApiClient,
    op: dict[str, Any],
    title: str,
    no_wait: bool,
    done_message: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """Follow ``op`` unless ``no_wait``; then print one line saying how it ended."""
    if no_wait:
        say(f"{op.get('app')}: {op.get('kind')} accepted (operation {op.get('id')})")
        return
    done = follow(client, op, title)
    say(
        done_message(done)
        if done_message
        else done.get("message") or f"{op.get('app')}: {op.get('kind')} done"
    )
