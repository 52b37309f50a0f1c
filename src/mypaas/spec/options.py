"""The service keys that change how an instance's process runs (compose ``user``, ``working_dir``,
``init``, ``stop_signal``, ``ulimits``, ``cap_add``, ``network_mode``...): one handler per key, as in
services.py, each returning the ServiceSpec fields it gives, refusing what the admin does not allow
(naming the setting) and warning where MyPaas differs from docker compose."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.container_options import CONTAINED_CAPS, LogSpec, Ulimit
from mypaas.domain import ServiceSpec
from mypaas.errors import InvalidSpec
from mypaas.spec.container_keys import CONTAINER_KEYS, check_container
from mypaas.spec.values import (
    as_bool,
    as_list,
    as_mapping,
    as_str,
    checked_keys,
    key_values,
    parse_bytes,
    parse_duration,
    stringify,
)

if TYPE_CHECKING:
    from mypaas.spec.services import Context

Handler = Callable[[Any, str, "Context"], dict[str, Any]]

_SIGNALS = frozenset({"IOT", "POLL"} | {sig.name.removeprefix("SIG") for sig in signal.Signals})
_ULIMITS = frozenset(
    {
        *("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc"),
        *("rss", "rtprio", "rttime", "sigpending", "stack"),
    }
)
_CAP = re.compile(r"^[A-Z_]+\Z")
# sysctls of the container's own namespaces (network, IPC): they change nothing outside it
_SYSCTL = re.compile(r"^(net\.[a-z0-9_.\-/]+|kernel\.(shm[a-z_]+|msg[a-z_]+|sem)|fs\.mqueue\.[a-z_]+)\Z")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?\Z")
_PLATFORM = re.compile(r"^(linux|windows)/([a-z0-9]+)(/[a-z0-9]+)?\Z")
_ARCHES = frozenset({"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le"})
_LOG_OPTIONS = {
    "json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
    "local": {"max-size", "max-file", "compress"},
}
_PULL_POLICY = re.compile(
    r"^(always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+)\Z"
)


def _privileged(context: Context, where: str, what: str) -> None:
    if not context.policy.allow_privileged:
        raise InvalidSpec(f"{where}: {what} is not allowed (admin setting allow_privileged)", field=where)


def _user(value: Any, where: str, context: Context) -> dict[str, Any]:
    user = stringify(value, where) if isinstance(value, int) else as_str(value, where)
    if not _USER.match(user):
        raise InvalidSpec(f"{where}: expected USER, UID, USER:GROUP or UID:GID, got {user!r}", field=where)
    return {"user": user}


def _working_dir(value: Any, where: str, context: Context) -> dict[str, Any]:
    path = as_str(value, where)
    if not path.startswith("/"):
        raise InvalidSpec(f"{where} must be an absolute path, got {path!r}", field=where)
    return {"working_dir": path}


def _init(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"init": as_bool(value, where)}


def _stop_signal(value: Any, where: str, context: Context) -> dict[str, Any]:
    text = stringify(value, where).upper()
    if text.isdigit() and 1 <= int(text) <= 64:
        return {"stop_signal": text}
    name = text.removeprefix("SIG")
    if name not in _SIGNALS:
        raise InvalidSpec(f"{where}: unknown signal {value!r} (use a name such as SIGINT)", field=where)
    return {"stop_signal": f"SIG{name}"}


def _stop_grace_period(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"stop_grace_s": parse_duration(value, where)}


def _ulimits(value: Any, where: str, context: Context) -> dict[str, Any]:
    limits = []
    for name, body in sorted(as_mapping(value, where).items()):
        at = f"{where}.{name}"
        if name not in _ULIMITS:
            raise InvalidSpec(
                f"{at}: unknown limit {name!r} (one of {', '.join(sorted(_ULIMITS))})", field=at
            )
        if isinstance(body, dict):
            limit = checked_keys(body, at, {"soft", "hard"})
            if "soft" not in limit or "hard" not in limit:
                raise InvalidSpec(f"{at} needs both soft and hard", field=at)
            soft, hard = _limit(limit["soft"], f"{at}.soft"), _limit(limit["hard"], f"{at}.hard")
        else:
            soft = hard = _limit(body, at)
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidSpec(f"{at}: the soft limit {soft} is above the hard limit {hard}", field=at)
        limits.append(Ulimit(name=name, soft=soft, hard=hard))
    return {"ulimits": limits}


def _limit(value: Any, where: str) -> int:
    text = stringify(value, where).strip()
    if not re.fullmatch(r"-1|[0-9]+", text) or int(text) > 2**63 - 1:
        raise InvalidSpec(f"{where} must be a whole number (-1: unlimited), got {value!r}", field=where)
    return int(text)


def _shm_size(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"shm_size": parse_bytes(value, where)}


def _extra_hosts(value: Any, where: str, context: Context) -> dict[str, Any]:
    pairs: list[tuple[str, str, str]] = []
    if isinstance(value, dict):
        for host, addresses in as_mapping(value, where).items():
            listed = addresses if isinstance(addresses, list) else [addresses]
            pairs.extend((host, as_str(a, f"{where}.{host}"), f"{where}.{host}") for a in listed)
    else:
        for index, item in enumerate(as_list(value, where)):
            text = as_str(item, f"{where}[{index}]")
            host, sep, address = text.partition("=") if "=" in text else text.partition(":")
            if not sep:
                raise InvalidSpec(f"{where}[{index}]: expected HOST:ADDRESS, got {text!r}", field=where)
            pairs.append((host, address.strip("[]"), f"{where}[{index}]"))
    hosts = []
    for host, address, at in pairs:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", host):
            raise InvalidSpec(f"{at}: invalid host name {host!r}", field=at)
        if address != "host-gateway" and not _is_address(address):
            raise InvalidSpec(f"{at}: {address!r} is not an IP address (or host-gateway)", field=at)
        if address == "host-gateway":
            context.warn(at, "host-gateway is the host's address on the docker backend; Swarm leaves it out")
        hosts.append(f"{host}:{address}")
    return {"extra_hosts": hosts}


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _logging(value: Any, where: str, context: Context) -> dict[str, Any]:
    body = checked_keys(value, where, {"driver", "options"})
    driver = as_str(body.get("driver", "json-file"), f"{where}.driver")
    options = {
        key: stringify(val, f"{where}.options.{key}")
        for key, val in as_mapping(body.get("options"), f"{where}.options").items()
    }
    if driver not in _LOG_OPTIONS:
        context.warn(
            f"{where}.driver",
            f"{driver!r} is not used: MyPaas keeps instance logs with the engine's json-file driver "
            "(10 MB x 3), where `mypaas logs` reads them",
        )
        return {}
    for key in options:
        if key not in _LOG_OPTIONS[driver]:
            allowed = ", ".join(sorted(_LOG_OPTIONS[driver]))
            raise InvalidSpec(
                f"{where}.options: unknown {driver} option {key!r} (one of {allowed})",
                field=f"{where}.options",
            )
    return {"logging": LogSpec(driver=driver, options=options)}


def _flag(name: str) -> Handler:
    def handler(value: Any, where: str, context: Context) -> dict[str, Any]:
        return {name: as_bool(value, where)}

    return handler


def _platform(value: Any, where: str, context: Context) -> dict[str, Any]:
    platform = as_str(value, where).lower()
    match = _PLATFORM.match(platform)
    if match is None or match[2] not in _ARCHES:
        raise InvalidSpec(f"{where}: expected OS/ARCH such as linux/amd64, got {value!r}", field=where)
    if match[1] != "linux":
        raise InvalidSpec(f"{where}: {platform} is not supported (MyPaas runs Linux hosts)", field=where)
    return {"platform": platform}


def _pull_policy(value: Any, where: str, context: Context) -> dict[str, Any]:
    policy = as_str(value, where)
    if not _PULL_POLICY.match(policy):
        raise InvalidSpec(
            f"{where}: expected always, never, missing, build, daily, weekly or every_<duration>, "
            f"got {policy!r}",
            field=where,
        )
    if policy not in ("never", "build"):
        context.warn(
            where,
            f"{policy}: each release pins its image by digest (the one the engine has at deploy); "
            "instances never pull another until the next deploy",
        )
    return {}


def _runtime(value: Any, where: str, context: Context) -> dict[str, Any]:
    runtime = as_str(value, where)
    if runtime != "runc":
        raise InvalidSpec(
            f"{where}: runtime {runtime!r} is not supported (MyPaas runs instances with runc, "
            "the engine's default)",
            field=where,
        )
    return {}


def _sysctls(value: Any, where: str, context: Context) -> dict[str, Any]:
    sysctls = {key: val or "" for key, val in key_values(value, where).items()}
    for key in sysctls:
        if not _SYSCTL.match(key):
            raise InvalidSpec(
                f"{where}: sysctl {key!r} is not allowed (only the container's own namespaces: net.*, "
                "kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)",
                field=where,
            )
    return {"sysctls": sysctls}


def _capabilities(value: Any, where: str) -> list[str]:
    caps = []
    for index, item in enumerate(as_list(value, where)):
        name = as_str(item, f"{where}[{index}]").upper().removeprefix("CAP_")
        if not _CAP.match(name):
            raise InvalidSpec(f"{where}: unknown capability {item!r}", field=f"{where}[{index}]")
        caps.append(name)
    return list(dict.fromkeys(caps))


def _cap_add(value: Any, where: str, context: Context) -> dict[str, Any]:
    caps = _capabilities(value, where)
    beyond = [c for c in caps if c not in CONTAINED_CAPS]
    if beyond:
        _privileged(context, where, f"capability {beyond[0]} (it reaches beyond the container)")
    return {"cap_add": caps}


def _cap_drop(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"cap_drop": _capabilities(value, where)}


def _namespace(key: str, allowed: tuple[str, ...]) -> Handler:
    """``network_mode``, ``pid``, ``ipc``: the host's (needs allow_privileged), a value of ``allowed``,
    never another service's or container's."""
    what = {"network_mode": "network", "pid": "process (pid)", "ipc": "IPC"}[key]

    def handler(value: Any, where: str, context: Context) -> dict[str, Any]:
        mode = as_str(value, where)
        if mode.startswith(("service:", "container:")):
            raise InvalidSpec(
                f"{where}: sharing another {mode.split(':')[0]}'s namespace ({mode!r}) is not supported: "
                "instances of different services are placed and replaced apart",
                field=where,
            )
        if mode == "host":
            _privileged(context, where, f"the host's {what} namespace")
        elif mode not in allowed:
            raise InvalidSpec(f"{where}: expected host or {' or '.join(allowed)}, got {mode!r}", field=where)
        if mode == "bridge":
            context.warn(where, "bridge: the service joins the app's own network instead")
            return {}
        if key == "network_mode":
            context.warn(where, f"{mode}: the service is on none of the app's networks; Swarm cannot run it")
        elif mode == "host":
            context.warn(where, f"the host's {what} namespace: Swarm cannot run it")
        return {key: mode}

    return handler


OPTION_KEYS: dict[str, Handler] = {
    "user": _user,
    "working_dir": _working_dir,
    "init": _init,
    "stop_signal": _stop_signal,
    "stop_grace_period": _stop_grace_period,
    "ulimits": _ulimits,
    "shm_size": _shm_size,
    "extra_hosts": _extra_hosts,
    "logging": _logging,
    "stdin_open": _flag("stdin_open"),
    "tty": _flag("tty"),
    "platform": _platform,
    "pull_policy": _pull_policy,
    "runtime": _runtime,
    "sysctls": _sysctls,
    "cap_add": _cap_add,
    "cap_drop": _cap_drop,
    "network_mode": _namespace("network_mode", ("none", "bridge")),
    "pid": _namespace("pid", ()),
    "ipc": _namespace("ipc", ("private", "shareable")),
    **CONTAINER_KEYS,
}


def check_service(svc: ServiceSpec, where: str) -> ServiceSpec:
    """What one key cannot say alone: keys that exclude each other, or a value and the replica count."""
    check_container(svc, where)
    if svc.network_mode is not None:
        for key, given in (("networks", svc.networks), ("ports", svc.ports)):
            if given:
                raise InvalidSpec(
                    f"{where}: network_mode {svc.network_mode} and {key} cannot be combined "
                    "(the service is on none of the app's networks)",
                    field=f"{where}.{key}",
                )
    return svc
