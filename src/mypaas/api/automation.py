"""REST routes of autoscaling (``/apps/{app}/autoscale``) and alert rules (``/alerts``); the manager's
Automation service does the work."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.api.scoping import seen_apps
from mypaas.manager.identity.policy import Principal, Role, decide_app_or_platform, decide_private_webhook
from mypaas.manager.platform import Platform
from mypaas.monitor.alerts import KINDS, PLATFORM_KINDS, Rule
from mypaas.monitor.autoscale import Policy


class AutoscaleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int = Field(1, description="fewest replicas")
    max: int = Field(description="most replicas")
    target_cpu_pct: float | None = Field(None, description="average CPU per replica, in % of one core")
    target_rps_per_replica: float | None = Field(
        None,
        description="requests per second per replica of the routed service (the router's request figures)",
    )
    cooldown_up_s: float = Field(30.0, description="least time between a change and scaling up")
    cooldown_down_s: float = Field(120.0, description="least time between a change and scaling down")


class AlertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(description=" | ".join(KINDS))
    webhook: str = Field(description="http(s) URL that receives a JSON POST when it fires and resolves")
    app: str | None = Field(None, description="only this app (default: every app)")
    threshold: float = Field(0.0, description="memory_pct and error_rate: the % over which it fires")
    for_s: float = Field(0.0, description="how long the condition must hold before it fires")
    allow_private: bool = Field(
        False,
        description="the webhook may be on a private network (10/8, 192.168/16 ...): platform admin only",
    )


def automation_routes(v1: APIRouter, platform: Platform) -> None:
    automation = platform.automation

    @v1.get("/apps/{name}/autoscale", tags=["autoscale"])
    def get_autoscale(name: str, _: User) -> list[dict[str, Any]]:
        """The app's autoscaling policies, one per service."""
        return automation.policies(name)

    @v1.put("/apps/{name}/autoscale/{service}", tags=["autoscale"])
    def set_autoscale(name: str, service: str, body: AutoscaleBody, _: User) -> dict[str, Any]:
        """Set (or replace) a service's autoscaling policy."""
        return automation.set_policy(
            Policy(
                app=name,
                service=service,
                min_replicas=body.min,
                max_replicas=body.max,
                target_cpu_pct=body.target_cpu_pct,
                target_rps_per_replica=body.target_rps_per_replica,
                cooldown_up_s=body.cooldown_up_s,
                cooldown_down_s=body.cooldown_down_s,
            )
        )

    @v1.delete("/apps/{name}/autoscale/{service}", status_code=204, tags=["autoscale"])
    def remove_autoscale(name: str, service: str, _: User) -> Response:
        """Stop autoscaling the service (its replica count stays as it is)."""
        automation.remove_policy(name, service)
        return Response(status_code=204)

    @v1.get("/alerts", tags=["alerts"])
    def list_alerts(who: User) -> list[dict[str, Any]]:
        """The alert rules, with the targets each one is firing for now: a member sees the rules about
        their teams' apps; rules about every app (or the hosts) are the platform admin's."""
        seen = seen_apps(platform, who)
        return [r for r in automation.rules() if seen is None or _subject(r) in seen]

    @v1.post("/alerts", status_code=201, tags=["alerts"])
    def add_alert(body: AlertBody, who: User) -> dict[str, Any]:
        """Add an alert rule: about one app, a deployer of that app; about every app, a platform admin."""
        rule = Rule(**body.model_dump())
        _may_change_rule(platform, who, "add_alert", rule.subject)
        if rule.allow_private:
            decide_private_webhook(who)
        return automation.add_rule(rule)

    @v1.delete("/alerts/{name}", status_code=204, tags=["alerts"])
    def remove_alert(name: str, who: User) -> Response:
        """Remove an alert rule: the same role as adding it."""
        rule = next((r for r in automation.rules() if r["name"] == name), None)
        if rule is not None:
            _may_change_rule(platform, who, "remove_alert", _subject(rule))
        automation.remove_rule(name)
        return Response(status_code=204)


def _subject(rule: dict[str, Any]) -> str | None:
    """The app a listed rule fires about (None: every app, or the hosts)."""
    return alert_subject(rule["kind"], rule.get("app"))


def alert_subject(kind: str, app: str | None) -> str | None:
    """The app a rule of ``kind`` naming ``app`` fires about: None for every app or the hosts."""
    return None if kind in PLATFORM_KINDS else app


def _may_change_rule(platform: Platform, who: Principal, operation: str, app: str | None) -> None:
    team = platform.identity.team_of_app(app) if app else None
    decide_app_or_platform(who, Role.DEPLOYER, operation=operation, team=team, app=app)
