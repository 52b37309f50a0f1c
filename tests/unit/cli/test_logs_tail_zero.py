"""Issue 13, slice B: `mypaas logs --tail 0` prints no old line (it printed the whole log)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, deploy, settle


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_logs_tail_zero_prints_nothing_old(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    [iid] = backend.instances
    backend.logs_by_id[iid] = ["one", "two", "three"]

    none = cli("logs", "hello", "--tail", "0")
    last = cli("logs", "hello", "-n", "1")
    every = cli("logs", "hello")

    assert (none.exit_code, none.stdout) == (0, "")
    assert last.stdout == "three\n"
    assert every.stdout == "one\ntwo\nthree\n"
    assert server.last("GET", "/api/v1/apps/hello/logs").url.params.get("tail") is None
    assert [q.url.params.get("tail") for q, _ in server.sent("GET", "/api/v1/apps/hello/logs")] == [
        "0",
        "1",
        None,
    ]
