"""The platform converges again after the manager is killed, and replaces instances killed outside it."""

from __future__ import annotations

import secrets

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
