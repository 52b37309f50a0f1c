"""Routes of `mypaas export` (``GET /export``) and `mypaas apply` (``POST /apply``): the platform as one
file, and a file applied back. What a caller's file covers is what the caller sees; each change needs
the right to make it (an app's: deployer on that app; the hosts' labels and the rules about every app:
the platform admin)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.automation import alert_subject
from mypaas.api.deps import User, in_thread
from mypaas.api.scoping import seen_apps
from mypaas.errors import InvalidSpec
from mypaas.manager.declare.document import PlatformDoc, dump, parse
from mypaas.manager.declare.plan import Change
from mypaas.manager.declare.service import Scope
from mypaas.manager.identity.policy import (
    Principal,
    Role,
    decide_app_or_platform,
    decide_private_webhook,
    platform_wide,
)
from mypaas.manager.platform import Platform

FORMATS = ("mypaas", "kubernetes")


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: str = Field(description="the platform file (YAML, apiVersion: mypaas/v1, kind: Platform)")
    prune: bool = Field(False, description="remove what the file lacks (apps, config vars, domains, ...)")
    dry_run: bool = Field(False, description="answer the plan, change nothing")
    team: str | None = Field(None, description="the team new apps go to when the file names none")
    name: str = Field("platform.yml", max_length=200, description="the file's name, for the error messages")


def _scope(platform: Platform, who: Principal) -> Scope:
    return Scope(apps=seen_apps(platform, who), platform=platform_wide(who))


def declare_routes(v1: APIRouter, platform: Platform) -> None:
    declare = platform.declare

    @v1.get("/export", tags=["apply"])
    def export_platform(
        who: User,
        app: Annotated[list[str] | None, Query(description="only these apps (default: every app)")] = None,
        format: Annotated[str, Query(description="mypaas | kubernetes (one app)")] = "mypaas",
        include_secrets: Annotated[
            bool, Query(description="kubernetes: the secrets' values (deployer on the app)")
        ] = False,
    ) -> dict[str, str]:
        """The platform (or the apps named) as one reviewable YAML file, or one app as Kubernetes
        manifests. Secrets are named, never valued, unless ``include_secrets`` (Kubernetes only)."""
        return _export(platform, who, app or [], format, include_secrets)

    @v1.post(
        "/apply",
        status_code=202,
        tags=["apply"],
        responses={200: {"description": "dry_run: the plan, nothing changed"}},
    )
    async def apply(body: ApplyBody, who: User) -> Any:
        """Apply a platform file: ``changes`` (``op`` + ~ -, ``path``, ``detail``), ``kept`` (what
        ``prune`` would remove), ``applied`` and the ``operations`` to follow (one rollout per app).
        Every check runs first: a secret the file names but the platform lacks, a key the file should
        not have, a change the caller may not make: nothing is applied then."""
        doc = parse(body.document, body.name)
        scope = _scope(platform, who)
        team = body.team or who.only_team()  # where a new app goes when the file names no team
        allow = functools.partial(_allow, platform, who, doc, team)
        if body.dry_run:
            plan = await in_thread(
                functools.partial(declare.plan, doc, prune=body.prune, scope=scope, allow=allow)
            )
            return JSONResponse({"dry_run": True, **plan.as_dict()}, status_code=200)
        run = functools.partial(
            declare.apply, doc, prune=body.prune, user=who.label, scope=scope, team=team, allow=allow
        )
        done = await in_thread(run)
        return {"dry_run": False, **done.as_dict()}


def _export(
    platform: Platform, who: Principal, names: list[str], format: str, include_secrets: bool
) -> dict[str, str]:
    for name in names:
        decide_app_or_platform(
            who, Role.VIEWER, operation="export_platform", team=_team(platform, name), app=name
        )
    if format == "kubernetes":
        if len(names) != 1:
            raise InvalidSpec("the kubernetes format exports one app: name it", field="app")
        if include_secrets:
            team = _team(platform, names[0])
            decide_app_or_platform(who, Role.DEPLOYER, operation="export_platform", team=team, app=names[0])
        text = platform.declare.kubernetes(names[0], include_secrets=include_secrets)
        return {"format": format, "document": text}
    if format != "mypaas":
        raise InvalidSpec(f"unknown format {format!r}: use {' or '.join(FORMATS)}", field="format")
    if include_secrets:
        raise InvalidSpec("include_secrets applies to the kubernetes format only", field="include_secrets")
    return {"format": format, "document": dump(platform.declare.export(names, _scope(platform, who)))}


def _allow(platform: Platform, who: Principal, doc: PlatformDoc, team: str | None, change: Change) -> None:
    """Raise unless ``who`` may make ``change``: deployer on its app, the platform admin for the rest."""
    if change.kind == "label":
        decide_app_or_platform(who, Role.DEPLOYER, operation="apply", team=None, app=None)
        return
    if change.kind == "alert":
        _allow_alert(platform, who, change)
        return
    app = change.app
    owner = _team(platform, app) if app else None
    if app and owner is None:  # a new app: the team the file or the request names
        owner = doc.apps[app].team if app in doc.apps else None
        owner = owner or team
    decide_app_or_platform(who, Role.DEPLOYER, operation="apply", team=owner, app=app)


def _allow_alert(platform: Platform, who: Principal, change: Change) -> None:
    """The rights `POST /alerts` and `DELETE /alerts/NAME` ask: deployer on the app a rule fires about,
    the platform admin for a rule about every app or the hosts (its kind decides, not the app it names),
    and the admin again for a webhook to a private address; a changed rule needs them for its old self too."""
    subjects: list[str | None] = []
    name = change.value[0] if isinstance(change.value, tuple) else change.value
    live = next((r for r in platform.automation.rules() if r["name"] == name), None)
    if live is not None:
        subjects.append(alert_subject(live["kind"], live.get("app")))
    body = change.value[1] if isinstance(change.value, tuple) else None
    if body is not None:
        subjects.append(alert_subject(body.kind, body.app))
    for app in subjects:
        team = _team(platform, app) if app else None
        decide_app_or_platform(who, Role.DEPLOYER, operation="apply", team=team, app=app)
    if body is not None and body.allow_private:
        decide_private_webhook(who)


def _team(platform: Platform, app: str) -> str | None:
    return platform.identity.team_of_app(app)
