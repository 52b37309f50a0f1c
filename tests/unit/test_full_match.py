"""Names and keys are matched whole: a trailing newline (which ``$`` lets through) is refused, by the API
with a 400 naming the field and by the CLI with one error line, for an app name, a host label key, an
advertise address and a placement constraint."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.domain import check_name
from mypaas.manager.hosts.listing import check_label_key
from mypaas.spec.compose import read_compose
from tests.unit.cli.support import isolate, one_error_line, serve
from tests.unit.test_hosts import error, make_cluster

CONSTRAINED = """
services:
  web:
    image: nginx:alpine
    deploy:
      placement:
        constraints: ["node.role==manager\\n"]
"""


def test_an_app_name_with_a_trailing_newline_is_refused(api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop%0A/deploys", json={"image": "nginx:alpine"})
    assert r.status_code == 400 and r.json()["field"] == "app", r.text
    assert api.get("/api/v1/apps").json() == []
    with pytest.raises(Exception, match="invalid app name"):
        check_name("shop\n")


def test_the_cli_says_so_in_one_line(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, platform: object
) -> None:
    isolate(monkeypatch, tmp_path / "home")
    serve(monkeypatch, api, platform)  # type: ignore[arg-type]
    result = CliRunner().invoke(cli_app, ["deploy", "shop\n", "--image", "nginx:alpine"])
    assert one_error_line(result).startswith("error: invalid app name 'shop\\n'")
    client_module.settings.cache_clear()


def test_a_placement_constraint_with_a_trailing_newline_is_refused(api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": CONSTRAINED})
    assert r.status_code == 400, r.text
    assert "invalid constraint" in r.json()["error"] and "constraints" in r.json()["field"]
    with pytest.raises(Exception, match="invalid constraint"):
        read_compose(CONSTRAINED)


def test_a_label_key_and_an_advertise_address_with_a_trailing_newline_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = make_cluster(tmp_path, cluster_addr="")
    error(
        cluster.api.post("/api/v1/cluster/init", json={"advertise_addr": "10.0.0.1\n"}), 400, "advertise_addr"
    )
    assert cluster.hosts.mode() == "docker"  # nothing changed
    cluster.api.post("/api/v1/cluster/init", json={"advertise_addr": "10.0.0.1"}).raise_for_status()
    error(cluster.api.patch("/api/v1/hosts/boss/labels", json={"set": {"zone\n": "a"}}), 400, "set")
    with pytest.raises(Exception, match="invalid label key"):
        check_label_key("zone\n")

    isolate(monkeypatch, tmp_path / "home")
    serve(monkeypatch, cluster.api, cluster.platform)
    result = CliRunner().invoke(cli_app, ["cluster", "init", "--advertise-addr", "10.0.0.2\n"])
    assert one_error_line(result).startswith("error: invalid advertise address '10.0.0.2\\n'")
    result = CliRunner().invoke(cli_app, ["host", "label", "boss", "zone\n=a"])  # refused before the API
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines() == [
        "error: invalid value for 'KEY=VALUE... KEY-...': 'zone\\n=a' is neither KEY=VALUE (to set) nor KEY- "
        "(to remove); see 'mypaas host label --help'"
    ]
    client_module.settings.cache_clear()
