"""Fixtures for tests against the real Docker engine and Caddy: a platform per module, test images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import kit


@pytest.fixture(scope="session", autouse=True)
def _engine() -> None:
    client = kit.docker_client()
    client.ping()


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform() as p:
        yield p


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Test images, made locally (no registry pulls): two versions of a web server and a crasher."""
    return {
        "v1": kit.web_image("mypaas-test/web:v1", "version one") and "mypaas-test/web:v1",
        "v2": kit.web_image("mypaas-test/web:v2", "version two") and "mypaas-test/web:v2",
        "crash": kit.busybox_image(
            "mypaas-test/crash:1", cmd=("/bin/sh", "-c", "echo boom: cannot start; exit 3")
        )
        and "mypaas-test/crash:1",
        "slow": kit.busybox_image(
            "mypaas-test/slow:1",
            files={"www/index.html": "slow version\n"},
            cmd=("/bin/sh", "-c", "sleep 3; exec httpd -f -p 80 -h /www"),
        )
        and "mypaas-test/slow:1",
    }


@pytest.fixture(scope="session")
def vcsim() -> Iterator[Any]:
    """VMware's vSphere simulator with a template, its VMs made real hosts (tests/vcsim/harness.py);
    stopped at the end with every VM container and test host it made."""
    from tests.vcsim.harness import running_vcsim

    with running_vcsim(kit.free_port()) as sim:
        yield sim
