"""The CLI's API client wired to the real REST API in this process, and the helpers the CLI tests share.

The `mypaas` commands build their client with ``mypaas.cli.client.connect()``; the tests replace it with
one whose transport hands each request to the API app of tests/unit/conftest.py (the platform over the
fake backend) and keeps every request and answer, so a test can check what the CLI sent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from mypaas.cli import client as client_module
from mypaas.cli.client import ApiClient
from mypaas.cli.main import app
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.states import InstanceState

URL = "http://mypaas.test"
TERMINAL = ("succeeded", "failed")


class InProcess(httpx.BaseTransport):
    """An httpx transport that answers from the API app in this process, keeping every exchange."""

    def __init__(self, api: TestClient) -> None:
        self._api = api
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a streamed upload is read once here, and kept for the test
        answer = self._api.send(request, follow_redirects=False)
        response = httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        self.exchanges.append((request, response))
        return response


class Server:
    """The API as the CLI reaches it: what it was sent, and clients of it."""

    def __init__(self, api: TestClient, platform: Platform) -> None:
        self.transport = InProcess(api)
        self.platform = platform

    def client(self, token: str | None = None) -> ApiClient:
        """A CLI client with ``token`` (the admin token by default; "" for none, then the env decides)."""
        given = self.platform.admin_token if token is None else (token or None)
        return ApiClient(URL, given, transport=self.transport)

    @property
    def requests(self) -> list[httpx.Request]:
        return [request for request, _ in self.transport.exchanges]

    def sent(self, method: str, path: str) -> list[tuple[httpx.Request, httpx.Response]]:
        return [(q, a) for q, a in self.transport.exchanges if (q.method, q.url.path) == (method, path)]

    def last(self, method: str, path: str) -> httpx.Request:
        return self.sent(method, path)[-1][0]

    def body(self, method: str, path: str) -> Any:
        return json.loads(self.last(method, path).content)


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No MYPAAS_* variable from the caller's shell, and ``home`` as the CLI's own (no token file)."""
    monkeypatch.setenv("MYPAAS_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))  # no `mypaas login` credentials
    for var in ("MYPAAS_URL", "MYPAAS_TOKEN", "MYPAAS_BASE_DOMAIN", "MYPAAS_ROUTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    client_module.settings.cache_clear()


def serve(monkeypatch: pytest.MonkeyPatch, api: TestClient, platform: Platform) -> Server:
    """Make every command's client reach ``api`` (the API app of ``platform``) with the admin token."""
    server = Server(api, platform)
    monkeypatch.setattr(client_module, "connect", server.client)
    return server


def cli(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return str(lines[0])


# -- setting the platform up through its own services ---------------------------------------------


def deploy(api: TestClient, app_name: str, **body: Any) -> dict[str, Any]:
    """Start a deploy through the API (``image=...`` or ``compose=...``); answers its operation."""
    r = api.post(f"/api/v1/apps/{app_name}/deploys", json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


def change(api: TestClient, method: str, path: str, body: Any) -> dict[str, Any]:
    r = api.request(method, f"/api/v1/{path}", json=body)
    assert r.is_success, r.text
    return dict(r.json())


def settle(platform: Platform, backend: FakeBackend, passes: int = 4) -> None:
    """Run reconcile passes as the manager's loop would, the fake engine reporting each new instance
    healthy (as a passing health check does), until the rollouts in flight are done."""
    for _ in range(passes):
        platform.reconciler.pass_once()
        for iid, inst in list(backend.instances.items()):
            if inst.state == InstanceState.STARTING:
                backend.set_state(iid, InstanceState.HEALTHY)


def finished(api: TestClient, op_id: str, timeout: float = 30) -> dict[str, Any]:
    """Wait (long-polling the API) until the operation succeeded or failed; answers it."""
    deadline = time.monotonic() + timeout
    offset = 0
    while True:
        r = api.get(f"/api/v1/operations/{op_id}", params={"wait": 5, "log_offset": offset})
        assert r.status_code == 200, r.text
        op = dict(r.json())
        if op["status"] in TERMINAL:
            return op
        assert time.monotonic() < deadline, f"operation {op_id} still {op['status']}"
        offset = op["log_offset"]
