"""Issue 13, slice D: `mypaas domains https APP on|off` through the CLI against the real API (fake backend
and router underneath): the switch reaches the router's routes, and a wrong word is one error line."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle
from tests.unit.cli.test_everyday import routes_after


def test_an_app_keeps_plain_http_and_goes_back_to_redirects(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    [route] = routes_after(platform, backend)
    assert route.plain_http is False  # redirects by default

    off = cli("domains", "https", "hello", "off")

    assert (off.exit_code, off.stdout) == (0, "hello: plain HTTP kept (no redirect to HTTPS)\n")
    [route] = routes_after(platform, backend)
    assert route.plain_http is True
    assert api.get("/api/v1/apps/hello/https").json() == {"redirect": False}

    on = cli("domains", "https", "hello", "on")

    assert on.stdout == "hello: HTTP redirects to HTTPS where a trusted certificate is there\n"
    [route] = routes_after(platform, backend)
    assert route.plain_http is False


def test_the_https_switch_takes_on_or_off_only(server: Server, api: TestClient) -> None:
    deploy(api, "hello", image="web:1")

    assert (
        one_error_line(cli("domains", "https", "hello", "maybe"))
        == "error: https: expected on or off, not 'maybe'"
    )
    assert one_error_line(cli("domains", "https", "ghost", "off")).startswith("error: ")
    answer = api.put("/api/v1/apps/hello/https", json={"redirect": "sometimes"})
    assert answer.status_code in (400, 422) and "redirect" in answer.text
