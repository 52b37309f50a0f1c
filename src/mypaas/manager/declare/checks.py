"""What `mypaas apply` checks on each change of its plan before it makes any: whatever the service behind
the change (scale, autoscaling, alert rules) would refuse, said in one line that starts with the file's
path of the value at fault (``apps.shop.autoscale.web: max (2) is below min (5)``). A bad file is so
refused whole: nothing of it is applied."""

from __future__ import annotations

from mypaas.domain import MAX_REPLICAS
from mypaas.errors import InvalidSpec, MyPaasError, restated
from mypaas.manager.declare.document import Autoscale, PlatformDoc
from mypaas.manager.declare.plan import REMOVE, Change, Plan
from mypaas.manager.releases import one_replica_with_host_port
from mypaas.monitor.alerts import Rule
from mypaas.monitor.automation import Automation, check_rps_target
from mypaas.monitor.autoscale import Policy

# the autoscale checks' field names -> the keys of the file
_AUTOSCALE_KEYS = {"cpu": "target_cpu_pct", "rps": "target_rps_per_replica"}
_ALERT_KEYS = ("kind", "webhook", "app", "threshold", "for_s")


def check_changes(result: Plan, want: PlatformDoc, automation: Automation) -> None:
    """Raise, naming the file's path, for the first change of ``result`` its service would refuse."""
    for change in result.changes:
        if change.op == REMOVE:
            continue
        if change.kind == "scale":
            _scale(change, want)
        elif change.kind == "autoscale":
            _autoscale(change, want)
        elif change.kind == "alert":
            _alert(change, want, automation)


def policy_of(app: str, service: str, doc: Autoscale) -> Policy:
    """The autoscaling policy an ``autoscale`` entry of the file sets."""
    return Policy(
        app=app,
        service=service,
        min_replicas=doc.min,
        max_replicas=doc.max,
        target_cpu_pct=doc.target_cpu_pct,
        target_rps_per_replica=doc.target_rps_per_replica,
        cooldown_up_s=doc.cooldown_up_s,
        cooldown_down_s=doc.cooldown_down_s,
    )


def _scale(change: Change, want: PlatformDoc) -> None:
    service, replicas = change.value
    if not 0 <= replicas <= MAX_REPLICAS:
        raise InvalidSpec(
            f"{change.path}: replicas must be between 0 and {MAX_REPLICAS}, not {replicas}", field=change.path
        )
    spec = want.apps[change.app or ""].spec
    try:
        one_replica_with_host_port(spec.services[service], replicas, change.path)
    except InvalidSpec as exc:
        raise InvalidSpec(f"{change.path}: {exc.message}", field=change.path) from exc


def _autoscale(change: Change, want: PlatformDoc) -> None:
    app = change.app or ""
    service, doc = change.value
    policy = policy_of(app, service, doc)
    try:
        policy.check()
        check_rps_target(policy, want.apps[app].spec.web)
    except InvalidSpec as exc:
        key = _AUTOSCALE_KEYS.get(exc.field or "", exc.field or "")
        raise InvalidSpec(f"{change.path}: {exc.message}", field=f"{change.path}.{key}") from exc


def _alert(change: Change, want: PlatformDoc, automation: Automation) -> None:
    name, body = change.value
    try:
        automation.check_rule(Rule(name=name, **body.model_dump()), app_made=body.app in want.apps)
    except MyPaasError as exc:
        where = f"{change.path}.{exc.field}" if exc.field in _ALERT_KEYS else change.path
        raise restated(exc, lambda text: f"{where}: {text}", where) from exc
