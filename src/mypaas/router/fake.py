"""An in-memory router for unit tests, behind the same Router protocol as router/caddy.py.

It serves nothing: it keeps the routes last applied, and whether it "runs", so tests can read both.
"""

from __future__ import annotations

from collections.abc import Sequence

from mypaas.router.config import Route


class FakeRouter:
    def __init__(self, *, running: bool = True) -> None:
        self.routes: list[Route] = []
        self.running = running
        self.pushes = 0
        self.starts = 0

    def apply(self, routes: Sequence[Route]) -> bool:
        new = list(routes)
        if self.running and new == self.routes and self.pushes:
            return False
        self.routes = new
        self.pushes += 1
        return True

    def healthy(self) -> bool:
        return self.running

    def ensure_running(self) -> None:
        if not self.running:
            self.running = True
            self.starts += 1
        self.pushes = 0  # adopted or started: the next apply pushes its routes again

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        return None

    def upstreams(self, app: str) -> tuple[str, ...]:
        """The addresses routed for ``app`` (empty when it has no route)."""
        return next((r.upstreams for r in self.routes if r.app == app), ())
