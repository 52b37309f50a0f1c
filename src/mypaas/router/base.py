"""The Router protocol every router driver implements (router/caddy.py, router/haproxy.py; router/fake.py
for unit tests).

A router serves every app's routes on one port. The reconcile loop calls ``apply`` on every pass (a driver
pushes only when the routes changed); the manager's supervision loop keeps the router process alive with
``healthy`` and ``ensure_running``; ``mypaas down`` calls ``stop``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mypaas.router.config import Route
from mypaas.router.haproxy_config import Counters


class Router(Protocol):
    def apply(self, routes: Sequence[Route]) -> bool:
        """Serve ``routes`` (replacing every route before); return True when a new config was pushed,
        False when the router already served these. Raise BackendError when the router refuses them."""
        ...

    def healthy(self) -> bool:
        """Whether the router answers (never raises)."""
        ...

    def ensure_running(self) -> None:
        """Adopt the router that answers, or start one; the next ``apply`` pushes its routes again."""
        ...

    def stop(self) -> None:
        """Stop the router (apps keep running); stopping a stopped router is fine."""
        ...

    def request_counters(self) -> dict[str, Counters] | None:
        """Per app, the requests it counted since it started, when the router keeps such counters
        (HAProxy); None when it does not (Caddy writes an access log instead) or does not answer."""
        ...

    def close(self) -> None:
        """Release what this object holds (the router process keeps running)."""
        ...
