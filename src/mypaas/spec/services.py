"""The service keys of a Compose file: one handler per key checks its value and returns the ServiceSpec
fields it gives (or warns where MyPaas maps a key differently than docker compose)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mypaas.domain import (
    MAX_REPLICAS,
    BuildSpec,
    HealthCheck,
    ServiceSpec,
    check_name,
)
from mypaas.errors import InvalidSpec
from mypaas.spec.environment import env_file_entries, environment_entries, service_environment
from mypaas.spec.secrets import service_configs, service_secrets
from mypaas.spec.values import (
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_positive_float,
    as_str,
    check_protocol,
    checked_keys,
    is_extension,
    key_values,
    long_port,
    parse_bytes,
    parse_duration,
    parse_probe,
    port_number,
    short_port,
    unsupported,
)
from mypaas.spec.volumes import finish_mounts, parse_tmpfs, parse_volumes

_RESTART = ("no", "always", "on-failure", "unless-stopped")
_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
# Why some service keys are refused, said in the error (every other unknown key gets the generic message).
_REFUSED = {
    "container_name": "MyPaas names containers itself (app, service, replica)",
    "hostname": "the service name is its host name on the app network",
    "working_dir": "set WORKDIR in the image instead",
    "scale": "use deploy.replicas",
    "cpus": "use deploy.resources.limits.cpus",
    "mem_limit": "use deploy.resources.limits.memory",
}


@dataclass(frozen=True)
class Policy:
    """What the platform's admin allows (settings): host paths as volumes, privileged containers."""

    allow_host_mounts: bool = False
    allow_privileged: bool = False
    allow_docker_socket: bool = False


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
    check_name(name, field=where)
    if not isinstance(body, dict):
        raise InvalidSpec(f"{where} must be a mapping of service keys", field=where)
    kwargs: dict[str, Any] = {}
    for key, value in as_mapping(body, where).items():
        if key == "x-mypaas-probe":
            kwargs["probe"] = parse_probe(value, f"{where}.{key}")
            continue
        if is_extension(key):
            continue
        handler = _SERVICE_KEYS.get(key)
        if handler is None:
            raise unsupported(key, f"{where}.{key}", _REFUSED.get(key))
        kwargs.update(handler(value, f"{where}.{key}", context))
    environment = kwargs.get("environment", {})
    env_files = kwargs.pop("env_file", [])
    kwargs["environment"] = service_environment(env_files, environment, context.env_files, context.variables)
    finish_mounts(kwargs, where)
    if not kwargs.get("image") and "build" not in kwargs:
        raise InvalidSpec(f"service {name!r} needs an 'image' or a 'build'", field=f"{where}.image")
    return ServiceSpec(name=name, **kwargs)


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


def _ports(value: Any, where: str, context: Context) -> dict[str, Any]:
    ports = []
    for index, item in enumerate(as_list(value, where)):
        item_field = f"{where}[{index}]"
        ports.append(long_port(item, item_field) if isinstance(item, dict) else short_port(item, item_field))
    return {"ports": ports}


def _expose(value: Any, where: str, context: Context) -> dict[str, Any]:
    ports: list[int] = []
    for index, item in enumerate(as_list(value, where)):
        item_field = f"{where}[{index}]"
        number = item
        if isinstance(item, str) and "/" in item:
            number, _, protocol = item.partition("/")
            check_protocol(protocol, item_field)
        ports.append(port_number(number, item_field))
    return {"expose": ports}


def _depends_on(value: Any, where: str, context: Context) -> dict[str, Any]:
    if isinstance(value, list):
        wanted = {as_str(item, f"{where}[{index}]"): "service_started" for index, item in enumerate(value)}
    else:
        wanted = {}
        for name, body in as_mapping(value, where).items():
            condition = checked_keys(body, f"{where}.{name}", {"condition"}).get(
                "condition", "service_started"
            )
            if condition not in _CONDITIONS:
                raise InvalidSpec(
                    f"{where}.{name}.condition must be one of {', '.join(_CONDITIONS)}, got {condition!r}",
                    field=f"{where}.{name}.condition",
                )
            wanted[name] = condition
    for name in wanted:
        if name not in context.services:
            raise InvalidSpec(f"{where}: unknown service {name!r}", field=where)
    return {"depends_on": wanted}


def _healthcheck(value: Any, where: str, context: Context) -> dict[str, Any]:
    keys = {"test", "interval", "timeout", "retries", "start_period", "disable"}
    body = checked_keys(value, where, keys)
    if as_bool(body.get("disable", False), f"{where}.disable"):
        return {"healthcheck": None}
    test = _health_test(body.get("test"), f"{where}.test")
    if test is None:
        return {"healthcheck": None}
    check: dict[str, Any] = {"test": test}
    for key, name in (
        ("interval", "interval_s"),
        ("timeout", "timeout_s"),
        ("start_period", "start_period_s"),
    ):
        if key in body:
            check[name] = parse_duration(body[key], f"{where}.{key}")
            if key != "start_period" and check[name] <= 0:
                raise InvalidSpec(f"{where}.{key} must be greater than 0", field=f"{where}.{key}")
    if "retries" in body:
        check["retries"] = as_int(body["retries"], f"{where}.retries", minimum=1)
    return {"healthcheck": HealthCheck(**check)}


def _health_test(value: Any, where: str) -> list[str] | None:
    """The test as Docker takes it; None for ``NONE`` (and for a missing test only if disabled)."""
    if isinstance(value, str) and value:
        return ["CMD-SHELL", value]
    if value is None:
        raise InvalidSpec(f"{where} is required (a command, or [CMD, ...], [CMD-SHELL, '...'])", field=where)
    test = [as_str(item, f"{where}[{index}]") for index, item in enumerate(as_list(value, where))]
    if test == ["NONE"]:
        return None
    if (test[0:1] == ["CMD"] and len(test) >= 2) or (test[0:1] == ["CMD-SHELL"] and len(test) == 2):
        return test
    raise InvalidSpec(
        f"{where} must be [CMD, argv...], [CMD-SHELL, one command] or [NONE], got {test!r}",
        field=where,
    )


def _deploy(value: Any, where: str, context: Context) -> dict[str, Any]:
    body = checked_keys(value, where, {"replicas", "resources", "placement"})
    fields: dict[str, Any] = {}
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
    r"\s*(==|!=)\s*\S.*$"
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


def _restart(value: Any, where: str, context: Context) -> dict[str, Any]:
    if value not in _RESTART:
        hint = (
            " (a retry count is not supported: use on-failure)"
            if str(value).startswith("on-failure:")
            else ""
        )
        raise InvalidSpec(f"{where} must be one of {', '.join(_RESTART)}, got {value!r}{hint}", field=where)
    return {"restart": value}


def _labels(value: Any, where: str, context: Context) -> dict[str, Any]:
    labels = {key: val or "" for key, val in key_values(value, where).items()}
    for key in labels:
        if not key or any(char.isspace() for char in key):
            raise InvalidSpec(f"{where}: invalid label name {key!r}", field=where)
        if key.lower().startswith("mypaas."):
            raise InvalidSpec(
                f"{where}: label {key!r} is reserved ('mypaas.' labels are MyPaas's own)", field=where
            )
    return {"labels": labels}


def _networks(value: Any, where: str, context: Context) -> dict[str, Any]:
    if isinstance(value, list):
        names = [as_str(item, f"{where}[{index}]") for index, item in enumerate(value)]
    else:
        attached = as_mapping(value, where)
        for name, body in attached.items():
            checked_keys(body, f"{where}.{name}", set())  # aliases, ipv4_address, priority...: not supported
        names = list(attached)
    for name in names:
        if name not in context.networks:
            raise InvalidSpec(
                f"{where}: network {name!r} is not declared in the top-level networks", field=where
            )
    return {"networks": list(dict.fromkeys(names))}


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
    "ports": _ports,
    "expose": _expose,
    "volumes": parse_volumes,
    "tmpfs": parse_tmpfs,
    "depends_on": _depends_on,
    "healthcheck": _healthcheck,
    "deploy": _deploy,
    "restart": _restart,
    "labels": _labels,
    "networks": _networks,
    "privileged": _privileged,
    "secrets": service_secrets,
    "configs": service_configs,
}
