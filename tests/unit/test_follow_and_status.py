"""Issue 13, slice B, the small ones: `logs -f` of a quiet container ends with its client (no thread left
behind), `--tail 0` is no line (then what comes), and the status page pings the engine and Caddy once per
few seconds whatever the number of hits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.docker import DockerBackend
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.manager.status_cache import ComponentChecks
from tests.kit import free_port
from tests.unit.cli.support import settle


def wait_until(check: Any, timeout: float = 10) -> bool:
    """Poll ``check`` until true (the threads under watch end on their own time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        threading.Event().wait(0.05)
    return bool(check())


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


class QuietStream:
    """The engine's log stream of a container that prints nothing: blocks until closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        self.closed.wait()
        return iter(())

    def close(self) -> None:
        self.closed.set()


class QuietEngine:
    """What DockerBackend asks of the Docker API for logs, with quiet containers."""

    def __init__(self) -> None:
        self.streams: list[QuietStream] = []
        self.tails: list[Any] = []

    def inspect_container(self, cid: str) -> dict[str, str]:
        return {"Name": f"/{cid}"}

    def logs(self, cid: str, **kw: Any) -> Any:
        self.tails.append(kw.get("tail"))
        if kw.get("stream"):
            self.streams.append(QuietStream())
            return self.streams[-1]
        return b"2026-12-05T06:00:00Z one\n2026-12-05T06:00:01Z two\n"


def docker_backend(engine: QuietEngine) -> DockerBackend:
    backend = DockerBackend.__new__(DockerBackend)
    backend._api = engine  # type: ignore[assignment]
    return backend


def test_a_quiet_followers_threads_end_when_it_is_stopped() -> None:
    engine = QuietEngine()
    backend = docker_backend(engine)
    before = set(threading.enumerate())
    stop = threading.Event()
    lines = backend.logs(["c1", "c2"], tail=0, follow=True, stop=stop)
    reader = threading.Thread(target=lambda: list(lines))
    reader.start()
    assert wait_until(lambda: len(engine.streams) == 2)
    stop.set()
    reader.join(5)
    assert wait_until(lambda: set(threading.enumerate()) <= before), set(threading.enumerate()) - before
    assert all(s.closed.is_set() for s in engine.streams)
    assert engine.tails == [0, 0]  # --tail 0: no old line, then what comes


def test_tail_zero_is_no_line_and_none_is_the_whole_log() -> None:
    engine = QuietEngine()
    backend = docker_backend(engine)
    stop = threading.Event()
    list(backend.logs(["c1"], tail=0, follow=False, stop=stop))
    list(backend.logs(["c1"], tail=None, follow=False, stop=stop))
    list(backend.logs(["c1"], tail=5, follow=False, stop=stop))
    assert engine.tails == [0, "all", 5]


def test_tail_zero_through_the_api(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    assert api.post("/api/v1/apps/hello/deploys", json={"image": "web:1"}).status_code < 300
    settle(platform, backend)
    [iid] = backend.instances
    backend.logs_by_id[iid] = ["one", "two", "three"]
    assert api.get("/api/v1/apps/hello/logs", params={"tail": 0}).text == ""
    assert api.get("/api/v1/apps/hello/logs", params={"tail": 0, "probes": True}).text == ""
    assert api.get("/api/v1/apps/hello/logs", params={"tail": 2}).text.endswith("two\nthree\n")
    assert api.get("/api/v1/apps/hello/logs").text.count("\n") == 3


def test_logs_follow_of_a_quiet_app_ends_when_the_client_goes(
    platform: Platform, api: TestClient, backend: FakeBackend
) -> None:
    """Through a real server: the client reads nothing (the app prints nothing), then disconnects."""
    assert api.post("/api/v1/apps/hello/deploys", json={"image": "web:1"}).status_code < 300
    settle(platform, backend)
    followers: list[threading.Event] = []

    def quiet(ids: list[str], *, tail: int | None, follow: bool, stop: threading.Event) -> Iterator[str]:
        followers.append(stop)
        stop.wait()  # as the engine's stream of a container that prints nothing, until it is closed
        return iter(())

    backend.logs = quiet  # type: ignore[method-assign,assignment]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="error")
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    try:
        assert wait_until(lambda: server.started)
        before = {t for t in threading.enumerate() if t.name == "logs-follow"}
        headers = {"Authorization": f"Bearer {platform.admin_token}"}
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as client,
            client.stream("GET", "/api/v1/apps/hello/logs", params={"follow": True}) as answer,
        ):
            assert answer.status_code == 200
            assert wait_until(lambda: len(followers) == 1)  # following, nothing to read
        # the client went away without a line ever written
        assert wait_until(followers[0].is_set)
        assert wait_until(lambda: {t for t in threading.enumerate() if t.name == "logs-follow"} <= before)
    finally:
        server.should_exit = True
        serving.join(10)


def test_the_status_pings_once_per_few_seconds(
    platform: Platform, api: TestClient, backend: FakeBackend
) -> None:
    pings: list[str] = []
    real_ping, real_healthy = backend.ping, platform.router.healthy

    def ping() -> bool:
        pings.append("engine")
        return real_ping()

    def healthy() -> bool:
        pings.append("router")
        return real_healthy()

    backend.ping = ping  # type: ignore[method-assign]
    platform.router.healthy = healthy  # type: ignore[method-assign]
    for _ in range(20):
        assert api.get("/status", headers={"Authorization": ""}).status_code == 200  # the anonymous page
        assert api.get("/api/v1/status").json()["healthy"] is True
    assert pings == ["engine", "router"]


def test_the_component_checks_are_asked_again_after_their_time() -> None:
    now = [0.0]
    checks = ComponentChecks(ttl_s=5, clock=lambda: now[0])
    asked: list[float] = []

    def check() -> tuple[bool, bool]:
        asked.append(now[0])
        return True, len(asked) < 2

    assert [checks.get(check) for _ in range(3)] == [(True, True)] * 3
    now[0] = 4.9
    assert checks.get(check) == (True, True)
    now[0] = 5.0
    assert checks.get(check) == (True, False)
    assert asked == [0.0, 5.0]
