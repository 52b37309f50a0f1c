"""The service keys of a Compose file: one handler per key checks its value and returns the ServiceSpec
fields it gives (or warns where MyPaas maps a key differently than docker compose)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mypaas.domain import (
    MAX_REPLICAS,
    BuildSpec,
    HealthCheck,
    ServiceSpec,
)
from mypaas.errors import InvalidSpec
from mypaas.spec import networks as names
from mypaas.spec.environment import env_file_entries, environment_entries, service_environment
from mypaas.spec.options import OPTION_KEYS, check_service
from mypaas.spec.ports import parse_ports, protocol
from mypaas.spec.resources import RESOURCE_KEYS, check_same
from mypaas.spec.rollout import deploy_policies, labels, restart
from mypaas.spec.secrets import service_configs, service_secrets
from mypaas.spec.security import security_opt
from mypaas.spec.tmpfs import finish_mounts, parse_tmpfs
from mypaas.spec.values import (
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_positive_float,
    as_str,
    checked_keys,
    is_extension,
    key_values,
    parse_bytes,
    parse_duration,
    parse_probe,
    port_number,
    unsupported,
)
from mypaas.spec.volumes import parse_volumes

if TYPE_CHECKING:
    from mypaas.settings import Settings

_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
# Why some service keys are refused, said in the error (every other unknown key gets the generic message).
# Keys docker compose reads as a plain string whose empty value means "not set" (``${PLATFORM:-}``).
_EMPTY_IS_UNSET = frozenset(
    {"image", "platform", "user", "working_dir", "hostname", "container_name", "stop_signal", "restart"}
    | {"runtime", "network_mode", "pid", "ipc"}
)
_REFUSED = {"memswap_limit": "use deploy.resources.limits.memory (MyPaas leaves swap to the engine)"}


@dataclass(frozen=True)
class Policy:
    """What the platform's admin allows (settings): host paths as volumes, privileged containers."""

    allow_host_mounts: bool = False
    allow_privileged: bool = False
    allow_docker_socket: bool = False

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            allow_host_mounts=settings.allow_host_mounts,
            allow_privileged=settings.allow_privileged,
            allow_docker_socket=settings.allow_docker_socket,
        )


@dataclass
class Context:
    """What a service's keys are checked against, and the warnings they collect."""

    services: set[str]
    volumes: set[str]
    networks: set[str]
    env_files: Mapping[str, str]
    variables: Mapping[str, str]
    policy: Policy
    warnings: list[str] = field(default_factory=list)
    external_volumes: Mapping[str, str] = field(default_factory=dict)  # compose name -> engine name

    def warn(self, where: str, message: str) -> None:
        """Say where MyPaas maps a key differently than docker compose does (shown with the deploy)."""
        self.warnings.append(f"{where}: {message}")


def parse_service(name: Any, body: Any, context: Context) -> ServiceSpec:
    where = f"services.{name}"
    safe, aliases = names.service_name(name, where, context)
    if not isinstance(body, dict):
        raise InvalidSpec(f"{where} must be a mapping of service keys", field=where)
    kwargs: dict[str, Any] = {"aliases": aliases}
    for key, value in as_mapping(body, where).items():
        if key == "x-mypaas-probe":
            kwargs["probe"] = parse_probe(value, f"{where}.{key}")
            continue
        if is_extension(key) or (value == "" and key in _EMPTY_IS_UNSET):
            continue
        handler = _SERVICE_KEYS.get(key)
        if handler is None:
            raise unsupported(key, f"{where}.{key}", _REFUSED.get(key))
        for field_name, given in handler(value, f"{where}.{key}", context).items():
            check_same(kwargs, field_name, given, key, where)
            added = [*kwargs.get(field_name, []), *given] if field_name in _ACCUMULATED else None
            kwargs[field_name] = given if added is None else list(dict.fromkeys(added))
    if "label_file" in kwargs:  # labels over the label files' (container_keys.label_file)
        kwargs["labels"] = {**kwargs.pop("label_file"), **kwargs.get("labels", {})}
    environment = kwargs.get("environment", {})
    env_files = kwargs.pop("env_file", [])
    kwargs["environment"] = service_environment(env_files, environment, context.env_files, context.variables)
    finish_mounts(kwargs, where)
    if not kwargs.get("image") and "build" not in kwargs:
        raise InvalidSpec(f"service {name!r} needs an 'image' or a 'build'", field=f"{where}.image")
    return check_service(ServiceSpec(name=safe, **kwargs), where)


_ACCUMULATED = {"aliases"}


def handler_of(key: str) -> Handler:
    """The handler that checks service key ``key`` (spec/admission.py runs them on a spec)."""
    return _SERVICE_KEYS[key]


# --- service keys: each handler checks one key and returns the ServiceSpec fields it gives ---------------
Handler = Callable[[Any, str, Context], dict[str, Any]]


def _image(value: Any, where: str, context: Context) -> dict[str, Any]:
    image = as_str(value, where)
    if any(char.isspace() for char in image):
        raise InvalidSpec(f"invalid image reference {image!r}", field=where)
    return {"image": image}


def _build(value: Any, where: str, context: Context) -> dict[str, Any]:
    if isinstance(value, str):
        return {"build": BuildSpec(context=as_str(value, where))}
    body = checked_keys(value, where, {"context", "dockerfile", "args", "target"})
    spec: dict[str, Any] = {"context": as_str(body.get("context", "."), f"{where}.context")}
    if "dockerfile" in body:
        spec["dockerfile"] = as_str(body["dockerfile"], f"{where}.dockerfile")
    if "target" in body:
        spec["target"] = as_str(body["target"], f"{where}.target")
    if "args" in body:
        args = key_values(body["args"], f"{where}.args")
        spec["args"] = {
            key: val if val is not None else context.variables[key]
            for key, val in args.items()
            if val is not None or key in context.variables
        }
    return {"build": BuildSpec(**spec)}


def _argv(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InvalidSpec(f"{where}: cannot split {value!r}: {exc}", field=where) from exc
    items = as_list(value, where)
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise InvalidSpec(f"{where}[{index}] must be a string, got {item!r}", field=f"{where}[{index}]")
    return [str(item) for item in items]


def _command(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"command": _argv(value, where)}


def _entrypoint(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"entrypoint": _argv(value, where)}


def _environment(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"environment": environment_entries(value, where, context.variables)}


def _env_file(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"env_file": env_file_entries(value, where)}


def _expose(value: Any, where: str, context: Context) -> dict[str, Any]:
    ports: list[int] = []
    for index, item in enumerate(as_list(value, where)):
        item_field = f"{where}[{index}]"
        number, kind = item, "tcp"
        if isinstance(item, str) and "/" in item:
            number, _, kind = item.partition("/")
            protocol(kind, item_field)
        port = port_number(number, item_field)
        if kind == "tcp":  # a UDP port is not routed (and expose changes nothing else)
            ports.append(port)
    return {"expose": ports}


def _depends_on(value: Any, where: str, context: Context) -> dict[str, Any]:
    if isinstance(value, list):
        wanted = {as_str(item, f"{where}[{index}]"): "service_started" for index, item in enumerate(value)}
    else:
        wanted = {}
        for name, body in as_mapping(value, where).items():
            condition = _dependency(body, f"{where}.{name}", name in context.services, context)
            if condition is not None:
                wanted[name] = condition
    for name in wanted:
        if name not in context.services:
            raise InvalidSpec(f"{where}: unknown service {name!r}", field=where)
    return {"depends_on": {names.dns_name(name, where): condition for name, condition in wanted.items()}}


def _dependency(body: Any, where: str, known: bool, context: Context) -> str | None:
    """The condition of one dependency; None for one that may be missing (``required: false``) and is."""
    spec = checked_keys(body, where, {"condition", "restart", "required"})
    condition = spec.get("condition", "service_started")
    if condition not in _CONDITIONS:
        raise InvalidSpec(
            f"{where}.condition must be one of {', '.join(_CONDITIONS)}, got {condition!r}",
            field=f"{where}.condition",
        )
    if as_bool(spec.get("restart", False), f"{where}.restart"):
        context.warn(f"{where}.restart", "MyPaas does not restart this service when the other one restarts")
    if not as_bool(spec.get("required", True), f"{where}.required") and not known:
        context.warn(where, "not in the app (required: false): the service starts without it")
        return None
    return str(condition)


def _healthcheck(value: Any, where: str, context: Context) -> dict[str, Any]:
    keys = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
    body = checked_keys(value, where, keys)
    if as_bool(body.get("disable", False), f"{where}.disable"):  # as docker compose: test or not
        return {"healthcheck": HealthCheck(test=["NONE"])}
    if "test" not in body and set(body) <= {"disable"}:
        return {}  # disable: false and nothing else: the image's own check
    test = _health_test(body.get("test"), f"{where}.test")
    check: dict[str, Any] = {"test": test}
    if test == ["NONE"]:
        return {"healthcheck": HealthCheck(**check)}
    for key, name in (
        ("interval", "interval_s"),
        ("timeout", "timeout_s"),
        ("start_period", "start_period_s"),
        ("start_interval", "start_interval_s"),
    ):
        if key in body:
            check[name] = parse_duration(body[key], f"{where}.{key}")
            if key in ("interval", "timeout", "start_interval") and check[name] <= 0:
                raise InvalidSpec(f"{where}.{key} must be greater than 0", field=f"{where}.{key}")
    if "retries" in body:
        check["retries"] = as_int(body["retries"], f"{where}.retries", minimum=1)
    if "start_interval" in body:
        context.warn(
            f"{where}.start_interval",
            "kept, not applied: the engine checks every interval during the start period too "
            "(start_interval needs Docker Engine 25)",
        )
    return {"healthcheck": HealthCheck(**check)}


def _health_test(value: Any, where: str) -> list[str]:
    """The test as Docker takes it (``[NONE]``: no check, not even the image's)."""
    if isinstance(value, str) and value:
        return ["CMD-SHELL", value]
    if value is None:
        raise InvalidSpec(f"{where} is required (a command, or [CMD, ...], [CMD-SHELL, '...'])", field=where)
    test = [as_str(item, f"{where}[{index}]") for index, item in enumerate(as_list(value, where))]
    if test == ["NONE"]:
        return test
    if (test[0:1] == ["CMD"] and len(test) >= 2) or (test[0:1] == ["CMD-SHELL"] and len(test) == 2):
        return test
    raise InvalidSpec(
        f"{where} must be [CMD, argv...], [CMD-SHELL, one command] or [NONE], got {test!r}",
        field=where,
    )


def _deploy(value: Any, where: str, context: Context) -> dict[str, Any]:
    keys = {"replicas", "resources", "placement", "mode", "labels", "restart_policy", "update_config"}
    body = checked_keys(value, where, keys)
    fields: dict[str, Any] = deploy_policies(body, where, context)
    if "replicas" in body:
        fields["replicas"] = as_int(body["replicas"], f"{where}.replicas", minimum=0, maximum=MAX_REPLICAS)
    resources = checked_keys(body.get("resources"), f"{where}.resources", {"limits", "reservations"})
    limits = checked_keys(resources.get("limits"), f"{where}.resources.limits", {"cpus", "memory"})
    if "cpus" in limits:
        fields["cpus"] = as_positive_float(limits["cpus"], f"{where}.resources.limits.cpus")
    if "memory" in limits:
        fields["memory"] = parse_bytes(limits["memory"], f"{where}.resources.limits.memory")
    reserved = checked_keys(
        resources.get("reservations"), f"{where}.resources.reservations", {"cpus", "memory"}
    )
    if "cpus" in reserved:
        fields["reserve_cpus"] = as_positive_float(reserved["cpus"], f"{where}.resources.reservations.cpus")
    if "memory" in reserved:
        fields["reserve_memory"] = parse_bytes(reserved["memory"], f"{where}.resources.reservations.memory")
    placement = checked_keys(body.get("placement"), f"{where}.placement", {"constraints"})
    if "constraints" in placement:
        fields["placement"] = _constraints(placement["constraints"], f"{where}.placement.constraints")
    return fields


_CONSTRAINT = re.compile(
    r"^\s*(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[\w.-]+)|engine\.labels\.[\w.-]+)"
    r"\s*(==|!=)\s*\S.*\Z"
)


def _constraints(value: Any, where: str) -> list[str]:
    """Placement constraints, Swarm's syntax: ``node.labels.zone==east``, ``node.role!=manager``."""
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise InvalidSpec(f"{where}: expected a list of strings such as node.labels.zone==east", field=where)
    for item in value:
        if not _CONSTRAINT.match(item):
            raise InvalidSpec(
                f"{where}: invalid constraint {item!r}: expected node.labels.KEY==VALUE, "
                "node.hostname==NAME or node.role==manager|worker (or !=)",
                field=where,
            )
    return [c.replace(" ", "") for c in value]


def _privileged(value: Any, where: str, context: Context) -> dict[str, Any]:
    if not as_bool(value, where):
        return {}
    if not context.policy.allow_privileged:
        raise InvalidSpec(
            "privileged containers are not allowed (admin setting allow_privileged)", field=where
        )
    return {"privileged": True}


_SERVICE_KEYS: dict[str, Handler] = {
    "image": _image,
    "build": _build,
    "command": _command,
    "entrypoint": _entrypoint,
    "environment": _environment,
    "env_file": _env_file,
    "ports": parse_ports,
    "expose": _expose,
    "volumes": parse_volumes,
    "tmpfs": parse_tmpfs,
    "depends_on": _depends_on,
    "healthcheck": _healthcheck,
    "deploy": _deploy,
    "restart": restart,
    "labels": labels,
    "networks": names.service_networks,
    "privileged": _privileged,
    "secrets": service_secrets,
    "configs": service_configs,
    "container_name": names.container_name,
    "hostname": names.hostname,
    "links": names.links,
    "security_opt": security_opt,
    **OPTION_KEYS,
    **RESOURCE_KEYS,
}
