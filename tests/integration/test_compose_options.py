"""Compose service options on the real engine (docker backend): user, working_dir, ulimits, stop_signal
received by the process, a port bound to 127.0.0.1, a UDP port answering, container_name as an alias."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests import kit

pytestmark = pytest.mark.integration

WEB = """#!/bin/sh
trap 'echo "$ROUND got SIGINT" > /www/state/signal; exit 0' INT
trap 'echo "$ROUND got SIGTERM" > /www/state/signal; exit 0' TERM
httpd -p 80 -h /www
while true; do sleep 1 & wait $!; done
"""
FACTS = """#!/bin/sh
echo "pwd=$(pwd) host=$(hostname)"
while read key value rest; do [ "$key" = "Uid:" ] && echo "uid=$value"; done < /proc/self/status
echo "nofile=$(ulimit -n) hard=$(ulimit -Hn)"
exec sleep 100000
"""
ASK = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc legacy-db 8000
"""
UDP_ECHO = r"""
#include <netinet/in.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(7777);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return 1;
    for (;;) {
        char buf[512];
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n > 0) sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&peer, len);
    }
}
"""

COMPOSE = """
services:
  web:
    image: mypaas-test/opts:2
    command: ["/web.sh"]
    ports: ["80"]
    environment: {{ROUND: {round}}}
    stop_signal: SIGINT
    stop_grace_period: 20s
    volumes: ["state:/www/state"]
  worker:
    image: mypaas-test/opts:2
    command: ["/facts.sh"]
    user: "1000:1000"
    working_dir: /tmp
    ulimits:
      nofile: {{soft: 1024, hard: 2048}}
    hostname: facts
    restart: on-failure:3
    shm_size: 32m
    extra_hosts: ["db.local:10.1.2.3"]
    logging: {{driver: local}}
    cap_drop: [NET_RAW]
    sysctls: {{net.core.somaxconn: 512}}
  legacy:
    image: mypaas-test/opts:2
    container_name: legacy-db
    command: ["httpd", "-f", "-p", "8000", "-h", "/legacy"]
  local:
    image: mypaas-test/opts:2
    ports: ["127.0.0.1:{local}:80"]
  echo:
    image: mypaas-test/udpecho:2
    ports: ["{udp}:7777/udp"]
volumes:
  state: {{}}
"""


@pytest.fixture(scope="module")
def option_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    kit.busybox_image(
        "mypaas-test/opts:2",
        files={
            "www/index.html": "options\n",
            "www/cgi-bin/ask": ASK,
            "legacy/index.html": "legacy here\n",
            "web.sh": WEB,
            "facts.sh": FACTS,
        },
        executable=("www/cgi-bin/ask", "web.sh", "facts.sh"),
    )
    _udp_echo_image(tmp_path_factory.mktemp("udpecho"))
    yield


def _udp_echo_image(folder: Path) -> None:
    """A UDP echo server on port 7777: a static binary over the busybox image (busybox nc has no UDP)."""
    client = kit.docker_client()
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get("mypaas-test/udpecho:2")
        return
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the UDP echo server (scripts/install.sh --test installs it)")
    (folder / "echo.c").write_text(UDP_ECHO)
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(folder / "udpecho"), str(folder / "echo.c")], check=True
    )
    (folder / "Dockerfile").write_text('FROM mypaas-test/opts:2\nCOPY udpecho /udpecho\nCMD ["/udpecho"]\n')
    client.images.build(path=str(folder), tag="mypaas-test/udpecho:2", rm=True)


def _container(platform: kit.Platform, app: str, service: str) -> Any:
    inst = next(i for i in platform.instances(app) if i["service"] == service)
    return kit.docker_client().containers.get(inst["id"])


def _udp_answer(port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(b"ping", ("127.0.0.1", port))
        try:
            return sock.recvfrom(512)[0]
        except TimeoutError:
            return b""


def test_service_options_on_the_engine(platform: kit.Platform, option_images: None, tmp_path: Path) -> None:
    app = f"opts-{secrets.token_hex(3)}"
    local, udp = kit.free_port(), kit.free_port()
    compose = tmp_path / "compose.yml"
    compose.write_text(COMPOSE.format(round="one", local=local, udp=udp))
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code == 0, r
    assert "legacy-db" in r.out + r.err  # the container_name warning
    platform.wait_ready(app, 5)

    # user, working_dir and ulimits, as the process sees them and as the engine has them
    worker = _container(platform, app, "worker")
    logs = kit.wait_until(lambda: (text := worker.logs().decode()) and "nofile=" in text and text)
    assert "pwd=/tmp host=facts" in logs and "uid=1000" in logs and "nofile=1024 hard=2048" in logs, logs
    assert worker.attrs["Config"]["User"] == "1000:1000" and worker.attrs["Config"]["WorkingDir"] == "/tmp"
    host = worker.attrs["HostConfig"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["ShmSize"] == 32 << 20 and host["ExtraHosts"] == ["db.local:10.1.2.3"]
    assert host["LogConfig"]["Type"] == "local" and host["CapDrop"] == ["CAP_NET_RAW"]
    assert host["Sysctls"] == {"net.core.somaxconn": "512"}

    # container_name: another service reaches the service by it
    status, body = platform.get(app, "/cgi-bin/ask")
    assert status == 200 and "legacy here" in body, body

    # a port bound to 127.0.0.1: answers there, not on the host's other addresses
    with socket.create_connection(("127.0.0.1", local), timeout=3):
        pass
    with pytest.raises(OSError), socket.create_connection((kit.host_address(), local), timeout=3):
        pass
    bindings = _container(platform, app, "local").attrs["HostConfig"]["PortBindings"]
    assert bindings == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(local)}]}

    # a UDP port answers
    assert kit.wait_until(lambda: _udp_answer(udp), timeout=10) == b"ping"

    # stop_signal: the old web instance gets SIGINT when a new release replaces it
    compose.write_text(COMPOSE.format(round="two", local=local, udp=udp))
    r = platform.cli("deploy", app, "-f", str(compose))
    assert r.code == 0, r
    signal = kit.wait_until(lambda: (got := platform.get(app, "/state/signal"))[0] == 200 and got[1])
    assert signal.strip() == "one got SIGINT"
    assert platform.cli("rm", app, "--yes").code == 0
