"""More compose container keys on the real engine (docker backend): read_only (with a tmpfs to write in),
dns, dns_search, group_add, pids_limit and cpu_shares, as the process sees them and as the engine has them."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

FACTS = """#!/bin/sh
if touch /root-write 2>/dev/null; then echo "root=writable"; else echo "root=read-only"; fi
if touch /tmp/ok 2>/dev/null; then echo "tmp=writable"; fi
while read key value; do [ "$key" = "Groups:" ] && echo "groups=$value"; done < /proc/self/status
echo "pids=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
exec httpd -f -p 80 -h /www
"""

COMPOSE = """
services:
  web:
    image: mypaas-test/ckeys:1
    command: ["/facts.sh"]
    ports: ["80"]
    read_only: true
    tmpfs: [/tmp]
    dns: [10.0.0.53]
    dns_search: [corp.example]
    group_add: [1234]
    pids_limit: 64
    cpu_shares: 512
"""


def test_container_keys_on_the_engine(platform: kit.Platform, tmp_path: Path) -> None:
    kit.busybox_image(
        "mypaas-test/ckeys:1",
        files={"www/index.html": "keys\n", "facts.sh": FACTS},
        executable=("facts.sh",),
    )
    app = f"ckeys-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE)
    try:
        r = platform.cli("deploy", app, "-f", str(compose))
        assert r.code == 0, r
        (inst,) = platform.wait_ready(app, 1)
        status, body = platform.get(app, "/")
        assert status == 200 and body == "keys\n"

        container = kit.docker_client().containers.get(inst["id"])
        logs = kit.wait_until(lambda: (text := container.logs().decode()) and "pids=" in text and text)
        assert "root=read-only" in logs and "tmp=writable" in logs, logs
        groups = next(line for line in logs.splitlines() if line.startswith("groups="))
        assert "1234" in groups.removeprefix("groups=").split(), logs
        assert "pids=64" in logs, logs
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["PidsLimit"] == 64 and host["CpuShares"] == 512
        assert host["Dns"] == ["10.0.0.53"] and host["DnsSearch"] == ["corp.example"]
        assert host["GroupAdd"] == ["1234"]
    finally:
        platform.cli("rm", app, "--yes")
