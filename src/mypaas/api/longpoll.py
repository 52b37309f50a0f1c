"""Long polls that hold no worker thread: a client following an operation's log or the event log waits
on the event loop, woken by the change counter (mypaas.changes) the moment something changes; only
the short reads run in the thread pool, whose threads stay free for the other requests however many
clients follow."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from mypaas.changes import Changes

T = TypeVar("T")


async def long_poll(
    fetch: Callable[[], T], ready: Callable[[T], bool], changes: Changes, timeout: float
) -> T:
    """``fetch()`` until ``ready`` says its result is worth returning or ``timeout`` passes, reading
    again after each change."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # called by the thread that changed something
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody waits any more
            loop.call_soon_threadsafe(changed.set)

    unwatch = changes.watch(wake)
    try:
        deadline = time.monotonic() + timeout
        while True:
            changed.clear()  # before the read: a change during it wakes the next wait at once
            found = await run_in_threadpool(fetch)
            left = deadline - time.monotonic()
            if ready(found) or left <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
    finally:
        unwatch()
