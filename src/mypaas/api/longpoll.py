"""Long polls that hold no worker thread: a client following an operation's log or the event log waits
on the event loop, and only the short reads run in the thread pool (whose threads stay free for the
other requests however many clients follow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

POLL_S = 0.05  # how often a waiting request looks at the change counter (an integer read)


async def long_poll(
    fetch: Callable[[], T], ready: Callable[[T], bool], version: Callable[[], int], timeout: float
) -> T:
    """``fetch()`` until ``ready`` says its result is worth returning or ``timeout`` passes; between two
    reads, wait for ``version()`` (bumped by every change) to move."""
    deadline = time.monotonic() + timeout
    while True:
        seen = version()
        found = await run_in_threadpool(fetch)
        left = deadline - time.monotonic()
        if ready(found) or left <= 0:
            return found
        until = time.monotonic() + min(left, 1.0)
        while version() == seen and time.monotonic() < until:
            await asyncio.sleep(POLL_S)
