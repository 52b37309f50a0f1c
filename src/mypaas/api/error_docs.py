"""The OpenAPI spec lists, per operation, every status it can answer with, and the one ``Error`` body of
them all (``{"error": "...", "field": "..."}``, see errors.py). Decided here in one place: 401 and 403 from
the operation's access rule (policy.RULES), 400 from its parameters and body, 404 from its path, 409 for
the writes, 503 (a busy state store) for all that open it, the rest from small tables keyed by the route's
name. FastAPI's own 422 goes: a request that fails validation is answered 400 (app.py's handler)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from mypaas.manager.identity.policy import RULES, Scope


class Error(BaseModel):
    """What every 4xx and 5xx answer of the API holds."""

    model_config = ConfigDict(extra="allow", title="Error")

    error: str = Field(description="what went wrong, one line for a person")
    field: str | None = Field(None, description="the input at fault (a parameter or a body field)")


WHY = {
    400: "Bad input: a parameter or a body field (``field`` names it)",
    401: "No valid token (missing, wrong, expired or revoked)",
    403: "The caller's role does not allow this operation",
    404: "An unknown app, service, release, operation or other named thing",
    409: "A conflict: a name, port or domain taken, or the thing busy or in use",
    413: "The request body is too large",
    429: "Too many failed logins: wait, then try again",
    501: "Not supported here (e.g. the private registry is turned off)",
    502: "The engine, the router, the registry or another part failed",
    503: "The state store is busy (a write waited past its timeout): try again after Retry-After seconds",
}

# errors are JSON whatever the operation's own answer is (the Prometheus text, a log stream)
JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# operations that answer 401 with no token needed (they check credentials of their own)
OWN_CREDENTIALS = frozenset({"registry_token", "login", "sign_in", "git_hook"})
# operations reading or writing only the manager's own state: no part of the platform can fail under them
LOCAL = frozenset(
    {
        "health",
        "platform_ca",
        "operation",
        "login",
        "sign_in",
        "session_state",
        "sign_out",
        "whoami",
        "logout",
        "list_users",
        "add_user",
        "remove_user",
        "set_password",
        "list_teams",
        "add_team",
        "remove_team",
        "add_member",
        "remove_member",
        "list_tokens",
        "create_token",
        "revoke_token",
        "list_keys",
        "add_key",
        "remove_key",
        "git_remote",
        "set_git_branch",
        "audit",
        "backup_schedule",
        "set_backup_schedule",
        "remove_backup_schedule",
        # a repository's deploy key and watch are the manager's own state; a webhook starts an operation
        "deploy_key",
        "git_watch",
        "git_unwatch",
        "git_watches",
        "git_hook",
    }
)
# operations that never open the state store (every other one can find it busy: 503)
NO_STORE = frozenset({"health", "platform_ca"})
# writes that take no name nor lock, so nothing can conflict
NO_CONFLICT = frozenset({"login", "sign_in", "sign_out", "reconcile", "registry_gc"})
# operations whose query names a thing that may not exist (an app, a user, a repository): 404
QUERY_LOOKUP = frozenset({"events", "list_volumes", "list_images", "audit", "list_tokens", "export_platform"})
# operations reading a request body of their own (not a declared one): a size limit applies
RAW_BODY = frozenset({"deploy", "import_image", "set_secret", "git_hook"})
# operations through the private registry (501 when it is turned off)
REGISTRY = frozenset(
    {
        "registry_token",
        "list_images",
        "import_image",
        "build_base",
        "remove_image",
        "remove_images",
        "registry_gc",
        "registry_status",
        "remove",
    }
)
EXTRA: dict[str, frozenset[int]] = {
    "login": frozenset({429}),
    "sign_in": frozenset({403, 429}),  # 403: the hosts' pull token cannot sign in
    "sign_out": frozenset({403}),  # a valid session's sign-out without its CSRF header
    "add_host": frozenset({501}),
    "destroy_host": frozenset({501}),  # a driver account that cannot destroy machines
    "build_base": frozenset({501}),
    "add_team": frozenset({404}),  # the owner it names is no user
    "apply": frozenset({404}),  # the file names a host (or an app to remove) the platform lacks
    "export_platform": frozenset({409}),  # the kubernetes format of an app with no release yet
}


def _has_input(route: APIRoute) -> bool:
    """Whether the operation takes a path or query parameter or a body (its token header aside)."""
    dep = route.dependant
    params = [*dep.path_params, *dep.query_params, *dep.body_params]
    for sub in dep.dependencies:
        params += [*sub.path_params, *sub.query_params, *sub.body_params]
    return bool(params) or route.name in RAW_BODY


def _has_body(route: APIRoute) -> bool:
    return route.body_field is not None or route.name in RAW_BODY


def error_statuses(route: APIRoute) -> set[int]:
    """Every error status operation ``route`` can answer with."""
    name, rule = route.name, RULES.get(route.name)
    statuses = set(EXTRA.get(name, ()))
    if _has_input(route):
        statuses.add(400)
    if rule is None or rule.scope != Scope.PUBLIC or name in OWN_CREDENTIALS:
        statuses.add(401)
    if rule is None or rule.scope != Scope.PUBLIC:
        statuses.add(403)
    if "{" in route.path_format or name in QUERY_LOOKUP:
        statuses.add(404)
    if set(route.methods or ()) - {"GET", "HEAD"} and name not in NO_CONFLICT:
        statuses.add(409)
    if _has_body(route):
        statuses.add(413)
    if name in REGISTRY:
        statuses.add(501)
    if name not in LOCAL:
        statuses.add(502)
    if name not in NO_STORE:
        statuses.add(503)
    return statuses


def document_errors(routes: Iterable[BaseRoute]) -> None:
    """Add each operation's error statuses to its OpenAPI entry. Call it with the routers' own routes
    before they are included in the app (FastAPI copies a route's responses when including it)."""
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        given: dict[int | str, dict[str, Any]] = dict(route.responses)
        for status in sorted(error_statuses(route)):
            given.setdefault(status, {"model": Error, "description": WHY[status], "content": JSON_ERROR})
        route.responses = given


def without_validation_422(app: FastAPI) -> None:
    """Make ``app.openapi`` drop FastAPI's 422 entries (and their schemas): the API answers 400."""
    make: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = make()
        for item in spec.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict):
                    op.get("responses", {}).pop("422", None)
        schemas = spec.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
