"""The status page's component checks, kept a few seconds.

``GET /`` and ``GET /api/v1/status`` answer anyone (the page) or any token holder, and each answer pinged
the Docker engine and Caddy: a client looping on the page made the manager hammer both. The checks' answer
is kept ``STATUS_CACHE_S``: N hits in that time make one ping of each; hits that come while a check runs
wait for it rather than start their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

STATUS_CACHE_S = 5.0


class ComponentChecks:
    """(engine up, router up), asked at most once per ``ttl_s``."""

    def __init__(self, ttl_s: float = STATUS_CACHE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: tuple[float, tuple[bool, bool]] | None = None

    def get(self, check: Callable[[], tuple[bool, bool]]) -> tuple[bool, bool]:
        with self._lock:
            now = self._clock()
            if self._kept is None or now - self._kept[0] >= self._ttl_s:
                self._kept = (now, check())
            return self._kept[1]
