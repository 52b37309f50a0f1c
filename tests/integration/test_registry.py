"""The private registry for real: Distribution with the manager as token issuer, the docker CLI as
client, releases published by digest, listing, removal, retention and garbage collection."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def docker(*args: str, config: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real docker CLI with its own config folder (so logins don't touch the user's)."""
    return subprocess.run(
        ["docker", "--config", str(config), *args], input=stdin, capture_output=True, text=True, check=False
    )


@pytest.fixture
def docker_config(tmp_path: Path) -> Path:
    return tmp_path / "docker-config"


@pytest.fixture
def registry(platform: kit.Platform) -> Iterator[str]:
    addr = platform.env["MYPAAS_REGISTRY_ADDR"]
    yield addr
    kit.untag(f"{addr}/")


def test_docker_login_push_pull(
    platform: kit.Platform, registry: str, images: dict[str, str], docker_config: Path
) -> None:
    refused = docker(
        "login", registry, "-u", "someone", "--password-stdin", config=docker_config, stdin="wrong\n"
    )
    assert refused.returncode != 0 and "unauthorized" in (refused.stderr + refused.stdout).lower()
    anonymous = docker("push", f"{registry}/nobody/x:1", config=docker_config)
    assert anonymous.returncode != 0
    login = docker(
        "login", registry, "-u", "me", "--password-stdin", config=docker_config, stdin=platform.token
    )
    assert login.returncode == 0, login.stderr
    repo = f"{registry}/team/web-{secrets.token_hex(3)}"
    assert docker("tag", images["v1"], f"{repo}:1", config=docker_config).returncode == 0
    pushed = docker("push", f"{repo}:1", config=docker_config)
    assert pushed.returncode == 0, pushed.stderr
    assert docker("rmi", f"{repo}:1", config=docker_config).returncode == 0
    pulled = docker("pull", f"{repo}:1", config=docker_config)
    assert pulled.returncode == 0, pulled.stderr
    listed = platform.cli("image", "ls", repo.removeprefix(f"{registry}/"), "--json").json()
    assert [(r["tag"], r["digest"][:7]) for r in listed] == [("1", "sha256:")]


def test_token_scopes(platform: kit.Platform) -> None:
    r = platform.raw(
        "GET",
        "/api/v1/registry/token",
        params={"service": "mypaas-registry", "scope": "repository:a/b:pull,push"},
        auth=("me", platform.token),
    )
    assert r.status_code == 200
    import jwt

    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": ["pull", "push"]}]
    assert claims["aud"] == "mypaas-registry"
    bad = platform.raw("GET", "/api/v1/registry/token", auth=("me", "not-a-token"))
    assert bad.status_code == 401 and "error" in bad.json()
    bad_scope = platform.raw(
        "GET", "/api/v1/registry/token", params={"scope": "nonsense"}, auth=("me", platform.token)
    )
    assert bad_scope.status_code == 400 and bad_scope.json()["field"] == "scope"


def test_the_pull_token_only_pulls(platform: kit.Platform) -> None:
    """A cluster's hosts pull with a token of their own: pull from the registry, nothing else."""
    import jwt

    pull = (platform.home / "registry-pull-token").read_text().strip()
    assert oct((platform.home / "registry-pull-token").stat().st_mode & 0o777) == "0o600"
    r = platform.raw(
        "GET",
        "/api/v1/registry/token",
        params={"service": "mypaas-registry", "scope": "repository:a/b:pull,push,delete"},
        auth=("mypaas", pull),
    )
    assert r.status_code == 200
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    # a/b is no app's repository: the hosts pull only what apps run (tests/unit/test_registry_access.py)
    assert claims["access"] == [{"type": "repository", "name": "a/b", "actions": []}]
    catalog = platform.raw(
        "GET", "/api/v1/registry/token", params={"scope": "registry:catalog:*"}, auth=("mypaas", pull)
    )
    assert (
        jwt.decode(catalog.json()["token"], options={"verify_signature": False})["access"][0]["actions"] == []
    )
    api = platform.raw("GET", "/api/v1/apps", headers={"Authorization": f"Bearer {pull}"})
    assert api.status_code == 403 and "only pull" in api.json()["error"]  # a valid token: forbidden


def test_releases_are_published_by_digest(
    platform: kit.Platform, registry: str, images: dict[str, str], docker_config: Path
) -> None:
    app = f"pub-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    ref = kit.wait_until(
        lambda: platform.cli("releases", app, "--json").json()[0]["images"]["web"]["registry"]
    )
    assert ref.startswith(f"{registry}/{app}/web@sha256:")
    listed = platform.cli("image", "ls", f"{app}/web", "--json").json()
    assert [r["tag"] for r in listed] == ["v1"] and ref.endswith(listed[0]["digest"])
    # any host can pull exactly what was deployed: pull it by digest with a fresh docker login
    docker("login", registry, "-u", "me", "--password-stdin", config=docker_config, stdin=platform.token)
    pulled = docker("pull", ref, config=docker_config)
    assert pulled.returncode == 0, pulled.stderr
    platform.cli("rm", app, "--yes")


def test_retention_rm_and_gc(registry: str, images: dict[str, str]) -> None:
    with kit.running_platform(registry_keep_releases=2) as p:
        app = f"keep-{secrets.token_hex(3)}"
        third = "mypaas-test/web:v3"
        kit.web_image(third, "version three")
        for ref in (images["v1"], images["v2"], third):
            assert p.cli("deploy", app, "--image", ref).code == 0
            version = p.cli("releases", app, "--json").json()[0]["version"]
            kit.wait_until(lambda v=version: f"v{v}" in [r["tag"] for r in p.api("GET", "/api/v1/images")])
        # v1 fell out of the last 2 releases, but v3 holds the same image: the digest must stay
        tags = kit.wait_until(
            lambda: sorted(r["tag"] for r in p.cli("image", "ls", f"{app}/web", "--json").json())
        )
        assert "v3" in tags and "v2" in tags
        status = p.cli("registry", "status", "--json").json()
        assert status["healthy"] and status["disk_bytes"] > 0
        removed = p.cli("image", "rm", f"{app}/web:v2")
        assert removed.code == 0, removed
        gc = p.cli("registry", "gc", "--json")
        assert gc.code == 0, gc
        after = gc.json()
        assert after["freed_bytes"] > 0 and after["disk_bytes"] < status["disk_bytes"]
        assert p.cli("registry", "status", "--json").json()["healthy"]  # writable again after gc
        missing = p.cli("image", "rm", f"{app}/web:v99")
        assert missing.code == 1 and "error:" in missing.err
        p.cli("rm", app, "--yes")


def test_registry_is_supervised(platform: kit.Platform) -> None:
    pid = int((platform.home / "registry" / "registry.pid").read_text())
    os.kill(pid, 9)
    kit.wait_until(lambda: platform.cli("registry", "status", "--json").json()["healthy"], timeout=15)
