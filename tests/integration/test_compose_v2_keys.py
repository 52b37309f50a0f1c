"""Compose keys docker compose users write, on the real engine (docker backend): mem_limit and cpus as
resource limits, the host's /etc/localtime mounted read-only without allow_host_mounts, and
security_opt no-new-privileges, as the engine has them and as the process sees them."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: {image}
    ports: ["80"]
    mem_limit: 64m
    cpus: 0.5
    volumes: ["/etc/localtime:/etc/localtime:ro"]
    security_opt: ["no-new-privileges:true"]
"""
# the shell's own status (busybox here has no grep)
NO_NEW_PRIVS = 'while read key value; do [ "$key" = NoNewPrivs: ] && echo "$value"; done < /proc/self/status'


def test_v2_limits_zone_file_and_no_new_privileges(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"v2keys-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE.format(image=images["v1"]))
    try:
        r = platform.cli("deploy", app, "-f", str(compose))
        assert r.code == 0, r
        assert "no-new-privileges=true: applied on the docker backend" in r.out + r.err
        platform.wait_ready(app, 1)
        inst = next(i for i in platform.instances(app) if i["service"] == "web")
        web = kit.docker_client().containers.get(inst["id"])
        host = web.attrs["HostConfig"]
        assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000
        assert host["SecurityOpt"] == ["no-new-privileges=true"]
        zone = [m for m in web.attrs["Mounts"] if m["Destination"] == "/etc/localtime"]
        assert zone == [
            {
                "Type": "bind",
                "Source": "/etc/localtime",
                "Destination": "/etc/localtime",
                "Mode": "",
                "RW": False,
                "Propagation": "rprivate",
            }
        ], web.attrs["Mounts"]
        status = web.exec_run(["sh", "-c", NO_NEW_PRIVS]).output.decode()
        assert status.strip() == "1", status
        assert web.exec_run(["cat", "/etc/localtime"]).output == Path("/etc/localtime").read_bytes()
        assert web.exec_run(["sh", "-c", "echo x >> /etc/localtime"]).exit_code != 0
    finally:
        platform.cli("rm", app, "--yes")
