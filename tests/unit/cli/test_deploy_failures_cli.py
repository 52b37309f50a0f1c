"""What `mypaas deploy` shows when the new release keeps crashing: its progress while it waits, then
one error naming the exits, with the last log lines de-duplicated."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.cli.output import progress_line
from mypaas.composer.base import InstanceRequest
from mypaas.composer.fake import FakeBackend
from mypaas.domain import Instance
from mypaas.manager.platform import Platform
from mypaas.states import InstanceState
from tests.unit.cli.support import Server, cli, deploy


class Crashing(FakeBackend):
    """Every instance exits at once with code 3, having printed two lines."""

    def create_instance(self, req: InstanceRequest) -> Instance:
        inst = super().create_instance(req)
        self.logs_by_id[inst.id] = ["starting", "boom"]
        self.set_state(inst.id, InstanceState.EXITED, exit_code=3)
        return self.instances[inst.id]


@pytest.fixture
def backend() -> FakeBackend:
    fake = Crashing()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_a_crashing_release_fails_fast_saying_how(server: Server, manager: Platform) -> None:
    result = cli("deploy", "hello", "--image", "web:1")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "web: 0/1 ready, restarted 1\u00d7 (exit 3)",
        "web: 0/1 ready, restarted 2\u00d7 (exit 3)",
        "web: 0/1 ready, restarted 3\u00d7 (exit 3)",
        "error: v1 failed: web: exited 3 times (exit 3); nothing was running before, so the app is removed",
        "--- last log lines ---",
        result.stderr.splitlines()[5],
        "starting",
        "boom",
    ]
    assert result.stderr.splitlines()[5].startswith("[hello-web-v1-")


def test_a_failed_build_shows_its_log_once_then_the_error(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\nRUN FAIL\n")

    result = cli("deploy", "broken", str(tmp_path / "app"), "--port", "80")

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "--- building web (Dockerfile)"
    assert lines[1].startswith("Step 1/1 : fake build of mypaas-broken/web:")
    assert lines[2:] == [" ---> Running in 0123456789ab", "error: build failed: the fake was asked to fail"]


def test_the_spinner_says_how_often_the_new_release_restarted(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    op = deploy(api, "hello", image="web:1")
    platform.reconciler.pass_once()  # creates the instance, which exits at once (exit 3)
    platform.reconciler.pass_once()  # sees it exited: counts it, replaces it

    line = progress_line(server.client(), "hello", "deploying hello", op)

    assert line == "deploying hello v1\u2026 waiting for web: 0/1 ready, restarted 1\u00d7 (exit 3)"
