"""Bad input and failed deploys: a clear error naming the field, and nothing half-made left behind."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def leftovers(app: str) -> list[object]:
    client = kit.docker_client()
    label = {"label": f"mypaas.app={app}"}
    return [*client.containers.list(all=True, filters=label), *client.networks.list(filters=label)]


def assert_absent(platform: kit.Platform, app: str) -> None:
    assert app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]
    assert leftovers(app) == []


def one_error_line(r: kit.Result) -> str:
    """A failed command: exit code 1 and one ``error:`` line (after any build output it streamed)."""
    assert r.code == 1, r
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r
    assert "Traceback" not in r.err
    return r.err


def test_invalid_app_name(platform: kit.Platform, images: dict[str, str]) -> None:
    assert "app" in one_error_line(platform.cli("deploy", "Bad_Name", "--image", images["v1"]))
    r = platform.raw("POST", "/api/v1/apps/Bad_Name/deploys", json={"image": images["v1"]})
    assert r.status_code == 400 and r.json()["field"] == "app"
    assert_absent(platform, "Bad_Name")


def test_missing_image(platform: kit.Platform) -> None:
    app = f"noimg-{secrets.token_hex(3)}"
    assert "not found" in one_error_line(platform.cli("deploy", app, "--image", "mypaas-test/none:404"))
    r = platform.raw("POST", f"/api/v1/apps/{app}/deploys", json={"image": "mypaas-test/none:404"})
    assert r.status_code == 400 and "image" in r.json()["field"]
    assert_absent(platform, app)


def test_malformed_and_unsupported_compose(platform: kit.Platform, tmp_path: Path) -> None:
    app = f"badyml-{secrets.token_hex(3)}"
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web: [unclosed\n")
    assert "YAML" in one_error_line(platform.cli("deploy", app, "-f", str(bad)))
    bad.write_text("services:\n  web:\n    image: x\nmodels:\n  m: {}\n")
    assert "models" in one_error_line(platform.cli("deploy", app, "-f", str(bad)))
    r = platform.raw("POST", f"/api/v1/apps/{app}/deploys", json={"compose": bad.read_text()})
    assert r.status_code == 400 and r.json()["field"] == "models"
    bad.write_text("services:\n  web:\n    image: x\n    deploy:\n      placement: {preferences: []}\n")
    assert "placement" in one_error_line(platform.cli("deploy", app, "-f", str(bad)))
    r = platform.raw(
        "POST",
        f"/api/v1/apps/{app}/deploys",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "error" in r.json()
    assert_absent(platform, app)


def test_failing_dockerfile_leaves_nothing(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"badbuild-{secrets.token_hex(3)}"
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\nRUN /bin/false\n")
    err = one_error_line(platform.cli("deploy", app, str(tmp_path)))
    assert "build failed" in err
    kit.wait_until(
        lambda: not leftovers(app) and app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]
    )


def test_port_conflict(platform: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    app = f"port-{secrets.token_hex(3)}"
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        compose = tmp_path / "c.yml"
        compose.write_text(f"services:\n  web:\n    image: {images['v1']}\n    ports: ['{port}:80']\n")
        assert str(port) in one_error_line(platform.cli("deploy", app, "-f", str(compose)))
        r = platform.raw("POST", f"/api/v1/apps/{app}/deploys", json={"compose": compose.read_text()})
        assert r.status_code == 409 and r.json()["field"] == "services.web.ports"
    assert_absent(platform, app)


def test_unknown_app_and_release(platform: kit.Platform) -> None:
    assert "no app" in one_error_line(platform.cli("ps", "no-such-app"))
    assert platform.raw("GET", "/api/v1/apps/no-such-app").status_code == 404
    assert platform.raw("GET", "/api/v1/operations/nope").status_code == 404
    assert "no app" in one_error_line(platform.cli("scale", "no-such-app", "web=2"))
    usage = platform.cli("scale", "x", "web=lots")  # a usage error: Click's exit code 2
    assert usage.code == 2 and "SERVICE=N" in usage.err and "Traceback" not in usage.err


def test_failed_deploy_keeps_old_release_serving(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"fail-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    platform.wait_for(app, body="version one")
    err = one_error_line(platform.cli("deploy", app, "--image", images["crash"], "--port", "80"))
    assert "boom: cannot start" in err  # the failing container's last log lines
    assert platform.get(app)[1].strip() == "version one"
    releases = platform.cli("releases", app, "--json").json()
    assert [(r["version"], r["status"]) for r in releases] == [(2, "failed"), (1, "active")]
    kit.wait_until(lambda: {i["release"] for i in platform.instances(app)} == {1})
    platform.cli("rm", app, "--yes")


def test_failed_first_deploy_leaves_nothing(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"never-{secrets.token_hex(3)}"
    one_error_line(platform.cli("deploy", app, "--image", images["crash"], "--port", "80"))
    kit.wait_until(
        lambda: not leftovers(app) and app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]
    )
