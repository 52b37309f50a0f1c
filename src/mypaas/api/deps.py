"""What every route module of the API shares: the caller (its token checked and the operation's access
rule applied), the JSON shape of instances, and running blocking manager calls off the event loop. The
route modules import this, never app.py (which imports them)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from mypaas.api.cookies import authorization_of
from mypaas.api.limits import identified
from mypaas.domain import Instance
from mypaas.errors import Conflict, MyPaasError
from mypaas.manager.identity.policy import Principal, Scope, decide, decide_operation, rule_for
from mypaas.manager.platform import Platform
from mypaas.settings import Settings
from mypaas.states import InstanceState

T = TypeVar("T")

_JSON = TypeAdapter(Any)

# operations that make their app when it does not exist yet (in the team the request names, or the
# caller's only team)
CREATES_APP = frozenset({"deploy", "set_secret", "git_deploy", "deploy_key", "git_watch"})


def operation_of(request: Request) -> str:
    """The operation a request calls: its route's name (the route function's name)."""
    route = request.scope.get("route")
    return str(getattr(route, "name", "") or getattr(request.scope.get("endpoint"), "__name__", ""))


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller, allowed to call this operation (policy.RULES); 401 without a valid token (the
    ``Authorization`` header, or the dashboard's session cookie with its CSRF header), 403 when its role
    does not allow the call. What it acts on is kept for the audit log."""
    platform: Platform = request.app.state.platform
    operation = operation_of(request)
    rule = rule_for(operation)
    authorization = authorization_of(request.headers, request.method)
    who = identified(request.state, authorization)  # by the body-limits middleware, before routing
    if who is None:
        who = platform.identity.identify(authorization, client_address(request))
    request.state.principal = who
    if rule.scope == Scope.APP and "op_id" in request.path_params:
        _follow_operation(request, platform, who, request.path_params["op_id"])
        return who
    team, app = _target(request, platform, operation, rule.scope, who)
    request.state.team, request.state.app = team, app
    decide(rule, who, operation=operation, team=team, app=_for_token(platform, who, app))
    _check_named_team(request, operation, team, app)
    return who


def _follow_operation(request: Request, platform: Platform, who: Principal, op_id: str) -> None:
    """An operation is about its app (a role on it), a host or the platform (the admin)."""
    try:
        op = platform.operations.get(op_id)
    except MyPaasError:  # no such operation: the handler answers 404 to a caller with some role
        request.state.team, request.state.app = None, None
        decide(rule_for("operation"), who, operation="operation")
        return
    team = platform.identity.team_of_app(op.app) if op.app else None
    request.state.team, request.state.app = team, op.app or None
    app = _for_token(platform, who, op.app, removed=team is None) or ""
    decide_operation(who, app=app, team=team, by=op.created_by)


def _for_token(platform: Platform, who: Principal, app: str | None, *, removed: bool = False) -> str | None:
    """The app a token for one app acts on: that app for its own preview apps (their branches), and for
    the operations of a removed app named like one (still only their maker follows those)."""
    if who.app is None or not app or app == who.app:
        return app
    if platform.previews.parent_of(app) == who.app or (removed and app.startswith(f"{who.app}-")):
        return who.app
    return app


def _target(
    request: Request, platform: Platform, operation: str, scope: Scope, who: Principal
) -> tuple[str | None, str | None]:
    """(team, app) a request is about: the app its path names and that app's team; for a new app (a deploy),
    the team it goes to; for a team operation, the team its path names."""
    params = request.path_params
    if scope == Scope.TEAM:
        return params.get("team"), None
    if scope != Scope.APP:
        return None, None
    app = params.get("name")
    if app is None:
        return None, None
    team = platform.identity.team_of_app(app)
    if team is None and operation in CREATES_APP and not who.pull_only:
        team = platform.identity.team_for_new_app(who, request.query_params.get("team"))
        request.state.new_app_team = team
    return team, app


def _check_named_team(request: Request, operation: str, team: str | None, app: str | None) -> None:
    """A deploy naming a team (``?team=``) on an existing app of another team is refused: an app stays
    in the team it was made in."""
    asked = request.query_params.get("team")
    if (
        operation in CREATES_APP
        and asked
        and team is not None
        and asked != team
        and new_app_team(request) is None
    ):
        raise Conflict(f"app {app!r} belongs to team {team!r}, not {asked!r}", field="team")


User = Annotated[Principal, Depends(current_user)]


def new_app_team(request: Request) -> str | None:
    """The team a request that makes its app puts it in (None: the app exists)."""
    return getattr(request.state, "new_app_team", None)


def instance_state(inst: Instance, ready: bool) -> str:
    """What `ps` shows: healthy when ready; an instance the engine keeps restarting is a crash loop
    (Docker's "restarting" state is its back-off between crashes), shown as such, not hidden."""
    if ready:
        return "healthy"
    if inst.state == InstanceState.RESTARTING:
        return "crash-loop"
    return inst.state.value


def instance_dict(inst: Instance, ready: bool) -> dict[str, Any]:
    return {
        "id": inst.id[:12],
        "name": inst.name,
        "service": inst.service,
        "release": inst.release,
        "state": instance_state(inst, ready),
        "ready": ready,
        "address": inst.address,
        "host": inst.host,
        "created": inst.created,
        "started": inst.started,
        "restarts": inst.restarts,
        "healthcheck": inst.has_healthcheck,
        "status": inst.status_text,
        "exit_code": inst.exit_code,
    }


def app_url(settings: Settings, name: str) -> str:
    """Where the router serves an app on its platform name."""
    port = "" if settings.router_port == 80 else f":{settings.router_port}"
    return f"http://{name}.{settings.base_domain}{port}"


def field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def in_thread(fn: Any, *args: Any) -> Any:
    """Run a blocking manager call in a worker thread."""
    return await run_in_threadpool(fn, *args)


def json_answer(value: Any) -> Response:
    """``value`` (plain JSON data: dicts, lists, strings, numbers) as a JSON answer, encoded once by
    pydantic's serializer: a large listing skips FastAPI's validation of the route's return value
    (its ``response_model`` still documents it)."""
    return Response(_JSON.dump_json(value), media_type="application/json")
