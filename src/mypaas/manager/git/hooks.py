"""A forge's webhook, checked and read (pure: no I/O). Which forge sent it is told by its headers; each
signs in its own way, compared in constant time:

- GitHub: ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body, hex>``, ``X-GitHub-Event``;
- GitLab: ``X-Gitlab-Token: <the secret itself>``, ``X-Gitlab-Event`` (``Push Hook``, ``Merge Request Hook``);
- Gitea / Forgejo: ``X-Gitea-Signature`` / ``X-Forgejo-Signature: <HMAC-SHA256 hex>``, ``X-Gitea-Event`` /
  ``X-Forgejo-Event`` (they send GitHub's headers as well: theirs are read first).

What an event asks for is a ``HookEvent``: a push to a branch (``sha`` empty when the branch was deleted), a
pull/merge request opened or updated (a preview of its head branch) or closed (the preview goes), a ping,
or something to ignore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mypaas.errors import InvalidSpec, Unauthorized

ZERO_SHA = "0" * 40
PR_OPEN = frozenset({"opened", "synchronize", "synchronized", "reopened", "open", "update", "reopen"})
PR_CLOSE = frozenset({"closed", "close", "merge"})


@dataclass(frozen=True)
class HookEvent:
    """What a webhook asks: ``kind`` is push | preview | preview-closed | ping | ignored."""

    forge: str
    kind: str
    branch: str = ""
    sha: str = ""
    reason: str = ""


def forge_of(headers: Mapping[str, str]) -> str:
    """forgejo | gitea | gitlab | github, from the headers ("" when none is recognised)."""
    h = {k.lower() for k in headers}
    if "x-forgejo-event" in h or "x-forgejo-signature" in h:
        return "forgejo"
    if "x-gitea-event" in h or "x-gitea-signature" in h:
        return "gitea"
    if "x-gitlab-event" in h or "x-gitlab-token" in h:
        return "gitlab"
    if "x-github-event" in h or "x-hub-signature-256" in h:
        return "github"
    return ""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return ""


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """The forge that signed ``body`` with ``secret``; Unauthorized for a missing or wrong signature."""
    forge = forge_of(headers)
    if forge == "github":
        given = _header(headers, "x-hub-signature-256")
        expected = "sha256=" + _hmac_hex(secret, body)
        what = "X-Hub-Signature-256"
    elif forge == "gitlab":
        given, expected, what = _header(headers, "x-gitlab-token"), secret, "X-Gitlab-Token"
    elif forge in ("gitea", "forgejo"):
        what = "X-Forgejo-Signature" if forge == "forgejo" else "X-Gitea-Signature"
        given = _header(headers, what.lower()) or _header(headers, "x-gitea-signature")
        expected = _hmac_hex(secret, body)
    else:
        raise Unauthorized(
            "no forge signature: expected X-Hub-Signature-256 (GitHub), X-Gitlab-Token (GitLab) or "
            "X-Gitea-Signature / X-Forgejo-Signature",
            field="signature",
        )
    if not given:
        raise Unauthorized(f"missing {what} header", field="signature")
    if not secret or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(
            f"bad {what}: the body was not signed with this app's webhook secret", field="signature"
        )
    return forge


def event_name(forge: str, headers: Mapping[str, str]) -> str:
    header = {"github": "x-github-event", "gitlab": "x-gitlab-event", "gitea": "x-gitea-event"}
    return _header(headers, header.get(forge, "x-forgejo-event"))


def parse(forge: str, headers: Mapping[str, str], body: bytes) -> HookEvent:
    """What a (verified) webhook asks for."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"the webhook's body is not JSON: {exc}", field="body") from exc
    if not isinstance(data, dict):
        raise InvalidSpec("the webhook's body is not a JSON object", field="body")
    name = event_name(forge, headers).lower()
    if name in ("ping", "system hook") or (forge == "github" and "zen" in data and "hook_id" in data):
        return HookEvent(forge, "ping")
    if name in ("push", "push hook"):
        return _push(forge, data)
    # Gitea sends commits pushed to a pull request as its own event, pull_request_sync (action synchronized)
    if name in ("pull_request", "pull_request_sync", "merge request hook"):
        return _request(forge, data)
    return HookEvent(forge, "ignored", reason=f"event {name or 'unnamed'!r} does not deploy")


def _push(forge: str, data: dict[str, Any]) -> HookEvent:
    ref = str(data.get("ref") or "")
    if not ref.startswith("refs/heads/"):
        return HookEvent(forge, "ignored", reason=f"a push of {ref or 'no ref'!r}, not of a branch")
    branch = ref.removeprefix("refs/heads/")
    sha = str(data.get("checkout_sha") or data.get("after") or "")
    if data.get("deleted") is True or sha in ("", ZERO_SHA):
        return HookEvent(forge, "push", branch=branch, sha="")
    return HookEvent(forge, "push", branch=branch, sha=sha)


def _request(forge: str, data: dict[str, Any]) -> HookEvent:
    if forge == "gitlab":
        attrs = data.get("object_attributes") or {}
        action = str(attrs.get("action") or "")
        branch = str(attrs.get("source_branch") or "")
        sha = str((attrs.get("last_commit") or {}).get("id") or "")
    else:
        action = str(data.get("action") or "")
        head = (data.get("pull_request") or {}).get("head") or {}
        branch, sha = str(head.get("ref") or ""), str(head.get("sha") or "")
    if not branch:
        raise InvalidSpec("a pull/merge request event without its head branch", field="body")
    if action in PR_OPEN:
        return HookEvent(forge, "preview", branch=branch, sha=sha)
    if action in PR_CLOSE:
        return HookEvent(forge, "preview-closed", branch=branch)
    return HookEvent(
        forge, "ignored", branch=branch, reason=f"pull request action {action!r} does not deploy"
    )
