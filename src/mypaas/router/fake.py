"""An in-memory router for unit tests, behind the same Router protocol as router/caddy.py.

It serves nothing: a ``FakeRouterProcess`` keeps whether the "router process" runs and the routes it
serves; each ``FakeRouter`` drives one, as each CaddyRouter drives the Caddy on its admin address (two
objects over one process are a manager that restarted and adopts the running router).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mypaas.errors import BackendError
from mypaas.router.config import Route, served
from mypaas.router.haproxy_config import Counters


@dataclass
class FakeRouterProcess:
    """The router process: whether it runs, what it serves, and how often it was started."""

    running: bool = False
    routes: tuple[Route, ...] = ()
    starts: int = 0
    counters: dict[str, Counters] | None = None  # per-app counters, for a router that keeps them


class FakeRouter:
    def __init__(self, *, running: bool = True, process: FakeRouterProcess | None = None) -> None:
        self.process = process if process is not None else FakeRouterProcess(running=running)
        self.pushes = 0
        self._pushed: tuple[Route, ...] | None = None  # what this object last pushed, if still valid

    @property
    def routes(self) -> tuple[Route, ...]:
        """What the router serves now (as ``config.served`` gives it)."""
        return self.process.routes

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def starts(self) -> int:
        return self.process.starts

    def apply(self, routes: Sequence[Route]) -> bool:
        config = served(routes)
        if config == self._pushed:
            return False
        self._pushed = None  # a failed push must be retried by the next apply
        if not self.process.running:
            raise BackendError("router: the fake router is unreachable (not running)")
        self.process.routes = config
        self._pushed = config
        self.pushes += 1
        return True

    def healthy(self) -> bool:
        return self.process.running

    def ensure_running(self) -> None:
        self._pushed = None  # adopted or started, its routes are unknown: the next apply pushes
        if not self.process.running:
            self.process.running = True
            self.process.routes = ()  # a new process starts with no app routes
            self.process.starts += 1

    def stop(self) -> None:
        self._pushed = None
        self.process.running = False
        self.process.routes = ()

    def request_counters(self) -> dict[str, Counters] | None:
        return (
            dict(self.process.counters)
            if self.process.running and self.process.counters is not None
            else None
        )

    def close(self) -> None:
        return None  # the process keeps running

    def upstreams(self, app: str) -> tuple[str, ...]:
        """The addresses routed for ``app`` (empty when it has no route)."""
        return next((r.upstreams for r in self.process.routes if r.app == app), ())
