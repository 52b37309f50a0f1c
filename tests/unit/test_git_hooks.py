"""Forge webhooks read offline: each forge's signature checked (a wrong, missing or foreign one refused),
and the documented payload shapes of GitHub (push, pull_request, ping), GitLab (Push Hook, Merge Request
Hook) and Gitea/Forgejo (push, pull_request, pull_request_sync) read into what they ask for."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from mypaas.errors import InvalidSpec, Unauthorized
from mypaas.manager.git import hooks

SECRET = "s3cret-of-the-watch"
SHA = "9049f1265b7d61be4a8904a9a27120d2064dab3b"


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_push(branch: str = "main", after: str = SHA, deleted: bool = False) -> bytes:
    """GitHub's `push` event (docs: Webhook events and payloads), cut to the fields a reader may use."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": after,
            "created": False,
            "deleted": deleted,
            "forced": False,
            "base_ref": None,
            "commits": [{"id": after, "message": "Update README.md"}],
            "head_commit": {"id": after, "message": "Update README.md"},
            "repository": {"full_name": "Codertocat/Hello-World", "default_branch": "main"},
            "pusher": {"name": "Codertocat"},
        }
    ).encode()


def github_pull_request(action: str, branch: str = "changes") -> bytes:
    return json.dumps(
        {
            "action": action,
            "number": 2,
            "pull_request": {
                "number": 2,
                "state": "open",
                "head": {"label": f"Codertocat:{branch}", "ref": branch, "sha": SHA},
                "base": {"label": "Codertocat:main", "ref": "main"},
            },
            "repository": {"full_name": "Codertocat/Hello-World"},
        }
    ).encode()


GITLAB_PUSH = json.dumps(
    {
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": "refs/heads/master",
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "project": {"path_with_namespace": "mike/diaspora"},
        "total_commits_count": 4,
    }
).encode()
GITLAB_MR = json.dumps(
    {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "object_attributes": {
            "iid": 1,
            "source_branch": "ms-viewport",
            "target_branch": "master",
            "state": "opened",
            "action": "open",
            "last_commit": {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
        },
    }
).encode()


def test_github_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = github_push()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + _hex(body)}
    assert hooks.verify(headers, body, SECRET) == "github"
    for wrong in ("sha256=" + _hex(body, "other"), _hex(body), "sha256=" + _hex(body + b" ")):
        with pytest.raises(Unauthorized, match="bad X-Hub-Signature-256"):
            hooks.verify({**headers, "X-Hub-Signature-256": wrong}, body, SECRET)
    with pytest.raises(Unauthorized, match="missing X-Hub-Signature-256"):
        hooks.verify({"X-GitHub-Event": "push"}, body, SECRET)


def test_gitlab_sends_the_secret_itself_and_gitea_forgejo_a_bare_hex_hmac() -> None:
    gitlab = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}
    assert hooks.verify(gitlab, GITLAB_PUSH, SECRET) == "gitlab"
    with pytest.raises(Unauthorized, match="X-Gitlab-Token"):
        hooks.verify({**gitlab, "X-Gitlab-Token": SECRET + "x"}, GITLAB_PUSH, SECRET)
    body = github_push()
    # Gitea and Forgejo send GitHub's headers too: their own are read first
    gitea = {"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Signature": _hex(body)}
    assert hooks.verify(gitea, body, SECRET) == "gitea"
    forgejo = {"X-Forgejo-Event": "push", "X-Forgejo-Signature": _hex(body)}
    assert hooks.verify(forgejo, body, SECRET) == "forgejo"
    with pytest.raises(Unauthorized, match="X-Forgejo-Signature"):
        hooks.verify({**forgejo, "X-Forgejo-Signature": _hex(body, "x")}, body, SECRET)


def test_no_forge_headers_or_no_secret_is_refused() -> None:
    with pytest.raises(Unauthorized, match="no forge signature"):
        hooks.verify({"Content-Type": "application/json"}, b"{}", SECRET)
    body = github_push()
    signed_empty = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + _hex(body, "")}
    with pytest.raises(Unauthorized):  # an app without a watch has no secret: nothing verifies
        hooks.verify(signed_empty, body, "")


def test_pushes_name_their_branch_and_sha() -> None:
    assert hooks.parse("github", {"X-GitHub-Event": "push"}, github_push("main")) == hooks.HookEvent(
        "github", "push", branch="main", sha=SHA
    )
    deleted = hooks.parse(
        "github", {"X-GitHub-Event": "push"}, github_push(after=hooks.ZERO_SHA, deleted=True)
    )
    assert (deleted.kind, deleted.sha) == ("push", "")
    gitlab = hooks.parse("gitlab", {"X-Gitlab-Event": "Push Hook"}, GITLAB_PUSH)
    assert (gitlab.branch, gitlab.sha) == ("master", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    tag = json.dumps({"ref": "refs/tags/v1.0", "after": SHA}).encode()
    assert hooks.parse("gitea", {"X-Gitea-Event": "push"}, tag).kind == "ignored"


def test_pull_and_merge_requests_open_and_close_previews() -> None:
    gh = {"X-GitHub-Event": "pull_request"}
    for action in ("opened", "synchronize", "reopened"):
        assert hooks.parse("github", gh, github_pull_request(action)) == hooks.HookEvent(
            "github", "preview", branch="changes", sha=SHA
        )
    assert hooks.parse("github", gh, github_pull_request("closed")).kind == "preview-closed"
    assert hooks.parse("github", gh, github_pull_request("labeled")).kind == "ignored"
    sync = hooks.parse("gitea", {"X-Gitea-Event": "pull_request_sync"}, github_pull_request("synchronized"))
    assert (sync.kind, sync.branch) == ("preview", "changes")
    mr = hooks.parse("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, GITLAB_MR)
    assert (mr.kind, mr.branch) == ("preview", "ms-viewport")
    merged = json.loads(GITLAB_MR)
    merged["object_attributes"]["action"] = "merge"
    closed = hooks.parse("gitlab", {"X-Gitlab-Event": "Merge Request Hook"}, json.dumps(merged).encode())
    assert (closed.kind, closed.branch) == ("preview-closed", "ms-viewport")


def test_ping_other_events_and_bad_bodies() -> None:
    ping = json.dumps({"zen": "Design for failure.", "hook_id": 42, "hook": {"type": "Repository"}})
    assert hooks.parse("github", {"X-GitHub-Event": "ping"}, ping.encode()).kind == "ping"
    assert hooks.parse("github", {"X-GitHub-Event": "issues"}, b"{}").kind == "ignored"
    with pytest.raises(InvalidSpec, match="not JSON"):
        hooks.parse("github", {"X-GitHub-Event": "push"}, b"ref=refs/heads/main")
    with pytest.raises(InvalidSpec, match="head branch"):
        hooks.parse("github", {"X-GitHub-Event": "pull_request"}, b'{"action": "opened"}')
