"""An app's log lines as `logs` shows them: without the lines MyPaas's own health probes leave in an
app's access log (each names the probe's User-Agent), unless asked for.

The engine prefixes each line with its instance's name (``name | text``); ``--tail N`` means the last N
lines of each instance that are left after the probe lines are taken out, read from the end of the log
in growing windows (not the whole log of a long-lived app: a probe line every few seconds adds up).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from mypaas.errors import MyPaasError
from mypaas.monitor.health import PROBE_AGENT_NAME

_MARK = f"{PROBE_AGENT_NAME}/"


def is_probe_line(line: str) -> bool:
    """Did one of MyPaas's HTTP probes leave this line (its User-Agent is in it)?"""
    return _MARK in line


def without_probes(lines: Iterable[str]) -> Iterator[str]:
    return (line for line in lines if not is_probe_line(line))


def last_per_instance(lines: Iterable[str], tail: int) -> list[str]:
    """The last ``tail`` lines of each instance (by the engine's ``name | `` prefix), in their order."""
    kept: dict[str, deque[tuple[int, str]]] = {}
    for n, line in enumerate(lines):
        name, sep, _ = line.partition(" | ")
        kept.setdefault(name if sep else "", deque(maxlen=tail)).append((n, line))
    return [line for _, line in sorted(pair for rows in kept.values() for pair in rows)]


FIRST_WINDOW = 200  # lines per instance read first for --tail N: at least 4 N


def tail_without_probes(read: Callable[[int], Iterable[str]], tail: int) -> list[str]:
    """The last ``tail`` lines of each instance that are not probe lines; ``read(n)`` gives the last
    ``n`` lines of each instance. The window grows until each instance has ``tail`` lines left or its
    whole log was read (fewer lines than asked)."""
    window = max(FIRST_WINDOW, 4 * tail)
    while True:
        lines = list(read(window))
        read_per: dict[str, int] = {}
        kept_per: dict[str, int] = {}
        for line in lines:
            name, sep, _ = line.partition(" | ")
            key = name if sep else ""
            read_per[key] = read_per.get(key, 0) + 1
            kept_per[key] = kept_per.get(key, 0) + (not is_probe_line(line))
        if all(n < window or kept_per[key] >= tail for key, n in read_per.items()):
            return last_per_instance(without_probes(lines), tail)
        window *= 4


RELIST_S = 2.0  # how often `logs -f` looks for instances that started since


def follow_app(
    open_logs: Callable[[list[str], int | None], Iterable[str]],
    instance_ids: Callable[[], list[str]],
    first: list[str],
    tail: int | None,
    stop: threading.Event,
    relist_s: float = RELIST_S,
) -> Iterator[str]:
    """Follow the logs of the instances ``first``, and of each instance that starts later (a restart,
    a deploy, a scale, a replacement): `logs -f` follows the app, not the instances it began with.
    ``open_logs(ids, tail)`` follows some instances until ``stop``; a new instance is read from its
    start. Ends when the app is gone."""
    lines: queue.Queue[str] = queue.Queue(maxsize=10_000)
    seen: set[str] = set()

    def pump(ids: list[str], lines_tail: int | None) -> None:
        for line in open_logs(ids, lines_tail):
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    lines.put(line, timeout=0.5)
                    break
            if stop.is_set():
                return

    def start(ids: list[str], lines_tail: int | None) -> None:
        seen.update(ids)
        threading.Thread(target=pump, args=(ids, lines_tail), daemon=True, name="logs-follow").start()

    if first:
        start(first, tail)
    look_at = time.monotonic() + relist_s
    while not stop.is_set():
        with contextlib.suppress(queue.Empty):
            yield lines.get(timeout=0.25)
        if time.monotonic() >= look_at:
            try:
                new = [i for i in instance_ids() if i not in seen]
            except MyPaasError:  # the app is gone
                return
            if new:
                start(new, None)
            look_at = time.monotonic() + relist_s
