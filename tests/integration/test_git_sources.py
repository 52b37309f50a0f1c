"""Deploys from a repository, for real: a bare repository served over SSH by an OpenSSH sshd this test
starts on a free port (its own config and host key in a temp folder; the only key it lets in is the app's
deploy key), the manager's real `git` cloning it with that key. One walk: `deploy --git ssh://…#main`
serves the app; bad refs and paths fail in one line; a webhook with a bad signature is refused (401,
nothing deployed); a GitHub-shaped push webhook, signed, deploys the new commit; polling picks up a commit
without any webhook."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import kit
from tests.sshd import running_sshd

pytestmark = pytest.mark.integration


@dataclass
class Forge:
    """A bare repository over SSH, and a working copy the test commits in."""

    url: str
    work: Path

    def commit(self, text: str, subject: str, branch: str = "main") -> str:
        (self.work / "index.html").write_text(text + "\n")
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "--quiet", "-m", subject)
        _git(self.work, "push", "--quiet", "origin", f"HEAD:{branch}")
        return _git(self.work, "rev-parse", "HEAD").strip()


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {args}: {done.stderr}"
    return done.stdout


@contextlib.contextmanager
def forge(deploy_key: str, image: str) -> Iterator[Forge]:
    """sshd on a free port of loopback, letting in ``deploy_key`` only; a bare repository holding a
    Dockerfile app (FROM ``image``) on branch main."""
    top = Path(tempfile.mkdtemp(prefix="mypaas-git-"))
    try:
        (top / "sshd").mkdir()
        with running_sshd(top / "sshd") as sshd:
            # sshd reads the file at each login: from now on only the deploy key gets in
            (top / "sshd" / "authorized_keys").write_text(f"restrict {deploy_key}\n")
            bare, work = top / "app.git", top / "work"
            _git(top, "init", "--quiet", "--bare", "-b", "main", str(bare))
            _git(top, "clone", "--quiet", str(bare), str(work))
            (work / "Dockerfile").write_text(f"FROM {image}\nEXPOSE 80\nCOPY index.html /www/index.html\n")
            (work / "docs").mkdir()
            (work / "docs" / "README.md").write_text("nothing to deploy here\n")
            yield Forge(f"{sshd.url()}{bare}", work)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _signed(secret: str, payload: dict[str, object]) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _github_push(branch: str, before: str, after: str, url: str) -> dict[str, object]:
    """The shape of GitHub's `push` event (docs.github.com, "Webhook events and payloads")."""
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/acme/app/compare/{before[:12]}...{after[:12]}",
        "commits": [{"id": after, "message": "two", "distinct": True, "url": url}],
        "head_commit": {"id": after, "message": "two", "timestamp": "2026-12-05T16:00:00Z"},
        "repository": {"id": 1, "full_name": "acme/app", "ssh_url": url, "default_branch": "main"},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }


def _hook(platform: kit.Platform, app: str, event: str, body: bytes, signature: str) -> tuple[int, dict]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": secrets.token_hex(8),
        "X-Hub-Signature-256": signature,
        "User-Agent": "GitHub-Hookshot/test",
    }
    r = platform.raw("POST", f"/api/v1/hooks/git/{app}", content=body, headers=headers)
    return r.status_code, r.json()


def _releases(platform: kit.Platform, app: str) -> list[dict]:
    return list(platform.api("GET", f"/api/v1/apps/{app}/releases"))


def test_deploy_from_a_repository_over_ssh_then_by_webhook_then_by_polling(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"gitapp-{secrets.token_hex(3)}"
    key = platform.cli("git", "deploy-key", app, check=True).out.strip()
    assert key.startswith("ssh-ed25519 ") and key.endswith(f"mypaas-deploy-{app}")
    assert platform.cli("git", "deploy-key", app, check=True).out.strip() == key  # made once

    with forge(key, images["v1"]) as repo:
        one = repo.commit("git one", "first page")

        r = platform.cli("deploy", app, "--git", f"{repo.url}#main", timeout=300)
        assert r.code == 0, r
        assert "fetching ssh://" in r.err and f"checked out {one[:12]} first page" in r.err, r.err
        assert f"{app} v1 deployed" in r.out, r.out
        platform.wait_for(app, body="git one")
        assert _releases(platform, app)[0]["description"] == f"{one[:12]} first page"

        # bad input: one line each, exit 1, nothing deployed
        bad = platform.cli("deploy", app, "--git", f"{repo.url}#no-such-branch", timeout=120)
        assert bad.code == 1 and bad.err.strip().splitlines()[-1] == (
            f"error: no branch, tag or commit 'no-such-branch' in {repo.url}"
        ), bad
        bad = platform.cli("deploy", app, "--git", repo.url, "--path", "../etc")
        assert bad.code != 0 and "leaves the repository" in bad.err and "Traceback" not in bad.err, bad
        bad = platform.cli("deploy", app, "--git", repo.url, "--path", "nothere", timeout=120)
        assert bad.code == 1 and "--path 'nothere': no such folder" in bad.err, bad
        bad = platform.cli("deploy", app, "--git", repo.url, "--path", "docs", timeout=120)
        assert bad.code == 1 and "error: nothing to deploy in" in bad.err, bad
        bad = platform.cli("deploy", app, "--git", "/etc")
        assert bad.code != 0 and "not a repository URL" in bad.err, bad
        assert len(_releases(platform, app)) == 1

        watch = platform.cli("git", "watch", app, repo.url, "--branch", "main", "--json", check=True).json()
        secret = watch["secret"]
        assert watch["webhook_url"].endswith(f"/api/v1/hooks/git/{app}")
        listed = platform.cli("git", "watches", "--json", check=True).json()
        assert [w["app"] for w in listed if w["app"] == app] == [app]

        two = repo.commit("git two", "second page")
        body, good = _signed(secret, _github_push("main", one, two, repo.url))
        status, answer = _hook(platform, app, "push", body, "sha256=" + "0" * 64)
        assert status == 401 and "X-Hub-Signature-256" in answer["error"], answer
        status, answer = _hook(platform, app, "push", body, "")
        assert status == 401 and answer["field"] == "signature", answer
        assert len(_releases(platform, app)) == 1  # nothing deployed
        kit.wait_until(
            lambda: any(
                e["kind"] == "git_hook_refused"
                for e in platform.api("GET", "/api/v1/events", params={"app": app})
            )
        )

        ping, ping_sig = _signed(secret, {"zen": "Keep it logically awesome.", "hook_id": 1})
        assert _hook(platform, app, "ping", ping, ping_sig)[0] == 200
        other, other_sig = _signed(secret, _github_push("feature", one, two, repo.url))
        status, answer = _hook(platform, app, "push", other, other_sig)
        assert (status, answer["status"]) == (202, "ignored"), answer

        status, answer = _hook(platform, app, "push", body, good)
        assert status == 202 and answer["status"] == "deploying", answer
        op = platform.wait_op({"id": answer["operation"]}, timeout=300)
        assert op["status"] == "succeeded", op
        platform.wait_for(app, body="git two")
        assert _releases(platform, app)[0]["description"] == f"{two[:12]} second page"

        # polling: no webhook at all, the manager asks the repository every second
        platform.cli("git", "watch", app, repo.url, "--poll", "1s", check=True)
        three = repo.commit("git three", "third page")
        platform.wait_for(app, body="git three", timeout=240)
        assert _releases(platform, app)[0]["description"] == f"{three[:12]} third page"
        assert platform.cli("git", "unwatch", app, check=True).code == 0


def test_a_pull_request_webhook_deploys_a_preview_and_closing_it_removes_it(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    from mypaas.domain import preview_app_name

    app = f"gitpr-{secrets.token_hex(3)}"
    key = platform.cli("git", "deploy-key", app, check=True).out.strip()
    with forge(key, images["v1"]) as repo:
        repo.commit("main page", "first page")
        assert platform.cli("deploy", app, "--git", repo.url, timeout=300).code == 0
        platform.cli("previews", "on", app, check=True)
        secret = platform.cli("git", "watch", app, repo.url, "--json", check=True).json()["secret"]
        head = repo.commit("preview page", "try a change", branch="feature-x")

        def pull_request(action: str) -> dict[str, object]:
            """The shape of GitHub's `pull_request` event."""
            return {
                "action": action,
                "number": 7,
                "pull_request": {
                    "number": 7,
                    "state": "closed" if action == "closed" else "open",
                    "head": {"ref": "feature-x", "sha": head, "repo": {"ssh_url": repo.url}},
                    "base": {"ref": "main"},
                },
                "repository": {"full_name": "acme/app", "ssh_url": repo.url},
            }

        body, sig = _signed(secret, pull_request("opened"))
        status, answer = _hook(platform, app, "pull_request", body, sig)
        assert status == 202 and answer["preview"] == "feature-x", answer
        assert platform.wait_op({"id": answer["operation"]}, timeout=300)["status"] == "succeeded"
        preview = preview_app_name(app, "feature-x")
        platform.wait_for(preview, body="preview page")
        platform.wait_for(app, body="main page")  # the app itself is untouched

        body, sig = _signed(secret, pull_request("closed"))
        status, answer = _hook(platform, app, "pull_request", body, sig)
        assert status == 202 and answer["status"] == "removing", answer
        assert platform.wait_op({"id": answer["operation"]}, timeout=120)["status"] == "succeeded"
        kit.wait_until(lambda: platform.raw("GET", f"/api/v1/apps/{preview}").status_code == 404, timeout=60)
