"""Long polls wait on the event loop: however many clients follow the event log or an operation,
the thread pool stays free for everybody else's requests."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from mypaas.api.longpoll import long_poll
from mypaas.changes import Changes

FOLLOWERS = 60  # more than the thread pool's 40 threads


def test_many_followers_do_not_hold_up_other_requests(api: TestClient) -> None:
    done: list[tuple[str, float]] = []
    lock = threading.Lock()

    def follow(_: int) -> int:
        r = api.get("/api/v1/events", params={"after": 10**9, "wait": 3})
        with lock:
            done.append(("follower", time.monotonic()))
        return r.status_code

    changes = api.app.state.platform.monitoring.events.changes  # type: ignore[attr-defined]
    with api, ThreadPoolExecutor(FOLLOWERS + 1) as pool:  # `with api`: one event loop for all requests
        followers = [pool.submit(follow, i) for i in range(FOLLOWERS)]
        deadline = time.monotonic() + 10
        while changes.watchers < FOLLOWERS and time.monotonic() < deadline:
            time.sleep(0.01)  # until every follower waits
        assert changes.watchers == FOLLOWERS
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

    def fetch() -> int:
        reads.append(value[0])
        return value[0]

    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 0)) == 0  # no wait: one read
    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 0.2)) == 0  # nothing changed: the deadline

    def change_later() -> None:
        while not reads:  # the poll read once (and waits now, or soon)
            time.sleep(0.005)
        value[0] = 1
        changes.bump()  # from another thread, as the reconcile loop or the event writer does

    reads.clear()
    threading.Thread(target=change_later).start()
    assert asyncio.run(long_poll(fetch, lambda v: v > 0, changes, 5)) == 1
    assert reads == [0, 1]  # read again only once something changed
    assert not changes.watchers  # the waiter stopped watching


@pytest.mark.parametrize("wait", [0, 0.3])
def test_an_unknown_operation_is_404_with_or_without_wait(api: TestClient, wait: float) -> None:
    r = api.get("/api/v1/operations/nope", params={"wait": wait})
    assert r.status_code == 404 and r.json()["field"] == "operation"
