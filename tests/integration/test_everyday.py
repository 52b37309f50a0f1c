"""Issue 11, slice E, on the real engine and Caddy: the health probes' User-Agent seen by a real app and
left out of `logs`; deploying the running release again restarts nothing; a stopped app says so."""

from __future__ import annotations

import http.client
import secrets
import subprocess
import sys
import threading

import pytest

from tests import kit

pytestmark = pytest.mark.integration

# busybox httpd runs /cgi-bin/index.cgi for "/" (no index.html): it writes each request's User-Agent
# to its stderr, the container's log, as an access log would
LOGGING_CGI = (
    "#!/bin/sh\n"
    'echo "request from: $HTTP_USER_AGENT" >&2\n'
    'printf "Content-Type: text/plain\\r\\n\\r\\nhello\\n"\n'
)


@pytest.fixture(scope="module")
def logging_image() -> str:
    tag = "mypaas-test/ua-log:1"
    kit.busybox_image(
        tag,
        files={"www/cgi-bin/index.cgi": LOGGING_CGI},
        executable=("www/cgi-bin/index.cgi",),
    )
    return tag


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def get_as(platform: kit.Platform, app: str, agent: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", platform.router_port, timeout=3)
    try:
        conn.request("GET", "/", headers={"Host": f"{app}.localhost", "User-Agent": agent})
        return conn.getresponse().status
    finally:
        conn.close()


def test_probe_lines_are_the_probes_and_logs_leaves_them_out(
    platform: kit.Platform, logging_image: str
) -> None:
    app = name("quiet")
    try:
        assert platform.cli("deploy", app, "--image", logging_image, "--port", "80").code == 0
        kit.wait_until(lambda: "request from: MyPaas-probe/" in platform.cli("logs", app, "--probes").out)
        assert get_as(platform, app, "a-real-user/1.0") == 200

        quiet = platform.cli("logs", app)

        assert quiet.code == 0, quiet
        assert "request from: a-real-user/1.0" in quiet.out
        assert "MyPaas-probe" not in quiet.out
        last = platform.cli("logs", app, "--tail", "1").out.splitlines()
        assert len(last) == 1 and last[0].endswith("request from: a-real-user/1.0")
    finally:
        platform.cli("rm", app, "--yes")


def test_deploying_the_running_release_again_restarts_nothing(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = name("same")
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        [before] = platform.wait_ready(app, 1)

        again = platform.cli("deploy", app, "--image", images["v1"])

        assert again.code == 0, again
        assert again.out.strip() == "nothing changed: v1 is running"
        assert [i["id"] for i in platform.instances(app)] == [before["id"]]
        assert [r["version"] for r in platform.cli("releases", app, "--json").json()] == [1]
        changed = platform.cli("deploy", app, "--image", images["v2"], "--json")
        assert changed.json()["release"]["description"] == f"web image {images['v2']}"
    finally:
        platform.cli("rm", app, "--yes")


def test_a_stopped_app_answers_that_it_is_stopped(platform: kit.Platform, images: dict[str, str]) -> None:
    app = name("stopped")
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        assert platform.cli("stop", app).code == 0

        kit.wait_served(platform, app, "/", 503, f"app {app} is stopped (mypaas start {app})\n")
    finally:
        platform.cli("rm", app, "--yes")


def test_logs_follow_takes_in_the_instances_of_a_restart(platform: kit.Platform, logging_image: str) -> None:
    """`logs -f` follows the app: after a restart, the new instance's lines come too."""
    app = name("follow")
    follower: subprocess.Popen[str] | None = None
    try:
        assert platform.cli("deploy", app, "--image", logging_image, "--port", "80").code == 0
        follower = subprocess.Popen(
            [sys.executable, "-m", "mypaas.cli.main", "logs", app, "-f"],
            env=platform.env,
            cwd=kit.ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        seen: list[str] = []
        assert follower.stdout is not None
        threading.Thread(target=lambda: seen.extend(follower.stdout or []), daemon=True).start()

        def answered_before() -> bool:
            get_as(platform, app, "before-restart")
            return any("request from: before-restart" in line for line in seen)

        assert kit.wait_until(answered_before, timeout=20)
        before = {i["id"] for i in platform.instances(app)}

        assert platform.cli("restart", app).code == 0
        assert {i["id"] for i in platform.instances(app)} - before  # a new instance serves

        def answered_after_restart() -> bool:
            get_as(platform, app, "after-restart")
            return any("request from: after-restart" in line for line in seen)

        assert kit.wait_until(answered_after_restart, timeout=20)
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(10)
        platform.cli("rm", app, "--yes")
