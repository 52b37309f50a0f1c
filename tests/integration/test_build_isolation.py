"""Issue 13, slice B: builds do not reach this machine. A Dockerfile's ``ADD <url>`` of an internal address
(the platform's API on loopback) is refused before the engine sees it, and a ``RUN`` step cannot reach a
server listening on this machine's own address (the build network, composer/build_network.py), while the
same server answers a container on the engine's default bridge."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import kit

pytestmark = pytest.mark.integration

SECRET = "the-platforms-insides"


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform() as p:
        yield p


@pytest.fixture
def inside() -> Iterator[str]:
    """`ADDRESS PORT` of a server on this machine's Docker bridge address answering SECRET: stands in
    for an endpoint of the platform that listens beyond loopback (the API, the registry or the mirror in
    cluster mode)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = SECRET.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    address = kit.host_address()
    server = ThreadingHTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{address} {server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_add_of_the_platforms_api_is_refused(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"addin-{secrets.token_hex(3)}"
    admin = f"127.0.0.1:{platform.api_port}"  # Caddy's admin API, the first target, is on a unix socket now
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\n\nADD http://{admin}/config/ /www/config\n")

    r = platform.cli("deploy", app, str(tmp_path), "--port", "80")

    assert r.code == 1 and "Traceback" not in r.err, r
    host = admin.split(":", maxsplit=1)[0]
    assert r.err.strip().splitlines()[-1] == (
        f"error: Dockerfile line 3: ADD http://{admin}/config/ is refused: {host} is a loopback address"
    ), r
    kit.wait_until(lambda: app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")])


def test_a_run_step_cannot_reach_this_machine(
    platform: kit.Platform, images: dict[str, str], inside: str, tmp_path: Path
) -> None:
    # stdin stays open a while: busybox nc stops reading once its input ends, before the body comes
    get = f"(printf 'GET / HTTP/1.0\\r\\n\\r\\n'; sleep 2) | nc -w 3 {inside}"
    # the body has no newline of its own: the engine's log can drop a last partial line of a removed container
    control = kit.docker_client().containers.run(images["v1"], ["/bin/sh", "-c", f"{get}; echo"], remove=True)
    assert SECRET in bytes(control).decode()  # the engine's default bridge reaches it: the test can tell

    app = f"runin-{secrets.token_hex(3)}"
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\nRUN {get}; echo got-rc=$?\n")
    try:
        r = platform.cli("deploy", app, str(tmp_path), "--port", "80")
        assert r.code == 0, r  # the build works otherwise
        output = r.out + r.err
        assert "got-rc=1" in output and SECRET not in output, r  # nc timed out: nothing came back
    finally:
        platform.cli("rm", app, "--yes")
