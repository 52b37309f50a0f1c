"""The registry follows the roles, for real: Distribution with the manager's token service, the docker
CLI logged in with scoped MyPaas tokens (one DOCKER_CONFIG folder per login). A deployer of team a pushes
to its app's repository and is refused team b's and ``mypaas/debian``; a viewer pulls but cannot push;
the hosts' pull token pulls only."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.manager.identity.policy import Role
from tests import kit
from tests.integration.access import identity_of

pytestmark = pytest.mark.integration

REFUSED = ("denied", "unauthorized", "insufficient_scope")


def docker(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real docker CLI with its own config folder (its login is that folder's only)."""
    return subprocess.run(
        ["docker", "--config", str(config), *args], input=stdin, capture_output=True, text=True, check=False
    )


def login(config: Path, registry: str, user: str, token: str) -> Path:
    done = docker(config, "login", registry, "-u", user, "--password-stdin", stdin=token)
    assert done.returncode == 0, done.stderr
    return config


def refused(done: subprocess.CompletedProcess[str]) -> bool:
    text = (done.stdout + done.stderr).lower()
    return done.returncode != 0 and any(word in text for word in REFUSED)


@pytest.fixture
def teams(platform: kit.Platform, images: dict[str, str]) -> Iterator[dict[str, str]]:
    """Teams a and b with an app each (deployed, so its image is in the registry), a deployer's and a
    viewer's scoped token in team a; the apps and every local tag of the registry removed afterwards."""
    tag = secrets.token_hex(3)
    names = {"a": f"ta-{tag}", "b": f"tb-{tag}", "app_a": f"ra-{tag}", "app_b": f"rb-{tag}"}
    registry = platform.env["MYPAAS_REGISTRY_ADDR"]
    try:
        with identity_of(platform) as (ident, admin):
            for team in ("a", "b"):
                ident.add_team(names[team])
            for user, role in ((f"dep-{tag}", Role.DEPLOYER), (f"view-{tag}", Role.VIEWER)):
                ident.add_user(user, None)
                ident.add_member(names["a"], user, role)
                token = ident.create_token(admin, "registry", user=user, team=names["a"], role=role)
                names[role.label] = token.secret
        for team in ("a", "b"):
            op = platform.api(
                "POST",
                f"/api/v1/apps/{names[f'app_{team}']}/deploys",
                params={"team": names[team]},
                json={"image": images["v1"]},
            )
            assert platform.wait_op(op)["status"] == "succeeded"
        yield names
    finally:
        for app in (names["app_a"], names["app_b"]):
            platform.cli("rm", app, "--yes")
        kit.untag(f"{registry}/")


def test_a_deployer_pushes_only_to_its_apps_repository(
    platform: kit.Platform, teams: dict[str, str], images: dict[str, str], tmp_path: Path
) -> None:
    registry = platform.env["MYPAAS_REGISTRY_ADDR"]
    config = login(tmp_path / "deployer", registry, "dep", teams["deployer"])
    mine, theirs, base = (
        f"{registry}/{teams['app_a']}/web:pushed",
        f"{registry}/{teams['app_b']}/web:pushed",
        f"{registry}/mypaas/debian:pushed",
    )
    for ref in (mine, theirs, base):
        assert docker(config, "tag", images["v1"], ref).returncode == 0

    pushed = docker(config, "push", mine)
    assert pushed.returncode == 0, pushed.stderr
    assert refused(docker(config, "push", theirs))
    assert refused(docker(config, "push", base))

    tags = {(r["repository"], r["tag"]) for r in platform.api("GET", "/api/v1/images")}
    assert (f"{teams['app_a']}/web", "pushed") in tags
    assert (f"{teams['app_b']}/web", "pushed") not in tags and ("mypaas/debian", "pushed") not in tags


def test_a_viewer_pulls_its_apps_image_but_cannot_push(
    platform: kit.Platform, teams: dict[str, str], images: dict[str, str], tmp_path: Path
) -> None:
    registry = platform.env["MYPAAS_REGISTRY_ADDR"]
    deployed = kit.wait_until(
        lambda: platform.api("GET", f"/api/v1/apps/{teams['app_a']}/releases")[0]["images"]["web"]["registry"]
    )
    other = kit.wait_until(
        lambda: platform.api("GET", f"/api/v1/apps/{teams['app_b']}/releases")[0]["images"]["web"]["registry"]
    )
    config = login(tmp_path / "viewer", registry, "view", teams["viewer"])

    pulled = docker(config, "pull", deployed)
    assert pulled.returncode == 0, pulled.stderr
    assert refused(docker(config, "pull", other))  # team b's: not even a pull
    ref = f"{registry}/{teams['app_a']}/web:viewer"
    assert docker(config, "tag", images["v1"], ref).returncode == 0
    assert refused(docker(config, "push", ref))

    hosts = login(tmp_path / "hosts", registry, "mypaas", (platform.home / "registry-pull-token").read_text())
    kit.untag(f"{registry}/{teams['app_b']}/")
    assert docker(hosts, "pull", other).returncode == 0  # the hosts pull whatever they run
    assert refused(docker(hosts, "push", ref))
