"""Long polls wait on the event loop: however many clients follow the event log or an operation,
the thread pool stays free for everybody else's requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from mypaas.api.longpoll import long_poll
from mypaas.changes import Changes
from mypaas.manager.platform import Platform

FOLLOWERS = 60  # more than the thread pool's 40 threads


def test_many_followers_do_not_hold_up_other_requests(
    api: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    done: list[tuple[str, float]] = []
    lock = threading.Lock()

    def follow(_: int) -> int:
        r = api.get("/api/v1/events", params={"after": 10**9, "wait": 3})
        with lock:
            done.append(("follower", time.monotonic()))
        return r.status_code

    changes = platform.monitoring.events.changes
    watching = threading.Semaphore(0)  # released once per long poll that started waiting
    watch = changes.watch

    def counted(wake: Callable[[], None]) -> Callable[[], None]:
        unwatch = watch(wake)
        watching.release()
        return unwatch

    monkeypatch.setattr(changes, "watch", counted)
    with api, ThreadPoolExecutor(FOLLOWERS + 1) as pool:  # `with api`: one event loop for all requests
        followers = [pool.submit(follow, i) for i in range(FOLLOWERS)]
        assert all(watching.acquire(timeout=10) for _ in range(FOLLOWERS))  # every follower waits
        assert api.get("/api/v1/apps").status_code == 200
        with lock:
            done.append(("apps", time.monotonic()))
        assert [f.result() for f in followers] == [200] * FOLLOWERS
    assert done[0][0] == "apps", "a plain request waited for the long polls to give up their threads"


def test_long_poll_returns_at_once_when_ready_and_reads_again_only_after_a_change() -> None:
    import asyncio

    changes = Changes()
    value = [0]
    reads: list[int] = []

    read = threading.Event()

    def fetch() -> int:
        reads.append(value[0])
        read.set()
        return value[0]

    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 0)) == 0  # no wait: one read
    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 0.2)) == 0  # nothing changed: the deadline

    def change_later() -> None:
        read.wait(5)  # the poll read once (and waits now, or soon)
        value[0] = 1
        changes.bump()  # from another thread, as the reconcile loop or the event writer does

    reads.clear()
    read.clear()
    threading.Thread(target=change_later).start()
    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 5)) == 1
    assert reads == [0, 1]  # read again only once something changed
    assert not changes.watchers  # the waiter stopped watching


@pytest.mark.parametrize("wait", [0, 0.3])
def test_an_unknown_operation_is_404_with_or_without_wait(api: TestClient, wait: float) -> None:
    r = api.get("/api/v1/operations/nope", params={"wait": wait})
    assert r.status_code == 404 and r.json()["field"] == "operation"
