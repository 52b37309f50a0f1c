"""The monitor's acting half: autoscaling policies and alert rules (the services the API calls), and the
evaluation thread that runs both every ``monitor_eval_s``.

Autoscaling changes replica counts through the manager's ``Apps.scale`` (desired state, then the
reconcile loop), the same call the API makes; alerts read the apps' ready instances and the sampler's
figures.
Both keep the router's request figures of the last ``autoscale_window_s`` (``requests``): requests/s
for the rps targets, and the 5xx % of each app for ``error_rate`` rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Engine

from mypaas.egress import Egress, Refused, internal_ports
from mypaas.errors import Conflict, InvalidSpec, NotFound, no_service
from mypaas.monitor.alerts import Alerts, Facts, Rule, RuleStore, Webhooks, memory_by_app
from mypaas.monitor.autoscale import Autoscaler, CpuWindow, Policy, PolicyStore, Requests
from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import RequestWindow
from mypaas.monitor.service import EngineFacts, Monitoring
from mypaas.settings import Settings
from mypaas.states import AppState

log = logging.getLogger("mypaas.automation")

AUTOSCALER = "autoscaler"  # the user recorded on the scale operations the autoscaler makes
_SKIP_STATES = (AppState.STOPPED, AppState.DELETING)


class AppControl(Protocol):
    """What autoscaling and alerts ask of the apps (the manager's Apps service)."""

    def get(self, name: str) -> dict[str, Any]: ...

    def summaries(self) -> list[dict[str, Any]]: ...

    def scale(self, name: str, counts: dict[str, int], user: str) -> object: ...


def _no_hosts_down() -> dict[str, bool]:
    return {}


def check_rps_target(policy: Policy, web: str | None) -> None:
    """Requests per second are counted by the router, for the app's routed service only."""
    if policy.target_rps_per_replica is None or policy.service == web:
        return
    routed = f"only {web} is routed" if web else "the app has no routed service"
    raise InvalidSpec(
        f"--rps needs a routed service: the router counts requests per second, and {policy.service} "
        f"has no routed port ({routed}); scale {policy.service} on --cpu instead",
        field="rps",
    )


class Automation:
    def __init__(
        self,
        *,
        engine: Engine,
        apps: AppControl,
        backend: EngineFacts,
        monitoring: Monitoring,
        settings: Settings,
        hosts_down: Callable[[], dict[str, bool]] = _no_hosts_down,
    ) -> None:
        self._apps = apps
        self._backend = backend
        self._monitoring = monitoring
        self.interval_s = settings.monitor_eval_s
        self.window = CpuWindow(settings.autoscale_window_s)
        self.requests = RequestWindow(settings.autoscale_window_s)
        self.autoscaler = Autoscaler(
            store=PolicyStore(engine),
            window=self.window,
            replicas=self._replicas,
            scale=self._scale,
            events=monitoring.events,
            requests=self._requests,
        )
        self.egress = Egress(internal_ports=internal_ports(settings))
        self.webhooks = Webhooks(
            timeout_s=settings.webhook_timeout_s,
            retries=settings.webhook_retries,
            backoff_s=1.0,
            egress=self.egress,
        )
        self.alerts = Alerts(store=RuleStore(engine), sender=self.webhooks, events=monitoring.events)
        self._hosts_down = hosts_down  # a cluster's hosts: name -> down
        monitoring.listeners.append(self._samples)
        monitoring.request_listeners.append(self.requests.add)

    def threads(self, stop: threading.Event) -> dict[str, Callable[[], None]]:
        return {"evaluate": lambda: self.run(stop), "webhooks": lambda: self.webhooks.run(stop)}

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            self.evaluate_once()

    def evaluate_once(self) -> None:
        for name, step in (("autoscaling", self.autoscaler.evaluate), ("alerts", self._alerts)):
            try:
                step()
            except Exception:  # a locked database or a bug: the next pass tries again
                log.exception("%s evaluation failed", name)

    # -- autoscaling ----------------------------------------------------------------------------

    def policies(self, app: str) -> list[dict[str, Any]]:
        self._apps.get(app)
        return [p.to_dict() for p in self.autoscaler.store.list(app)]

    def set_policy(self, policy: Policy) -> dict[str, Any]:
        info = self._apps.get(policy.app)
        if info.get("deleting"):  # its removal would leave the policy behind
            raise Conflict(str(info["deleting"]), field="app")
        services = info["services"]
        if policy.service not in services:
            raise no_service(policy.app, policy.service, services)
        check_rps_target(policy, self._apps.get(policy.app)["web"])
        saved = self.autoscaler.store.put(policy)
        targets = [f"cpu target {policy.target_cpu_pct:g}%"] if policy.target_cpu_pct else []
        if policy.target_rps_per_replica:
            targets.append(f"{policy.target_rps_per_replica:g} req/s per replica")
        self._monitoring.events.record(
            policy.app,
            "autoscale_set",
            f"autoscaling {policy.service}: {policy.min_replicas}..{policy.max_replicas} replicas"
            + "".join(f", {t}" for t in targets),
            {"service": policy.service},
        )
        return saved.to_dict()

    def remove_policy(self, app: str, service: str) -> None:
        if not self.autoscaler.store.remove(app, service):
            raise NotFound(f"app {app} has no autoscaling policy for {service!r}", field="service")
        message = f"autoscaling {service}: off"
        self._monitoring.events.record(app, "autoscale_off", message, {"service": service})

    def _replicas(self, app: str, service: str) -> int | None:
        try:
            info = self._apps.get(app)
        except NotFound:
            self.autoscaler.store.remove(app)  # the app was deleted: so are its policies
            return None
        svc = info["services"].get(service)
        if info["state"] in _SKIP_STATES or svc is None:
            return None
        return int(svc["replicas"])

    def _requests(self, app: str, service: str, since: float) -> Requests | None:
        """The routed (web) service's requests/s over the window since ``since``, and its ready
        replicas (the route's upstreams); None for another service or without figures."""
        route = self._monitoring.route(app)
        if route is None or self._apps.get(app)["web"] != service:
            return None
        rps = self.requests.rps(app, time.time(), after=since)
        return None if rps is None else Requests(rps=rps, ready=len(route.upstreams))

    def _scale(self, app: str, service: str, replicas: int) -> None:
        self._apps.scale(app, {service: replicas}, AUTOSCALER)

    def _samples(self, samples: list[Sample]) -> None:
        self.window.add(samples)

    # -- alerts ---------------------------------------------------------------------------------

    def rules(self) -> list[dict[str, Any]]:
        firing = sorted(self.alerts.firing_since().items())
        out = []
        for rule in self.alerts.store.list():
            data = rule.to_dict()
            mine = [(target or None, since) for (name, target), since in firing if name == rule.name]
            data["firing"] = [target for target, _ in mine]
            # when each firing target's condition started holding (the dashboard's "since")
            data["firing_since"] = [{"target": target, "since": since} for target, since in mine]
            out.append(data)
        return out

    def check_rule(self, rule: Rule, *, app_made: bool = False) -> None:
        """What adding ``rule`` checks: its fields, its webhook's address, its app (unless ``app_made``:
        an app the caller makes before the rule)."""
        rule.check()
        try:
            self.egress.check(rule.webhook, allow_private=rule.allow_private)
        except Refused as exc:
            raise InvalidSpec(f"webhook refused: {exc}", field="webhook") from exc
        if rule.app is not None and not app_made:  # an unknown app: "no app named 'x'; did you mean 'y'?"
            deleting = self._apps.get(rule.app).get("deleting")
            if deleting:  # its removal would take the rule with it
                raise Conflict(str(deleting), field="app")

    def add_rule(self, rule: Rule) -> dict[str, Any]:
        self.check_rule(rule)
        return self.alerts.store.add(rule).to_dict()

    def update_rule(self, rule: Rule) -> dict[str, Any]:
        """Change a rule in place (see ``RuleStore.update``: its state and history are kept)."""
        self.check_rule(rule)
        return self.alerts.store.update(rule).to_dict()

    def remove_rule(self, name: str) -> None:
        self.alerts.store.remove(name)

    def _alerts(self) -> None:
        if not self.alerts.store.list():
            return
        apps = self._apps.summaries()
        # a stopped app is down on purpose: no app_down, and its 503s are no error_rate (firing ones resolve)
        ready = {
            a["name"]: int(a["ready"])
            for a in apps
            if a["release"] is not None and a["state"] not in _SKIP_STATES
        }
        stopped = {a["name"] for a in apps if a["state"] == AppState.STOPPED}
        errors = self.requests.error_pct(time.time())
        latest = [s for key, s in self._monitoring.sampler.latest.items() if key != "host"]
        self.alerts.evaluate(
            Facts(
                ready=ready,
                memory_pct=memory_by_app(latest),
                error_pct=None if errors is None else {a: p for a, p in errors.items() if a not in stopped},
                engine_up=self._engine_up(),
                hosts_down=self._hosts_down(),
            )
        )

    def _engine_up(self) -> bool:
        try:
            return self._backend.ping()
        except Exception:  # ping should answer False, but an unreachable engine is what we check
            return False
