"""The seed's question, "when registry down, docker-image can be downloaded?", answered for real:
a local registry plays the upstream, the engine pulls through the MyPaas mirror, the upstream stops."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.registry.distribution import Distribution
from tests import kit

pytestmark = pytest.mark.integration


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Distribution]:
    reg = Distribution(
        name="upstream",
        addr=f"127.0.0.1:{kit.free_port()}",
        folder=tmp_path / "upstream",
        log_path=tmp_path / "upstream.log",
        auth=None,
    )
    reg.ensure_running()
    try:
        yield reg
    finally:
        reg.stop()
        reg.close()


def engine_mirrors() -> list[str]:
    info = json.loads(sh("docker", "info", "--format", "{{json .RegistryConfig.Mirrors}}").stdout or "[]")
    return [m.rstrip("/") for m in info or []]


def test_pull_through_the_mirror_survives_an_upstream_outage(
    platform: kit.Platform, upstream: Distribution, images: dict[str, str]
) -> None:
    name = f"mptest-{secrets.token_hex(3)}"  # pulled as docker.io/library/NAME: what mirrors serve
    up_ref = f"{upstream.addr}/library/{name}"
    local = [f"{name}:1", f"{name}:2", f"{up_ref}:1", f"{up_ref}:2"]
    try:
        for tag in ("1", "2"):
            assert (
                sh("docker", "tag", images["v1" if tag == "1" else "v2"], f"{up_ref}:{tag}").returncode == 0
            )
            pushed = sh("docker", "push", f"{up_ref}:{tag}")
            assert pushed.returncode == 0, pushed.stderr
        enabled = platform.cli("registry", "mirror", "enable", "--upstream", upstream.url, "--json")
        assert enabled.code == 0, enabled
        mirror_url = f"http://{platform.env['MYPAAS_MIRROR_ADDR']}"
        assert mirror_url in engine_mirrors()
        sh("docker", "rmi", "-f", *local)

        first = sh("docker", "pull", f"{name}:1")  # the engine asks the mirror, which fetches upstream
        assert first.returncode == 0, first.stderr
        digest = json.loads(sh("docker", "inspect", f"{name}:1").stdout)[0]["RepoDigests"][0].split("@")[1]

        upstream.stop()  # the outage
        sh("docker", "rmi", "-f", f"{name}:1")
        by_tag = sh("docker", "pull", f"{name}:1")
        assert by_tag.returncode == 0, by_tag.stderr
        sh("docker", "rmi", "-f", f"{name}:1", f"{name}@{digest}")
        by_digest = sh("docker", "pull", f"{name}@{digest}")
        assert by_digest.returncode == 0, by_digest.stderr
        never_pulled = sh("docker", "pull", f"{name}:2")  # not in the cache: needs the upstream
        assert never_pulled.returncode != 0

        status = platform.cli("registry", "status", "--json").json()["mirror"]
        assert status["enabled"] and status["healthy"] and status["disk_bytes"] > 0
        disabled = platform.cli("registry", "mirror", "disable")
        assert disabled.code == 0, disabled
        assert mirror_url not in engine_mirrors()
    finally:
        platform.raw("DELETE", "/api/v1/registry/mirror")
        kit.untag(name)  # tags only: the images themselves are the shared test images
        kit.untag(up_ref)


def test_bad_upstream_is_refused(platform: kit.Platform) -> None:
    r = platform.cli("registry", "mirror", "enable", "--upstream", "ftp://nowhere")
    assert r.code == 1 and "upstream" in r.err
    assert platform.api("GET", "/api/v1/registry/status")["mirror"]["enabled"] is False
