"""The container keys a Swarm task has (compose read_only, dns, dns_search, dns_opt, group_add, pids_limit)
on a real Swarm service (this machine's engine as the manager of a netns host): the engine takes the spec,
runs it, and keeps each option where the compose file put it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Platform, busybox_image, cluster_platform, docker_client, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: mypaas-test/cl-keys:1
    expose: [80]
    read_only: true
    tmpfs: [/tmp]
    dns: [10.0.0.53]
    dns_search: [corp.example]
    dns_opt: [ndots:2]
    group_add: [1234]
    pids_limit: 64
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    busybox_image("mypaas-test/cl-keys:1", files={"www/index.html": "keys"})
    with cluster_platform(1, prefix="mpk", subnet="10.200.17") as pair:
        yield pair


def test_container_keys_reach_the_swarm_service(cl: tuple[Platform, Any], tmp_path: Path) -> None:
    p, _ = cl
    path = tmp_path / "keys.yml"
    path.write_text(COMPOSE)
    r = p.cli("deploy", "keys", "-f", str(path), timeout=180)
    assert r.code == 0, r
    wait_until(lambda: [i for i in p.instances("keys") if i["ready"]], timeout=120)  # the engine runs it
    assert p.get("keys")[1] == "keys"
    service = next(iter(docker_client().services.list(filters={"label": "mypaas.app=keys"})))
    task = service.attrs["Spec"]["TaskTemplate"]
    spec = task["ContainerSpec"]
    assert spec["ReadOnly"] is True and spec["Groups"] == ["1234"]
    assert spec["DNSConfig"] == {
        "Nameservers": ["10.0.0.53"],
        "Search": ["corp.example"],
        "Options": ["ndots:2"],
    }
    assert task["Resources"]["Limits"]["Pids"] == 64
    p.cli("rm", "keys", "--yes", check=True)
