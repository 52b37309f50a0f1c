"""How a service's instances are restarted and rolled out, and how they are labelled: ``restart``
(``on-failure:N`` included), ``deploy.mode``, ``deploy.restart_policy``, ``deploy.update_config``,
``labels`` and ``deploy.labels``.

On Swarm these become the service's own policies; on the docker backend the engine restarts containers
(``restart``, a retry count included) and the rollout stays MyPaas's own (start-first, all at once, the
previous release serving until the new one is ready): a warning says what is not honoured there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mypaas.container_options import RestartPolicy, UpdatePolicy
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_int, checked_keys, key_values, parse_duration, stringify

if TYPE_CHECKING:
    from mypaas.spec.services import Context

RESTART = ("no", "always", "on-failure", "unless-stopped")
_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}  # deploy.restart_policy
_RESERVED = ("com.docker.", "mypaas.")
_REPLACED = "on the docker backend MyPaas replaces the instance after the engine's {n} restarts"


def restart(value: Any, where: str, context: Context) -> dict[str, Any]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure`` or ``on-failure:N``."""
    text = stringify(value, where)
    name, sep, count = text.partition(":")
    if name not in RESTART or (sep and name != "on-failure"):
        raise InvalidSpec(
            f"{where} must be one of {', '.join(RESTART)} (or on-failure:N), got {value!r}", field=where
        )
    fields: dict[str, Any] = {"restart": name}
    if sep:
        attempts = as_int(count, where, minimum=0)
        fields["restart_policy"] = RestartPolicy(max_attempts=attempts)
        context.warn(where, f"on-failure:{attempts}: " + _REPLACED.format(n=attempts))
    return fields


def deploy_policies(body: dict[str, Any], where: str, context: Context) -> dict[str, Any]:
    """The ``deploy`` keys of this module: mode, labels, restart_policy, update_config."""
    fields: dict[str, Any] = {}
    if "mode" in body:
        mode = body["mode"]
        if mode not in ("replicated", "global"):
            raise InvalidSpec(
                f"{where}.mode must be replicated or global, got {mode!r}", field=f"{where}.mode"
            )
        if mode == "global" and "replicas" in body:
            raise InvalidSpec(f"{where}.replicas cannot be set with mode: global", field=f"{where}.replicas")
        if mode == "global":
            fields["mode"] = mode
            context.warn(
                f"{where}.mode", "global: one instance per host on Swarm; one instance on the docker backend"
            )
    if "labels" in body:
        fields["service_labels"] = labels_of(body["labels"], f"{where}.labels")
        context.warn(
            f"{where}.labels",
            "they label the Swarm service; on the docker backend, as with docker compose, nothing has them",
        )
    if "restart_policy" in body:
        fields.update(_restart_policy(body["restart_policy"], f"{where}.restart_policy", context))
    if "update_config" in body:
        fields["update"] = _update_config(body["update_config"], f"{where}.update_config", context)
    return fields


def _restart_policy(value: Any, where: str, context: Context) -> dict[str, Any]:
    body = checked_keys(value, where, {"condition", "delay", "max_attempts", "window"})
    condition = body.get("condition", "any")
    if condition not in _CONDITIONS:
        raise InvalidSpec(
            f"{where}.condition must be none, on-failure or any, got {condition!r}",
            field=f"{where}.condition",
        )
    policy: dict[str, Any] = {}
    if "max_attempts" in body:
        policy["max_attempts"] = as_int(body["max_attempts"], f"{where}.max_attempts", minimum=0)
    for key in ("delay", "window"):
        if key in body:
            policy[f"{key}_s"] = parse_duration(body[key], f"{where}.{key}")
    if "delay_s" in policy or "window_s" in policy:
        context.warn(
            where, "delay and window are Swarm's: the docker backend restarts with the engine's own back-off"
        )
    if policy.get("max_attempts") and condition != "none":
        context.warn(where, _REPLACED.format(n=policy["max_attempts"]))
    fields: dict[str, Any] = {"restart": _CONDITIONS[condition]}
    if policy:
        fields["restart_policy"] = RestartPolicy(**policy)
    return fields


def _update_config(value: Any, where: str, context: Context) -> UpdatePolicy:
    keys = {"order", "parallelism", "delay", "failure_action", "monitor", "max_failure_ratio"}
    body = checked_keys(value, where, keys)
    policy: dict[str, Any] = {}
    if "order" in body:
        if body["order"] not in ("start-first", "stop-first"):
            raise InvalidSpec(f"{where}.order must be start-first or stop-first", field=f"{where}.order")
        policy["order"] = body["order"]
    if "parallelism" in body:
        policy["parallelism"] = as_int(body["parallelism"], f"{where}.parallelism", minimum=0)
    for key in ("delay", "monitor"):
        if key in body:
            policy[f"{key}_s"] = parse_duration(body[key], f"{where}.{key}")
    if "failure_action" in body:
        action = body["failure_action"]
        if action not in ("continue", "pause", "rollback"):
            raise InvalidSpec(
                f"{where}.failure_action must be continue, pause or rollback", field=f"{where}.failure_action"
            )
        policy["failure_action"] = action
    if "max_failure_ratio" in body:
        policy["max_failure_ratio"] = _ratio(body["max_failure_ratio"], f"{where}.max_failure_ratio")
    rest = sorted(k for k in policy if k != "order")
    if rest:
        named = ", ".join(k.removesuffix("_s") for k in rest)
        context.warn(
            where, f"{named}: Swarm's; on the docker backend MyPaas starts all new instances at once"
        )
    return UpdatePolicy(**policy)


def _ratio(value: Any, where: str) -> float:
    try:
        ratio = float(stringify(value, where))
    except ValueError:
        ratio = -1.0
    if not 0 <= ratio <= 1:
        raise InvalidSpec(f"{where} must be a number from 0 to 1, got {value!r}", field=where)
    return ratio


def labels_of(value: Any, where: str) -> dict[str, str]:
    """Labels, refusing names of the engine (``com.docker.``) and of MyPaas (``mypaas.``): MyPaas finds
    its instances by its labels, and Swarm's would make the manager mistake containers for tasks."""
    labels = {key: val or "" for key, val in key_values(value, where).items()}
    for key in labels:
        if not key or any(char.isspace() for char in key):
            raise InvalidSpec(f"{where}: invalid label name {key!r}", field=where)
        if key.lower().startswith(_RESERVED):
            raise InvalidSpec(
                f"{where}: label {key!r} is reserved: 'com.docker.' labels are the engine's and 'mypaas.' "
                "labels MyPaas's own (no admin setting allows them)",
                field=where,
            )
    return labels


def labels(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"labels": labels_of(value, where)}
