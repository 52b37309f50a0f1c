"""`logs` without the health probes' lines: the probes' User-Agent and the per-instance tail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from mypaas import __version__
from mypaas.errors import NotFound
from mypaas.manager.applogs import (
    follow_app,
    is_probe_line,
    last_per_instance,
    tail_without_probes,
    without_probes,
)
from mypaas.monitor.health import PROBE_AGENT, http_probe


def test_http_probes_send_the_mypaas_probe_user_agent() -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("User-Agent"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert http_probe(f"127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == [PROBE_AGENT] == [f"MyPaas-probe/{__version__}"]
    assert is_probe_line(f'"GET / HTTP/1.1" 200 "{PROBE_AGENT}"')


def test_tail_keeps_the_last_lines_of_each_instance_after_the_probe_lines_go() -> None:
    probe = f"GET / {PROBE_AGENT}"
    lines = ["a | 1", "b | 1", f"a | {probe}", "a | 2", "b | 2", "a | 3", f"b | {probe}", "loose"]

    kept = last_per_instance(without_probes(lines), 2)

    assert kept == ["b | 1", "a | 2", "b | 2", "a | 3", "loose"]


def test_tail_reads_the_end_of_the_log_in_growing_windows() -> None:
    """--tail 2 on a long log mostly of probe lines: a few windows from the end, never the whole log."""
    probe = f"GET / {PROBE_AGENT}"
    log = ["a | old 1", "a | old 2", "b | only", *[f"a | {probe}"] * 1000, "a | new"]
    log += [f"a | {probe}"] * 300
    asked: list[int] = []

    def read(window: int) -> list[str]:
        asked.append(window)
        a = [line for line in log if line.startswith("a | ")][-window:]
        return [line for line in log if line.startswith("b | ")][-window:] + a

    assert tail_without_probes(read, 2) == ["b | only", "a | old 2", "a | new"]
    assert asked == [200, 800, 3200]  # the last read the whole log: fewer lines than asked

    asked.clear()
    assert tail_without_probes(read, 1) == ["b | only", "a | new"]
    assert asked == [200, 800]  # 'new' is 301 lines from the end


def test_following_an_app_takes_in_the_instances_that_start_later() -> None:
    """`logs -f` across a restart: the new instance's lines come too (they did not: the stream stayed
    on the instances it began with)."""
    stop = threading.Event()
    running = ["old"]
    logs = {"old": ["old | before restart"], "new": ["new | after restart"]}
    opened: list[tuple[list[str], int | None]] = []

    def open_logs(ids: list[str], tail: int | None) -> Iterator[str]:
        opened.append((ids, tail))
        for i in ids:
            yield from logs[i]
        stop.wait()  # following: nothing more until the end

    stream = follow_app(open_logs, lambda: list(running), ["old"], 5, stop, relist_s=0)
    assert next(stream) == "old | before restart"
    running[:] = ["new"]  # restarted: the old instance is gone, a new one runs
    assert next(stream) == "new | after restart"
    stop.set()
    assert list(stream) == []
    assert opened == [(["old"], 5), (["new"], None)]  # the new one from its start


def test_following_ends_when_the_app_is_gone() -> None:
    def gone() -> list[str]:
        raise NotFound("no app named 'shop'", field="app")

    stop = threading.Event()
    assert list(follow_app(lambda _ids, _tail: iter(()), gone, [], None, stop, relist_s=0)) == []
