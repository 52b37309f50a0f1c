"""The REST side of deploys from a repository, over the fake backend: deploy keys made once (and rotated),
watches and their listing, the public webhook (refused without the right signature; a ping, a push to
another branch, a push to the watched branch), bad input answered 400 naming the field; and the poller
(a new sha deployed once, a failed one not tried again until the branch moves)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mypaas.manager.git import repo, runner
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import GitSourceRow

URL = "https://127.0.0.1:1/acme/shop.git"  # nothing listens there: a deploy fails at once, offline


def _push(branch: str) -> bytes:
    return json.dumps({"ref": f"refs/heads/{branch}", "after": "a" * 40, "deleted": False}).encode()


def _hook(api: TestClient, app: str, body: bytes, secret: str, event: str = "push") -> Any:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": signature, "Authorization": ""}
    return api.post(f"/api/v1/hooks/git/{app}", content=body, headers=headers)


def test_deploy_keys_are_made_once_and_rotated(api: TestClient) -> None:
    first = api.post("/api/v1/apps/shop/git/deploy-key").json()
    assert first["public_key"].startswith("ssh-ed25519 ") and first["new"] is True
    again = api.post("/api/v1/apps/shop/git/deploy-key").json()
    assert (again["public_key"], again["new"]) == (first["public_key"], False)
    rotated = api.post("/api/v1/apps/shop/git/deploy-key", params={"rotate": True}).json()
    assert rotated["public_key"] != first["public_key"] and rotated["fingerprint"].startswith("SHA256:")


def test_a_watch_and_its_webhook(api: TestClient, platform: Platform) -> None:
    watch = api.put("/api/v1/apps/shop/git/watch", json={"url": URL, "branch": "main"})
    assert watch.status_code == 200, watch.text
    secret = watch.json()["secret"]
    assert watch.json()["webhook"] == "/api/v1/hooks/git/shop" and len(secret) >= 32
    assert [w["app"] for w in api.get("/api/v1/git/watches").json()] == ["shop"]

    wrong = _hook(api, "shop", _push("main"), "not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["field"] == "signature", wrong.text
    assert _hook(api, "nowatch", _push("main"), secret).status_code == 401
    ping = _hook(api, "shop", b'{"zen": "hi", "hook_id": 1}', secret, event="ping")
    assert (ping.status_code, ping.json()["status"]) == (200, "ok")
    other = _hook(api, "shop", _push("feature"), secret)
    assert other.status_code == 202 and other.json()["status"] == "ignored", other.text
    assert "not to the watched branch main" in other.json()["reason"]

    deploy = _hook(api, "shop", _push("main"), secret)
    assert deploy.status_code == 202 and deploy.json()["status"] == "deploying", deploy.text
    op = platform.operations.wait(deploy.json()["operation"], timeout=60)
    assert op.status.value == "failed" and op.message.startswith(f"cannot fetch {URL}: "), op.message
    assert op.kind == "git-deploy" and "fetching" in op.log

    assert api.delete("/api/v1/apps/shop/git/watch").status_code == 200
    assert _hook(api, "shop", _push("main"), secret).status_code == 401  # the secret stopped working
    assert api.delete("/api/v1/apps/shop/git/watch").status_code == 404


def test_bad_input_is_a_400_naming_the_field(api: TestClient) -> None:
    r = api.post("/api/v1/apps/shop/git-deploys", json={"git": "/srv/shop.git"})
    assert r.status_code == 400 and r.json()["field"] == "git", r.text
    r = api.post("/api/v1/apps/shop/git-deploys", json={"git": URL, "path": "../x"})
    assert r.status_code == 400 and r.json()["field"] == "path", r.text
    r = api.put("/api/v1/apps/shop/git/watch", json={"url": URL, "branch": "a..b"})
    assert r.status_code == 400 and r.json()["field"] == "branch", r.text
    r = api.put("/api/v1/apps/shop/git/watch", json={"url": URL, "poll_s": 0.5})
    assert r.status_code == 400 and r.json()["field"] == "poll", r.text
    r = api.post("/api/v1/hooks/git/shop", content=b"x", headers={"Authorization": ""})
    assert r.status_code == 401 and "no forge signature" in r.json()["error"]


def test_a_deploy_from_a_url_is_an_operation(api: TestClient, platform: Platform) -> None:
    r = api.post("/api/v1/apps/shop/git-deploys", json={"git": f"{URL}#v1"})
    assert r.status_code == 202, r.text
    op = platform.operations.wait(r.json()["id"], timeout=60)
    assert op.status.value == "failed" and op.message.startswith(f"cannot fetch {URL}"), op.message
    assert f"fetching {URL} at v1" in op.log


def test_polling_deploys_a_new_sha_once_and_a_failed_one_not_again(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller against a real local repository (file transport allowed for the test); the CLI's
    deploy replaced by a stand-in that fails, then succeeds."""
    monkeypatch.setattr(repo, "ALLOWED_PROTOCOLS", "file")
    codes = [1, 0]
    ran: list[list[str]] = []

    def cli(args: list[str], **_: Any) -> tuple[int, str]:
        ran.append(list(args))
        code = codes.pop(0)
        return code, json.dumps(
            {"operation": {"message": "deployed"}, "release": {"version": 1}}
        ) if code == 0 else ""

    monkeypatch.setattr(runner, "run_cli", cli)
    monkeypatch.setattr(platform.git, "_team_of", lambda _app: "default")  # the stand-in made no app
    work = tmp_path / "origin"
    work.mkdir()
    sha = _commit(work, "first")
    with platform.sessions.begin() as s:
        s.add(
            GitSourceRow(
                app="polled", team="default", url=f"file://{work}", watching=True, poll_s=1.0, user="admin"
            )
        )
    git = platform.git

    def settle() -> None:
        deadline = time.monotonic() + 30
        while git.busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    assert git.poll_due(time.monotonic()) == ["polled"]
    settle()
    assert ran[0][:2] == ["deploy", "polled"] and ran[0][3:5] == ["--message", f"{sha[:12]} first"]
    assert git.poll_due(time.monotonic() + 5) == []  # the failed sha is not tried again
    again = _commit(work, "second")
    assert git.poll_due(time.monotonic() + 10) == ["polled"]
    settle()
    assert git.poll_due(time.monotonic() + 15) == []  # deployed: nothing new
    [watch] = api_watches(platform)
    assert (watch["last_sha"], watch["failed_sha"]) == (again, "")


def api_watches(platform: Platform) -> list[dict[str, Any]]:
    return platform.git.watches(lambda _team, _app: True)


def _commit(work: Path, subject: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    if not (work / ".git").exists():
        subprocess.run(["git", "init", "--quiet", "-b", "main"], cwd=work, env=env, check=True)
    (work / "Dockerfile").write_text(f"FROM scratch\nLABEL s={subject}\n")
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    subprocess.run(["git", "commit", "--quiet", "-m", subject], cwd=work, env=env, check=True)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, env=env, check=True, capture_output=True)
    return out.stdout.decode().strip()


def test_a_watch_ends_when_its_app_was_removed(platform: Platform) -> None:
    with platform.sessions.begin() as s:
        s.add(GitSourceRow(app="gone", team="default", url=URL, watching=True, poll_s=1.0, last_sha="a" * 40))
    assert platform.git.poll_due(time.monotonic()) == []  # no app "gone": the watch ends, nothing made
    assert platform.git.watches(lambda _team, _app: True) == []


def test_refused_webhooks_write_one_event_a_minute_of_watched_apps_only(
    api: TestClient, platform: Platform
) -> None:
    """Anyone can call the webhook: refused calls naming no watched app only reach the manager's log, and a
    watched app gets one refused event a minute however many calls come (the event log is not theirs to
    fill)."""
    assert api.put("/api/v1/apps/shop/git/watch", json={"url": URL, "branch": "main"}).status_code == 200
    for n in range(5):
        assert _hook(api, "shop", _push("main"), "not-the-secret").status_code == 401
        assert _hook(api, f"nowatch{n}", _push("main"), "not-the-secret").status_code == 401
    platform.monitoring.events.flush()
    refused = [e for e in api.get("/api/v1/events").json() if e["kind"] == "git_hook_refused"]
    assert [e["app"] for e in refused] == ["shop"], refused


def test_a_hanging_remote_delays_only_its_own_watch(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller asks several remotes at once: one that hangs is not asked again while it hangs, and the
    others are still asked, tick after tick."""
    with platform.sessions.begin() as s:
        for app in ("slow", "quick"):
            s.add(GitSourceRow(app=app, team="default", url=URL, watching=True, poll_s=1.0, user="admin"))
    monkeypatch.setattr(platform.git, "_team_of", lambda _app: "default")
    release = threading.Event()
    asked: list[str] = []

    def head(job: Any) -> tuple[str, str]:
        asked.append(job.app)
        if job.app == "slow":
            release.wait(30)
        return "main", ""  # no such branch: nothing to deploy

    monkeypatch.setattr(platform.git, "_head", head)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for tick in range(3):
            assert platform.git.poll_due(start + 2 * tick, pool=pool) == []
            deadline = time.monotonic() + 10
            while asked.count("quick") <= tick and time.monotonic() < deadline:
                time.sleep(0.01)
        release.set()
    assert asked.count("quick") == 3 and asked.count("slow") == 1, asked
