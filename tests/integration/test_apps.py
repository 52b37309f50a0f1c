"""Each CLI verb against the real engine and router: deploy, ls, ps, logs, scale, releases, rollback,
config, domains, stop/start/restart, rm."""

from __future__ import annotations

import collections
import json
import secrets

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_deploy_image_route_and_inspect(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("hello")
    r = platform.cli("deploy", app, "--image", images["v1"], "--port", "80")
    assert r.code == 0, r
    assert f"http://{app}.localhost" in r.out
    assert platform.wait_for(app, body="version one")

    listed = platform.cli("ls", "--json").json()
    mine = [a for a in listed if a["name"] == app]
    assert mine and mine[0]["release"] == 1 and mine[0]["state"] == "running"

    ps = platform.cli("ps", app, "--json").json()
    assert len(ps) == 1 and ps[0]["service"] == "web" and ps[0]["ready"]

    status, _ = platform.get(app, "/id.html")
    assert status == 200
    logs = platform.cli("logs", app, "--tail", "5")
    assert logs.code == 0

    releases = platform.cli("releases", app, "--json").json()
    assert [r["version"] for r in releases] == [1]
    assert releases[0]["images"]["web"]["id"].startswith("sha256:")

    assert platform.cli("rm", app, "--yes").code == 0
    assert platform.get(app)[0] == 404
    assert not [
        c for c in kit.docker_client().containers.list(all=True, filters={"label": f"mypaas.app={app}"})
    ]
    assert not kit.docker_client().networks.list(filters={"label": f"mypaas.app={app}"})


def test_unknown_host_gets_404(platform: kit.Platform) -> None:
    status, body = platform.get("no-such-app")
    assert status == 404 and body.strip()


def test_scale_spreads_requests(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("scale")
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    assert platform.cli("scale", app, "web=3").code == 0
    insts = platform.wait_ready(app, 3)
    assert len({i["address"] for i in insts}) == 3
    platform.wait_for(app)
    seen = collections.Counter(platform.get(app, "/id.html")[1].strip() for _ in range(30))
    assert len(seen) == 3, seen  # round robin over three replicas
    assert platform.cli("scale", app, "web=1").code == 0
    platform.wait_ready(app, 1)
    seen = collections.Counter(platform.get(app, "/id.html")[1].strip() for _ in range(10))
    assert len(seen) == 1 and all(code for code in seen), seen
    platform.cli("rm", app, "--yes")


def test_redeploy_and_rollback(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("roll")
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    assert platform.cli("deploy", app, "--image", images["v2"]).code == 0
    platform.wait_for(app, body="version two")
    assert platform.cli("rollback", app).code == 0
    platform.wait_for(app, body="version one")
    releases = platform.cli("releases", app, "--json").json()
    assert [(r["version"], r["status"]) for r in releases] == [
        (3, "active"),
        (2, "superseded"),
        (1, "superseded"),
    ]
    assert "v1" in releases[0]["description"]
    assert platform.cli("rollback", app, "v2").code == 0
    platform.wait_for(app, body="version two")
    bad = platform.cli("rollback", app, "99")
    assert bad.code != 0 and "v99" in bad.err and "Traceback" not in bad.err
    platform.cli("rm", app, "--yes")


def test_config_makes_releases(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("cfg")
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    assert platform.cli("config", "set", app, "GREETING=hi there", "MODE=prod").code == 0
    assert platform.cli("config", app, "--json").json() == {"GREETING": "hi there", "MODE": "prod"}
    insts = platform.wait_ready(app, 1)
    env = kit.docker_client().containers.get(insts[0]["id"]).attrs["Config"]["Env"]
    assert "GREETING=hi there" in env and "PORT=80" in env
    assert platform.cli("config", "unset", app, "MODE").code == 0
    assert platform.cli("config", app, "--json").json() == {"GREETING": "hi there"}
    assert [r["version"] for r in platform.cli("releases", app, "--json").json()] == [3, 2, 1]
    bad = platform.cli("config", "set", app, "NOT VALID")
    assert bad.code != 0 and "KEY=VALUE" in bad.err
    platform.cli("rm", app, "--yes")


def test_domains(platform: kit.Platform, images: dict[str, str]) -> None:
    app, other = name("dom"), name("dom")
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    assert platform.cli("deploy", other, "--image", images["v2"]).code == 0
    domain = f"{app}.example.test"
    assert platform.cli("domains", "add", app, domain).code == 0
    listed = platform.cli("domains", "ls", app, "--json").json()
    assert [d["domain"] for d in listed] == [domain]  # with its certificate state (none yet, offline)
    platform.wait_for(domain, body="version one")
    taken = platform.cli("domains", "add", other, domain)
    assert taken.code != 0 and "already belongs" in taken.err
    assert platform.cli("domains", "rm", app, domain).code == 0
    platform.wait_for(domain, status=404)
    platform.cli("rm", other, "--yes")
    platform.cli("rm", app, "--yes")


def test_stop_start_restart(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("life")
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    first = platform.wait_ready(app, 1)[0]["id"]
    assert platform.cli("stop", app).code == 0
    assert platform.instances(app) == []
    assert platform.get(app) == (503, f"app {app} is stopped (mypaas start {app})\n")
    assert platform.cli("start", app).code == 0
    platform.wait_for(app, body="version one")
    started = platform.wait_ready(app, 1)[0]["id"]
    assert started != first
    assert platform.cli("restart", app).code == 0
    restarted = platform.wait_ready(app, 1)[0]["id"]
    assert restarted != started
    platform.wait_for(app, body="version one")
    platform.cli("rm", app, "--yes")


def test_logs_show_output(platform: kit.Platform) -> None:
    image = kit.busybox_image(
        "mypaas-test/talker:1",
        cmd=("/bin/sh", "-c", "echo talker says hello; exec httpd -f -p 80 -h /www"),
    )
    app = name("logs")
    assert image
    assert platform.cli("deploy", app, "--image", "mypaas-test/talker:1").code == 0
    out = platform.cli("logs", app, "web", "--tail", "10")
    assert out.code == 0 and "talker says hello" in out.out
    missing = platform.cli("logs", app, "nosuchservice")
    assert missing.code != 0 and "nosuchservice" in missing.err
    platform.cli("rm", app, "--yes")


def test_api_needs_token(platform: kit.Platform) -> None:
    r = platform.raw("GET", "/api/v1/apps", headers={"Authorization": ""})
    assert r.status_code == 401 and "error" in r.json()
    r = platform.raw("GET", "/api/v1/apps", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert platform.raw("GET", "/api/v1/openapi.json").json()["info"]["title"] == "MyPaas"
    assert json.loads(platform.raw("GET", "/api/v1/health").text)["status"] == "ok"
    assert platform.cli("status").code == 0
