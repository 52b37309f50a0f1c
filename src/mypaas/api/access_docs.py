"""The OpenAPI spec says what each operation needs: the rule of ``policy.RULES`` for the route's name, as
a sentence ending its description and as the ``x-mypaas-access`` extension (scope, least role, text)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from mypaas.manager.identity.policy import RULES


def access_text(name: str) -> str:
    """What the operation ``name`` needs, as the spec says it."""
    rule = RULES.get(name)
    return rule.describe() if rule is not None else "refused to everyone (no access rule)"


def document_access(routes: Iterable[BaseRoute]) -> None:
    """Add each operation's access rule to its OpenAPI entry. Call it with the routers' own routes
    before they are included in the app (FastAPI copies a route's description when including it)."""
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        rule = RULES.get(route.name)
        text = access_text(route.name)
        description = (route.description or "").rstrip()
        route.description = f"{description}\n\nAccess: {text}." if description else f"Access: {text}."
        access = {"needs": text}
        if rule is not None:
            access["scope"] = rule.scope.value
            if rule.role is not None:
                access["role"] = rule.role.label
        route.openapi_extra = {**(route.openapi_extra or {}), "x-mypaas-access": access}
