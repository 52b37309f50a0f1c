"""The platform converges again after the manager is killed, and replaces instances killed outside it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def test_manager_killed_mid_deploy_converges(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"kill-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    platform.wait_for(app, body="version one")
    op = platform.api("POST", f"/api/v1/apps/{app}/deploys", json={"image": images["slow"], "port": 80})
    kit.wait_until(lambda: any(i["release"] == 2 for i in platform.instances(app)), timeout=10)
    platform.kill_manager()  # the new instance is starting (it sleeps 3 s): the rollout is half done
    assert platform.get(app)[1].strip() == "version one"  # the router and apps keep serving
    platform.up()
    done = platform.wait_op(op)
    assert done["status"] == "succeeded", done["message"]
    platform.wait_for(app, body="slow version")
    kit.wait_until(lambda: [i["release"] for i in platform.instances(app)] == [2])
    platform.cli("rm", app, "--yes")


def test_removed_container_is_replaced_and_routed(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"heal-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    first = platform.wait_ready(app, 1)[0]
    kit.docker_client().containers.get(first["id"]).remove(force=True)
    kit.wait_until(lambda: [i for i in platform.instances(app) if i["ready"] and i["id"] != first["id"]])
    platform.wait_for(app, body="version one", timeout=10)
    platform.cli("rm", app, "--yes")


def test_killed_container_comes_back(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"crash-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    first = platform.wait_ready(app, 1)[0]
    kit.docker_client().containers.get(first["id"]).kill()
    platform.wait_for(app, body="version one", timeout=15)
    assert len(platform.wait_ready(app, 1)) == 1
    platform.cli("rm", app, "--yes")


def test_an_instance_failing_its_probe_leaves_the_router_and_is_replaced(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"probe-{secrets.token_hex(3)}"
    image = kit.busybox_image(
        "mypaas-test/probed:1",
        files={"www/index.html": "probed\n", "www/healthz": "ok\n"},
    )
    assert image
    (tmp_path / "c.yml").write_text(
        "services:\n  web:\n    image: mypaas-test/probed:1\n    ports: ['80']\n"
        "    x-mypaas-probe: {http: /healthz, status: 200, interval: 1s, retries: 2}\n"
    )
    assert platform.cli("deploy", app, "-f", str(tmp_path / "c.yml")).code == 0
    first = platform.wait_ready(app, 1)[0]
    platform.wait_for(app, body="probed")
    sick = ["/bin/busybox", "rm", "/www/healthz"]  # its health endpoint goes away
    kit.docker_client().containers.get(first["id"]).exec_run(sick)
    platform.wait_for(app, status=503, timeout=10)  # out of the router within a few seconds
    replaced = kit.wait_until(
        lambda: [i for i in platform.instances(app) if i["id"] != first["id"] and i["ready"]], timeout=40
    )
    assert replaced
    platform.wait_for(app, body="probed")
    events = platform.cli("events", app, "--json")
    assert events.code == 0 and "instance_replaced" in events.out
    platform.cli("rm", app, "--yes")
