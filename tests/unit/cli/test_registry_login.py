"""`mypaas registry login`: `docker login` to the private registry with the CLI's own token (the docker
command replaced by a recorder), and its one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from mypaas.cli import registry as registry_cli
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.registry.fake import FakeRegistry
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import Server, cli, one_error_line

ADDR = "127.0.0.1:5999"


class Docker:
    """Stands in for ``subprocess.run`` of the docker command: keeps what it was given."""

    def __init__(self, code: int = 0, stderr: str = "") -> None:
        self.code, self.stderr = code, stderr
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, args: list[str], *, input: str, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, input))
        return subprocess.CompletedProcess(args, self.code, "Login Succeeded\n", self.stderr)


@pytest.fixture
def platform(tmp_path: Path, backend: FakeBackend) -> Platform:
    settings = Settings(home=tmp_path, registry_enabled=True, registry_addr=ADDR)
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, registry=FakeRegistry())
    return build_platform(settings, parts)


def test_registry_login_gives_docker_the_clis_token(
    server: Server, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = Docker()
    monkeypatch.setattr(registry_cli.subprocess, "run", docker)

    result = cli("registry", "login", "--user", "alice")

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"logged in to {ADDR} as alice: docker push and pull there follow this token's role\n"
    )
    assert docker.calls == [
        (["docker", "login", ADDR, "-u", "alice", "--password-stdin"], platform.admin_token + "\n")
    ]


def test_registry_login_errors_are_one_line(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry_cli.subprocess, "run", Docker(1, "Error response from daemon: Get ...: unauthorized\n")
    )
    line = one_error_line(cli("registry", "login"))
    assert line == f"error: docker login {ADDR} failed: Error response from daemon: Get ...: unauthorized"

    def missing(*_: Any, **__: Any) -> None:
        raise FileNotFoundError("docker")

    monkeypatch.setattr(registry_cli.subprocess, "run", missing)
    line = one_error_line(cli("registry", "login"))
    assert line == "error: the docker command is not installed here: `docker login` needs it"


def test_registry_login_without_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from mypaas.api.app import create_app
    from tests.unit.cli.support import serve

    off = build_platform(
        Settings(home=tmp_path / "off", registry_enabled=False),
        Components(backend=FakeBackend(), router=FakeRouter(), probe=lambda _: True),
    )
    api = TestClient(create_app(off))
    api.headers["Authorization"] = f"Bearer {off.admin_token}"
    serve(monkeypatch, api, off)
    monkeypatch.setattr(registry_cli.subprocess, "run", Docker())

    line = one_error_line(cli("registry", "login"))
    assert line == "error: the private registry is turned off (setting registry_enabled)"
