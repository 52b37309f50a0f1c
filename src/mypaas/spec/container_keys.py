"""More service keys that change only the container itself (compose ``read_only``, ``dns``, ``group_add``,
``pids_limit``, ``cpu_shares``...), and the keys MyPaas refuses with a reason (``devices``,
``volumes_from``, ``post_start``...) or accepts without a field (``attach``, ``develop``). Handlers as in
spec/options.py: each returns the ServiceSpec fields it gives."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.errors import InvalidSpec
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.environment import lookup_file
from mypaas.spec.rollout import labels_of
from mypaas.spec.values import (
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_str,
    stringify,
    unsupported,
)

if TYPE_CHECKING:
    from mypaas.domain import ServiceSpec
    from mypaas.spec.services import Context

Handler = Callable[[Any, str, "Context"], dict[str, Any]]

_DOMAIN = re.compile(
    r"^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?\Z"
)
_DNS_OPT = re.compile(r"^[a-z][a-z0-9_-]*(:[0-9]+)?\Z")
_GROUP = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_CPUSET = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*\Z")

# Keys refused with the reason said in the error.
_HOST_DEVICES = "it passes the host's devices into the container, which MyPaas does not do"
REFUSALS = {
    "devices": _HOST_DEVICES,
    "gpus": _HOST_DEVICES,
    "device_cgroup_rules": _HOST_DEVICES,
    "volumes_from": "MyPaas shares data between services by named volumes: mount the same volume in both",
    "external_links": "MyPaas reaches only the app's own services (and other apps through their routes)",
    "userns_mode": "the engine's user namespace setting is the host's; a service cannot change it",
    "uts": "sharing the host's UTS namespace lets the container rename the host",
    "cgroup": "instances run in their own cgroup namespace, as the engine's default",
    "cgroup_parent": "the host's cgroup hierarchy is the platform's, not the app's",
    "isolation": "MyPaas runs Linux containers with the engine's default isolation",
    "credential_spec": "it is for Windows containers (gMSA); MyPaas runs Linux hosts",
    "storage_opt": "the engine's storage driver options are the host's",
    "blkio_config": "block-device weights and limits name the host's devices",
    "cpu_rt_runtime": "real-time CPU scheduling needs the host's real-time cgroup budget",
    "cpu_rt_period": "real-time CPU scheduling needs the host's real-time cgroup budget",
    "cpu_period": "use deploy.resources.limits.cpus",
    "cpu_quota": "use deploy.resources.limits.cpus",
    "cpu_count": "it is for Windows containers; use deploy.resources.limits.cpus",
    "cpu_percent": "it is for Windows containers; use deploy.resources.limits.cpus",
    "post_start": "lifecycle hooks are not supported yet",
    "pre_stop": "lifecycle hooks are not supported yet",
    "pull_refresh_after": "each release pins its image by digest; instances never pull until the next deploy",
    "provider": "services run by a provider plugin are not MyPaas instances",
    "models": "AI models run by Docker Model Runner are not supported",
    "use_api_socket": "it mounts the engine's API socket (a docker.sock volume needs the admin setting "
    "allow_docker_socket)",
}


def _refused(key: str) -> Handler:
    def handler(value: Any, where: str, context: Context) -> dict[str, Any]:
        raise unsupported(key, where, REFUSALS[key])

    return handler


def _privileged(context: Context, where: str, what: str) -> None:
    if not context.policy.allow_privileged:
        raise InvalidSpec(f"{where}: {what} is not allowed (admin setting allow_privileged)", field=where)


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    """A string or a list of strings, each with where it was written."""
    if isinstance(value, str):
        return [(as_str(value, where), where)]
    return [(as_str(item, f"{where}[{i}]"), f"{where}[{i}]") for i, item in enumerate(as_list(value, where))]


def _read_only(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"read_only": as_bool(value, where)}


def _dns(value: Any, where: str, context: Context) -> dict[str, Any]:
    servers = []
    for text, at in _strings(value, where):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            raise InvalidSpec(f"{at}: {text!r} is not an IP address", field=at) from None
        servers.append(text)
    return {"dns": servers}


def _dns_search(value: Any, where: str, context: Context) -> dict[str, Any]:
    domains = []
    for text, at in _strings(value, where):
        if not _DOMAIN.match(text) or len(text) > 253:
            raise InvalidSpec(f"{at}: {text!r} is not a domain name", field=at)
        domains.append(text)
    return {"dns_search": domains}


def _dns_opt(value: Any, where: str, context: Context) -> dict[str, Any]:
    options = []
    for text, at in _strings(value, where):
        if not _DNS_OPT.match(text):
            raise InvalidSpec(f"{at}: expected a resolver option such as ndots:2, got {text!r}", field=at)
        options.append(text)
    return {"dns_opt": options}


def _domainname(value: Any, where: str, context: Context) -> dict[str, Any]:
    name = as_str(value, where)
    if not _DOMAIN.match(name) or len(name) > 253:
        raise InvalidSpec(f"{where}: {name!r} is not a domain name", field=where)
    return {"domainname": name}


def _group_add(value: Any, where: str, context: Context) -> dict[str, Any]:
    groups = []
    for index, item in enumerate(as_list(value, where)):
        at = f"{where}[{index}]"
        group = (
            stringify(item, at) if isinstance(item, int) and not isinstance(item, bool) else as_str(item, at)
        )
        if not _GROUP.match(group):
            raise InvalidSpec(f"{at}: expected a group name or GID, got {group!r}", field=at)
        groups.append(group)
    return {"group_add": list(dict.fromkeys(groups))}


def _pids_limit(value: Any, where: str, context: Context) -> dict[str, Any]:
    if value in (-1, "-1"):
        return {"pids_limit": -1}
    return {"pids_limit": as_int(value, where, minimum=1, maximum=2**62)}


def _cpu_shares(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"cpu_shares": as_int(value, where, minimum=2, maximum=262144)}


def _cpuset(value: Any, where: str, context: Context) -> dict[str, Any]:
    cpus = stringify(value, where).replace(" ", "")
    if not _CPUSET.match(cpus):
        raise InvalidSpec(f"{where}: expected CPUs such as 0-3 or 0,2, got {value!r}", field=where)
    return {"cpuset": cpus}


def _oom_score_adj(value: Any, where: str, context: Context) -> dict[str, Any]:
    text = stringify(value, where).strip()
    if not re.fullmatch(r"-?[0-9]+", text) or not -1000 <= int(text) <= 1000:
        raise InvalidSpec(f"{where} must be a whole number from -1000 to 1000, got {value!r}", field=where)
    if int(text) < 0:
        _privileged(context, where, "a negative value (it shields the container from the host's OOM killer)")
    return {"oom_score_adj": int(text)}


def _mem_swappiness(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"mem_swappiness": as_int(value, where, minimum=0, maximum=100)}


def _oom_kill_disable(value: Any, where: str, context: Context) -> dict[str, Any]:
    if not as_bool(value, where):
        return {}
    _privileged(context, where, "disabling the OOM killer (the host runs out of memory instead)")
    return {"oom_kill_disable": True}


def _annotations(value: Any, where: str, context: Context) -> dict[str, Any]:
    for key, val in as_mapping(value, where).items():
        stringify(val, f"{where}.{key}")
    context.warn(where, "not set: the engine on MyPaas's hosts takes no container annotations")
    return {}


def _attach(value: Any, where: str, context: Context) -> dict[str, Any]:
    as_bool(value, where)  # MyPaas always collects the logs (`mypaas logs`): nothing to attach to
    return {}


def _develop(value: Any, where: str, context: Context) -> dict[str, Any]:
    as_mapping(value, where)
    context.warn(where, "ignored: compose watch is a development loop; deploy again to update")
    return {}


def label_file(value: Any, where: str, context: Context) -> dict[str, Any]:
    """Labels read from files (KEY=VALUE lines, as an env file), sent with the compose file as env files
    are; ``labels`` goes over them (parse_service merges the two)."""
    found: dict[str, str] = {}
    for path, at in _strings(value, where):
        text = lookup_file(context.env_files, path)
        if text is None:
            raise InvalidSpec(f"{at}: label_file {path!r} was not sent with the compose file", field=at)
        values = parse_env_file(text, f"label_file {path}", context.variables.get)
        found.update(labels_of(values, at))
    return {"label_file": found}


CONTAINER_KEYS: dict[str, Handler] = {
    "read_only": _read_only,
    "dns": _dns,
    "dns_search": _dns_search,
    "dns_opt": _dns_opt,
    "domainname": _domainname,
    "group_add": _group_add,
    "pids_limit": _pids_limit,
    "cpu_shares": _cpu_shares,
    "cpuset": _cpuset,
    "oom_score_adj": _oom_score_adj,
    "mem_swappiness": _mem_swappiness,
    "oom_kill_disable": _oom_kill_disable,
    "annotations": _annotations,
    "attach": _attach,
    "develop": _develop,
    "label_file": label_file,
    **{key: _refused(key) for key in REFUSALS},
}


def check_container(svc: ServiceSpec, where: str) -> None:
    """What the keys cannot say alone: a memory reservation above the limit (the engine would refuse)."""
    if svc.reserve_memory is not None and svc.memory is not None and svc.reserve_memory > svc.memory:
        raise InvalidSpec(
            f"{where}: the memory reservation ({svc.reserve_memory} bytes) is above the memory limit "
            f"({svc.memory} bytes)",
            field=f"{where}.mem_reservation",
        )
