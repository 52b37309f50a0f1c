"""A change counter that threads can wait on and event loops can watch: the operations and the event
log bump one whenever they change, so their followers (long polls) wake at once."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Changes:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watchers: set[Callable[[], None]] = set()
        self.version = 0  # bumped by every change

    def bump(self) -> None:
        """Count a change, wake the waiting threads and call every watcher."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()
            watchers = list(self._watchers)
        for wake in watchers:
            wake()

    def wait(self, seen: int, timeout: float) -> None:
        """Block until the counter moved past ``seen``, at most ``timeout`` seconds."""
        with self._cond:
            if self.version == seen:
                self._cond.wait(timeout)

    @property
    def watchers(self) -> int:
        """How many watch now (each follower of a long poll is one)."""
        with self._cond:
            return len(self._watchers)

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from the changing thread; it must be quick) on every change until the
        returned function is called."""
        with self._cond:
            self._watchers.add(wake)
        return lambda: self._unwatch(wake)

    def _unwatch(self, wake: Callable[[], None]) -> None:
        with self._cond:
            self._watchers.discard(wake)
