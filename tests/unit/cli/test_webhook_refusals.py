"""Issue 13, slice B: `alerts add` refuses a webhook on an internal address in one line (SSRF)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from tests.unit.cli.support import Server, cli, one_error_line


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_alerts_add_to_the_routers_admin_api_is_refused_in_one_line(server: Server, api: TestClient) -> None:
    result = cli("alerts", "add", "stop", "--kind", "app_down", "--webhook", "http://127.0.0.1:2019/stop")
    assert result.exit_code != 0
    assert one_error_line(result) == "error: webhook refused: 127.0.0.1 is a loopback address"
    line = one_error_line(
        cli("alerts", "add", "meta", "--kind", "app_down", "--webhook", "http://localhost/")
    )
    assert line.startswith("error: webhook refused: localhost: ") and "loopback" in line
    line = one_error_line(
        cli(
            "alerts",
            "add",
            "lan",
            "--kind",
            "app_down",
            "--webhook",
            "http://10.9.8.7:2375/",
            "--allow-private",
        )
    )
    assert line.startswith("error: webhook refused: port 2375 of 10.9.8.7 is one of the platform's own")
    assert api.get("/api/v1/alerts").json() == []
    r = api.post("/api/v1/alerts", json={"name": "x", "kind": "app_down", "webhook": "http://[::1]:5000/"})
    assert (r.status_code, r.json()["field"]) == (400, "webhook")

    assert (
        cli(
            "alerts",
            "add",
            "lan",
            "--kind",
            "app_down",
            "--webhook",
            "http://10.9.8.7:9999/",
            "--allow-private",
        ).exit_code
        == 0
    )
    assert api.get("/api/v1/alerts").json()[0]["allow_private"] is True
