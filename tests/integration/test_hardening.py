"""Container hardening on the real engine: an app's container gets the platform's pids limit, memory
limit and no-new-privileges; a fork bomb in a container with a small pids limit stops at the limit and
the host is not affected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def test_a_container_gets_the_hardening_defaults(platform: kit.Platform, images: dict[str, str]) -> None:
    platform.cli("deploy", "hardened", "--image", images["v1"], check=True)
    inst = platform.wait_ready("hardened", 1)[0]

    host = kit.docker_client().containers.get(inst["id"]).attrs["HostConfig"]

    assert (host["PidsLimit"], host["Memory"], host["SecurityOpt"]) == (
        1024,
        2**30,
        ["no-new-privileges=true"],
    )


def test_a_fork_bomb_stops_at_the_pids_limit(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text(f"services:\n  web:\n    image: {images['v1']}\n    pids_limit: 20\n")
    platform.cli("deploy", "forkbomb", "-f", str(compose), check=True)
    inst = platform.wait_ready("forkbomb", 1)[0]

    bomb = subprocess.run(
        [
            "docker",
            "exec",
            inst["id"],
            "sh",
            "-c",
            "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; wait",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert "can't fork" in bomb.stderr or "Resource temporarily unavailable" in bomb.stderr, bomb
    assert subprocess.run(["true"], check=False).returncode == 0  # the host still makes processes
