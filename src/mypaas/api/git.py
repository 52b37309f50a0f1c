"""REST routes of `git push` deploys: users' SSH keys (`mypaas user key add|ls|rm`) and an app's git
remote and deploy branch (`mypaas git remote`). Who may call each is policy.RULES' say."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.manager.git.branches import DEFAULT_BRANCHES, DeployBranches
from mypaas.manager.platform import Platform
from mypaas.settings import Settings


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyBody(_Body):
    key: str = Field(max_length=16384, description="one OpenSSH public key line (an id_*.pub file)")
    name: str = Field("", max_length=200, description="a name for the key (default: its comment)")


class BranchBody(_Body):
    branch: str = Field(max_length=255, description="the branch whose pushes deploy the app")


def remote_url(settings: Settings, app: str) -> str:
    """The app's git remote: ``ssh://git@<base domain>:<git_ssh_port>/APP.git``."""
    return f"ssh://git@{settings.base_domain}:{settings.git_ssh_port}/{app}.git"


def git_routes(v1: APIRouter, platform: Platform) -> None:
    identity = platform.identity
    branches = DeployBranches(platform.sessions)

    @v1.get("/users/{user}/keys", tags=["users"])
    def list_keys(user: str, who: User) -> list[dict[str, Any]]:
        """A user's SSH keys (one's own, or any user's for a platform admin): name, type, fingerprint."""
        return identity.keys(who, user)

    @v1.post("/users/{user}/keys", status_code=201, tags=["users"])
    def add_key(user: str, body: KeyBody, who: User) -> dict[str, Any]:
        """Register an SSH public key (ed25519, ECDSA, or RSA of 2048 bits or more) for `git push`: one's
        own, or any user's for a platform admin. A private key or garbage is refused (400), as is a key
        already registered to anyone (409)."""
        return identity.add_key(who, user, body.key, body.name)

    @v1.delete("/users/{user}/keys/{fingerprint:path}", tags=["users"])
    def remove_key(user: str, fingerprint: str, who: User) -> dict[str, Any]:
        """Remove one of a user's SSH keys by its fingerprint (SHA256:...)."""
        return identity.remove_key(who, user, fingerprint)

    @v1.get("/apps/{name}/git", tags=["apps"])
    def git_remote(name: str, _: User) -> dict[str, Any]:
        """The app's git remote (``url``; ``port`` 0: the endpoint is off) and deploy branch (``branch``:
        the one set, else null: main, or master)."""
        branch = branches.get(name)
        return {
            "app": name,
            "url": remote_url(platform.settings, name),
            "port": platform.settings.git_ssh_port,
            "branch": branch,
            "branches": [branch] if branch else list(DEFAULT_BRANCHES),
        }

    @v1.put("/apps/{name}/git", tags=["apps"])
    def set_git_branch(name: str, body: BranchBody, _: User) -> dict[str, Any]:
        """Set the branch whose pushes deploy the app (pushes to other branches make previews)."""
        branch = branches.set(name, body.branch)
        return {"app": name, "url": remote_url(platform.settings, name), "branch": branch}
