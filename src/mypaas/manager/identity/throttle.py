"""Failed logins counted per user and per source: each makes the next answer slower, and too many in a
window refuse the user or source for a while."""

from __future__ import annotations

import threading
import time

from mypaas.errors import TooManyAttempts


class LoginThrottle:
    """Failed logins per user and per source within a window: each failure makes the next answer slower
    (0.25 s doubling, at most 8 s), and past ``limit`` failures the user or source is refused for a while."""

    def __init__(self, window_s: float = 900.0, limit: int = 20) -> None:
        self.window_s = window_s
        self.limit = limit
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def count(self, user: str, source: str) -> int:
        now = time.time()
        with self._lock:
            return max(len(self._recent(f"u:{user}", now)), len(self._recent(f"s:{source}", now)))

    def delay(self, user: str, source: str) -> float:
        """How long to wait before answering a login of ``user`` from ``source``."""
        n = self.count(user, source)
        return 0.0 if n == 0 else min(0.25 * 2 ** (n - 1), 8.0)

    def check(self, user: str, source: str) -> None:
        now = time.time()
        with self._lock:
            times = self._recent(f"u:{user}", now) + self._recent(f"s:{source}", now)
        if (
            len(self._failures.get(f"u:{user}", [])) >= self.limit
            or len(self._failures.get(f"s:{source}", [])) >= self.limit
        ):
            wait = int(self.window_s - (now - min(times))) + 1 if times else int(self.window_s)
            raise TooManyAttempts(
                f"too many failed logins for {user!r} or from {source}: try again in {wait} s", field="user"
            )

    def failed(self, user: str, source: str) -> int:
        now = time.time()
        with self._lock:
            for key in (f"u:{user}", f"s:{source}"):
                self._failures.setdefault(key, []).append(now)
            return max(len(self._recent(f"u:{user}", now)), len(self._recent(f"s:{source}", now)))

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{user}", None)
