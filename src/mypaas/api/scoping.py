"""What a listing or a monitor output shows its caller: the apps of the caller's teams (all of them for
the platform admin, with the platform's own figures and events). The policy decides (``visible``,
``visible_apps``); this applies it to the answers of the routes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request

from mypaas.errors import UnknownApp
from mypaas.manager.identity.policy import (
    Principal,
    Role,
    Rule,
    Scope,
    decide,
    platform_wide,
    visible_apps,
)
from mypaas.manager.platform import Platform

_VIEW = Rule(Scope.APP, Role.VIEWER)


def seen_apps(platform: Platform, who: Principal) -> set[str] | None:
    """The apps ``who`` sees; None: every app, and what is about no app (the platform admin, for whom
    the apps' teams are not read)."""
    if platform_wide(who):
        return None
    return visible_apps(who, platform.identity.app_teams())


def narrowed_to(platform: Platform, who: Principal, app: str | None, operation: str) -> None:
    """A listing narrowed to one app (``?app=``): 403 for an existing app the caller has no role on."""
    if app is None:
        return
    team = platform.identity.team_of_app(app)
    if team is not None:
        decide(_VIEW, who, operation=operation, team=team, app=app)


def only_seen(
    items: Iterable[dict[str, Any]], seen: set[str] | None, key: str = "app"
) -> list[dict[str, Any]]:
    """The items about an app the caller sees (those about no app: the platform admin's only)."""
    if seen is None:
        return list(items)
    return [item for item in items if item.get(key) in seen]


def metrics_now(answer: dict[str, Any], seen: set[str] | None) -> dict[str, Any]:
    """``GET /metrics/now`` for a caller who sees ``seen``: the instances and request figures of those
    apps; this machine's and the hosts' figures are the platform admin's (``hidden`` says they were
    left out)."""
    if seen is None:  # the platform admin
        return answer
    return {
        **answer,
        "host": None,
        "instances": only_seen(answer["instances"], seen),
        "requests": {app: f for app, f in answer["requests"].items() if app in seen},
        "hosts": [],
        "hidden": ["host", "hosts"],
    }


def narrow_hint(platform: Platform, request: Request, exc: UnknownApp) -> UnknownApp:
    """An unknown app's 404 whose "did you mean" names only an app the request's caller sees."""
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:
        return exc.narrowed(lambda _: False)
    seen = seen_apps(platform, who)
    return exc if seen is None else exc.narrowed(lambda name: name in seen)
