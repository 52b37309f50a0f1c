"""REST routes for apps deployed from a repository: a deploy from a URL (an operation to follow), the
app's deploy key, its watch, and the forges' webhook (public: authenticated by the forge's signature only).
The manager's GitSources service does the work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mypaas.api.deps import User, in_thread, new_app_team
from mypaas.errors import InvalidSpec
from mypaas.manager.identity.policy import Principal, visible
from mypaas.manager.operations import op_dict
from mypaas.manager.platform import Platform

_DURATION_HINT = "seconds between two `git ls-remote` (0: webhooks only)"


class GitDeployBody(BaseModel):
    git: str = Field(description="the repository: URL[#REF] (https://…, ssh://…, USER@HOST:PATH)")
    path: str = Field("", description="the folder of the repository to deploy (default: its root)")


class WatchBody(BaseModel):
    url: str = Field(description="the repository's URL")
    branch: str = Field("", description="the branch whose pushes redeploy (default: main, or master)")
    path: str = Field("", description="the folder of the repository to deploy")
    poll_s: float = Field(0.0, ge=0, le=86400, description=_DURATION_HINT)


def _team(platform: Platform, request: Request, name: str) -> str:
    """The app's team, or the team a new app goes to (decided by the access check)."""
    team = platform.identity.team_of_app(name) or new_app_team(request)
    if team is None:  # pragma: no cover - the access check sets one for a new app
        raise InvalidSpec("name the team with ?team=", field="team")
    return team


def git_source_routes(v1: APIRouter, platform: Platform) -> None:
    git = platform.git

    @v1.post("/apps/{name}/git-deploys", status_code=202, tags=["apps"])
    def git_deploy(name: str, body: GitDeployBody, request: Request, who: User) -> dict[str, Any]:
        """Clone the repository (shallow where the ref allows) and deploy it as `mypaas deploy APP DIR`
        does; answers the operation to follow (the clone and the build stream into its log)."""
        team = _team(platform, request, name)
        op = git.start_deploy(user=_user(who), app=name, team=team, source=body.git, path=body.path)
        return op_dict(op)

    @v1.post("/apps/{name}/git/deploy-key", tags=["apps"])
    def deploy_key(
        name: str,
        request: Request,
        _: User,
        rotate: Annotated[bool, Query(description="make a new key pair (the old one stops working)")] = False,
    ) -> dict[str, Any]:
        """The public half of the app's deploy key (ed25519), made on first ask: add it to the repository
        as a read-only deploy key."""
        return git.deploy_key(name, _team(platform, request, name), rotate=rotate)

    @v1.put("/apps/{name}/git/watch", tags=["apps"])
    def git_watch(name: str, body: WatchBody, request: Request, who: User) -> dict[str, Any]:
        """Redeploy on every push to the branch: answers the webhook's path and the secret for the forge."""
        team = _team(platform, request, name)
        return git.watch(
            user=_user(who),
            app=name,
            team=team,
            url=body.url,
            branch=body.branch,
            path=body.path,
            poll_s=body.poll_s,
        )

    @v1.delete("/apps/{name}/git/watch", tags=["apps"])
    def git_unwatch(name: str, _: User) -> dict[str, Any]:
        """Stop redeploying on pushes (the webhook's secret stops working)."""
        return git.unwatch(name)

    @v1.get("/git/watches", tags=["apps"])
    def git_watches(who: User) -> list[dict[str, Any]]:
        """The watched repositories of the apps the caller sees."""
        return git.watches(lambda team, app: visible(who, team, app))

    @v1.post("/hooks/git/{app}", status_code=202, tags=["apps"])
    async def git_hook(app: str, request: Request) -> JSONResponse:
        """A forge's webhook (GitHub, GitLab, Gitea, Forgejo): no token, the forge's signature of the body
        with the watch's secret. A push to the watched branch redeploys (202 with the operation), another
        branch's is ignored (202), a ping answers 200, a pull/merge request deploys or removes a preview."""
        body = await request.body()
        status, answer = await in_thread(git.hook, app, dict(request.headers), body)
        return JSONResponse(answer, status_code=status)


def _user(who: Principal) -> str:
    if not who.user:
        raise InvalidSpec("this token has no user to deploy as", field="authorization")
    return who.user
