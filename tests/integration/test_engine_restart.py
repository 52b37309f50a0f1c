"""The Docker engine restarted under a running platform (`kill` of dockerd, then started again): every
app serves again, with no duplicate instance, the router follows the containers, and the event log says
what happened. The engine this test found is started again whatever happens (the same way
scripts/install.sh starts it), and it runs under the shared engine lock like every integration test."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

PID_FILE = Path("/var/run/docker.pid")
LOG = Path("/var/log/mypaas-dockerd.log")  # where scripts/install.sh logs the dockerd it starts


def engine_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie: dead, not yet reaped by its parent
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]
    return False


class Engine:
    """This mount namespace's dockerd (the one at /var/run/docker.sock), stopped and started again."""

    def __init__(self) -> None:
        self.pid = int(PID_FILE.read_text().strip())
        self.argv = Path(f"/proc/{self.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        assert self.argv and self.argv[0].endswith(b"dockerd"), self.argv

    def kill(self) -> None:
        """`kill` it (SIGTERM: it stops its containers and exits) and wait until it has gone."""
        os.kill(self.pid, signal.SIGTERM)
        kit.wait_until(lambda: not alive(self.pid), timeout=90, interval=0.2)

    def start(self) -> None:
        """As scripts/install.sh does where systemd does not run: dockerd in the background, its log
        appended to /var/log/mypaas-dockerd.log; then wait for `docker info`."""
        if alive(self.pid):  # still shutting down (the test failed mid-way): let it finish first
            with contextlib.suppress(AssertionError):
                kit.wait_until(lambda: not alive(self.pid), timeout=90, interval=0.2)
            if alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        with LOG.open("ab") as log:
            proc = subprocess.Popen(
                [arg.decode() for arg in self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this test, as the engine it replaces did
            )
        self.pid = proc.pid
        kit.wait_until(engine_answers, timeout=120, interval=0.5)


@pytest.fixture
def engine() -> Iterator[Engine]:
    assert engine_answers(), "no Docker engine answers"
    found = Engine()
    try:
        yield found
    finally:
        if not engine_answers():
            found.start()


def serving_hosts(platform: kit.Platform, app: str, tries: int = 30) -> set[str]:
    """The container hostnames answering through the router (each instance writes its own)."""
    seen = set()
    for _ in range(tries):
        status, body = platform.get(app, "/id.html")
        if status == 200:
            seen.add(body.strip())
    return seen


def containers(platform: kit.Platform, app: str) -> dict[str, str]:
    """The app's running containers on the engine: hostname -> id."""
    client = kit.docker_client()
    label = [f"mypaas.platform={platform.platform_id}", f"mypaas.app={app}"]
    return {c.attrs["Config"]["Hostname"]: c.id for c in client.containers.list(filters={"label": label})}


def events(platform: kit.Platform) -> list[str]:
    return [e["kind"] for e in platform.api("GET", "/api/v1/events", params={"limit": 500})]


def test_the_platform_comes_back_after_an_engine_restart(
    platform: kit.Platform, images: dict[str, str], engine: Engine
) -> None:
    two, one = f"er2-{secrets.token_hex(3)}", f"er1-{secrets.token_hex(3)}"
    platform.cli("deploy", two, "--image", images["v1"], check=True)
    platform.cli("scale", two, "web=2", check=True)
    platform.cli("deploy", one, "--image", images["v2"], check=True)
    platform.wait_ready(two, 2)
    platform.wait_ready(one, 1)
    platform.wait_for(two, body="version one")
    platform.wait_for(one, body="version two")

    engine.kill()
    kit.wait_until(lambda: "engine_unreachable" in events(platform), timeout=60)
    engine.start()

    kit.wait_until(lambda: "engine_back" in events(platform), timeout=60)
    for app, n, body in ((two, 2, "version one"), (one, 1, "version two")):
        platform.wait_for(app, body=body, timeout=60)
        platform.wait_ready(app, n, timeout=60)
        running = containers(platform, app)
        assert len(running) == n, running  # no duplicate: what ran before came back, or was replaced
        # the router follows: every answer comes from a container running now, and every one answers
        kit.wait_until(lambda app=app, running=running: serving_hosts(platform, app) == set(running))
    kinds = events(platform)
    assert kinds.index("engine_unreachable") < kinds.index("engine_back"), kinds
    status = platform.cli("status", "--json").json()
    assert status["components"]["engine"]["healthy"], status
    assert [i["ready"] for i in platform.instances(two)] == [True, True]

    if not Path("/run/systemd/system").is_dir():  # where systemd runs, it would install the unit
        boot = [line for line in platform.cli("up", "--boot", check=True).out.splitlines() if "boot" in line]
        assert len(boot) == 1 and boot[0].startswith("at boot: no systemd here"), boot
        assert f"MYPAAS_HOME={platform.home}" in boot[0] and " up` to this machine's init system" in boot[0]
    for app in (two, one):
        platform.cli("rm", app, "--yes", check=True)
