"""Deploys that fail say why, and fast, on the real engine: a health check that cannot run fails the
rollout at once with the engine's reason, a probe that never passes shows its last error, a service
that exits at once fails the rollout by the crash-loop rule (long before the deadline), and a failed
build shows its log once with the error as its last line."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

DEADLINE_S = 20  # the rollout deadline of this module's platform
PROGRESS = r"web: 0/1 ready, restarted \d+\u00d7 \(exit 3\)"


@pytest.fixture(scope="module")
def platform() -> Iterator[kit.Platform]:
    with kit.running_platform(deploy_timeout_s=DEADLINE_S) as p:
        yield p


def failed(r: kit.Result) -> list[str]:
    """A failed deploy: exit code 1, no traceback; its stderr lines."""
    assert r.code == 1, r
    assert "Traceback" not in r.err
    return r.err.splitlines()


def gone(platform: kit.Platform, app: str) -> None:
    kit.wait_until(lambda: app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")])


def test_a_health_check_that_cannot_run_fails_the_rollout_at_once(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"nowget-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(
        f"services:\n  web:\n    image: {images['v1']}\n    expose: [80]\n"
        "    healthcheck:\n      test: [CMD, wget, -q, -O-, http://localhost/]\n      interval: 1s\n"
    )

    lines = failed(platform.cli("deploy", app, "-f", str(compose)))

    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    # given up by the rule, with the engine's reason: not "did not become healthy in time" at the deadline
    assert lines[error] == (
        'error: v1 failed: web: health check cannot run: exec: "wget": executable file not found in'
        " $PATH; nothing was running before, so the app is removed"
    ), lines
    assert lines[error + 1 :][:1] in ([], ["--- last log lines ---"]), lines  # what the container printed
    gone(platform, app)


def test_a_probe_that_never_passes_shows_its_last_error(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"noport-{secrets.token_hex(3)}"

    lines = failed(platform.cli("deploy", app, "--image", images["v1"], "--port", "8080"))  # it serves 80

    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert lines[error].startswith("error: v1 did not become healthy in time")
    assert lines[error + 1] == "web: GET / -> connection refused", lines
    gone(platform, app)


def test_a_service_that_exits_at_once_fails_by_the_crash_loop_rule(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"exit3-{secrets.token_hex(3)}"
    compose = tmp_path / "compose.yml"
    compose.write_text(
        f"services:\n  web:\n    image: {images['v1']}\n    expose: [80]\n"
        '    command: ["sh", "-c", "echo boom; exit 3"]\n'
    )

    lines = failed(platform.cli("deploy", app, "-f", str(compose)))

    error = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    # the progress while it waited, as the engine restarted it (how often a pass sees it varies)
    assert lines[:error] and all(re.fullmatch(PROGRESS, line) for line in lines[:error]), lines
    # given up by the crash-loop rule: not "did not become healthy in time" at the deadline
    failure = re.fullmatch(r"error: v1 failed: web: exited (\d+) times \(exit 3\); (.*)", lines[error])
    assert failure and int(failure[1]) >= 3, lines
    assert failure[2] == "nothing was running before, so the app is removed"
    assert lines[error + 1] == "--- last log lines ---"
    assert lines[error + 2].startswith(f"[{app}-web-v1-")
    [boom] = lines[error + 3 :]  # each distinct line once, with a count
    assert boom.startswith("boom (\u00d7"), lines
    gone(platform, app)


def test_a_failed_build_shows_its_log_once_and_ends_with_the_error(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"badbuild-{secrets.token_hex(3)}"
    (tmp_path / "Dockerfile").write_text(f"FROM {images['v1']}\nRUN echo making-it && exit 7\n")

    r = platform.cli("deploy", app, str(tmp_path), "--port", "80")

    lines = failed(r)
    assert (r.out + r.err).count("making-it\n") == 1  # the step's output, once (its command echoes too)
    command = "'/bin/sh -c echo making-it && exit 7'"
    assert lines[-1] == f"error: build failed: The command {command} returned a non-zero code: 7"
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
    gone(platform, app)


def test_a_failed_source_build_shows_its_log_once_and_ends_with_the_error(
    platform: kit.Platform, tmp_path: Path
) -> None:
    app = f"badsrc-{secrets.token_hex(3)}"
    (tmp_path / "app.py").write_text("print('never runs')\n")
    (tmp_path / "requirements.txt").write_text("--no-index\nno-such-package-i11a==1.0\n")  # fails offline

    r = platform.cli("deploy", app, str(tmp_path), timeout=900)

    lines = failed(r)
    assert "--- detected a python app" in r.err
    pip = [line for line in lines if "no-such-package-i11a" in line and "ERROR" in line]
    assert pip and len(pip) == len(set(pip)), lines  # pip's own error lines, each once
    assert lines[-1].startswith("error: build failed: The command '/bin/sh -c pip install"), lines
    assert lines[-1].endswith("returned a non-zero code: 1")
    gone(platform, app)
