"""How services find each other on the app's networks: a service's name (a DNS label on the platform,
the name as written kept as an alias), ``container_name``, ``hostname`` and ``links`` as aliases, the
service's ``networks`` (the implicit ``default``, ``aliases``, ``priority``; a fixed address is refused)
and the top-level ``networks`` (their ``ipam`` pools checked, not used: the engine picks the subnets).

Names of instances are the platform's (one per replica): a name the file gives a container is kept as
a network alias of its service, so other services still reach it by that name, replicas included.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.container_options import IpamPool, NetworkOptions
from mypaas.domain import AppSpec, check_name
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_bool, as_int, as_list, as_mapping, as_str, checked_keys

if TYPE_CHECKING:
    from mypaas.spec.services import Context

DEFAULT = "default"  # the app's own network, declared or not ("" in a ServiceSpec)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_ALIAS = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?\Z")
_NETWORK_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


# --- service names ---------------------------------------------------------------------------------------
def dns_name(name: Any, where: str) -> str:
    """The service's name on the platform: ``name`` if it is a DNS label, else one made of it
    (``my_service`` -> ``my-service``, ``Web`` -> ``web``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        check_name(name, field=where)  # raises, naming the rules
    label = re.sub(r"[^a-z0-9-]+", "-", str(name).lower()).strip("-")[:63].rstrip("-")
    return check_name(label, field=where)


def service_name(name: Any, where: str, context: Context) -> tuple[str, list[str]]:
    """(the platform's name of a service, its aliases so far): the name as written stays an alias."""
    safe = dns_name(name, where)
    if safe == name:
        return safe, []
    context.warn(
        where,
        f"named {safe!r} on the platform (instances, scale, logs); other services still reach it as {name!r}",
    )
    return safe, [name]


def _alias(value: Any, where: str) -> str:
    alias = as_str(value, where)
    if not _ALIAS.match(alias):
        raise InvalidSpec(f"{where}: {alias!r} is not a valid host name", field=where)
    return alias


def container_name(value: Any, where: str, context: Context) -> dict[str, Any]:
    name = _alias(value, where)
    context.warn(
        where,
        f"instances are named by MyPaas (one per replica); {name!r} stays a name other services reach "
        "the service by",
    )
    return {"aliases": [name]}


def hostname(value: Any, where: str, context: Context) -> dict[str, Any]:
    name = _alias(value, where)
    context.warn(where, f"every instance (replicas too) is named {name!r}, a name other services reach it by")
    return {"hostname": name, "aliases": [name]}


def links(value: Any, where: str, context: Context) -> dict[str, Any]:
    """Checked here; applied by ``finish_app`` (they give aliases to other services)."""
    for index, item in enumerate(as_list(value, where)):
        target, _, alias = as_str(item, f"{where}[{index}]").partition(":")
        if target not in context.services:
            raise InvalidSpec(f"{where}[{index}]: unknown service {target!r}", field=f"{where}[{index}]")
        if alias:
            _alias(alias, f"{where}[{index}]")
            context.warn(
                f"{where}[{index}]",
                f"{alias!r} becomes a name of {target} that every service of the app reaches it by",
            )
    return {}


# --- a service's networks ----------------------------------------------------------------------------------
def service_networks(value: Any, where: str, context: Context) -> dict[str, Any]:
    """``[front, back]`` or ``{front: {aliases: [...], ipv4_address: ..., priority: 10}, back: null}``,
    in the order the service joins them (highest priority first); ``default`` is the app's own."""
    if isinstance(value, list):
        attached = {as_str(item, f"{where}[{index}]"): None for index, item in enumerate(value)}
    else:
        attached = as_mapping(value, where)
    names: list[tuple[int, str]] = []
    options: dict[str, NetworkOptions] = {}
    for name, body in attached.items():
        at = f"{where}.{name}"
        if name != DEFAULT and name not in context.networks:
            raise InvalidSpec(
                f"{where}: network {name!r} is not declared in the top-level networks", field=where
            )
        key = "" if name == DEFAULT else name
        keys = {"aliases", "ipv4_address", "ipv6_address", "priority", "mac_address"}
        config = checked_keys(body, at, keys)
        if "mac_address" in config:
            raise InvalidSpec(
                f"{at}.mac_address: a fixed MAC address is not supported (replicas and the instances of "
                "a rolling deploy would share it)",
                field=f"{at}.mac_address",
            )
        priority = as_int(config.get("priority", 0), f"{at}.priority", minimum=-(2**31))
        names.append((-priority, key))
        attach = _attachment(config, at)
        if attach != NetworkOptions():
            options[key] = attach
    ordered = [name for _, name in sorted(names, key=lambda item: item[0])]
    fields: dict[str, Any] = {"networks": list(dict.fromkeys(ordered))}
    if options:
        fields["network_options"] = options
    return fields


def _attachment(config: dict[str, Any], where: str) -> NetworkOptions:
    for key in ("ipv4_address", "ipv6_address"):
        if key in config:
            raise InvalidSpec(
                f"{where}.{key}: a fixed address is not supported: the engine picks the addresses (and "
                "the subnets) of the app's networks, and a rolling deploy starts the new instance next to "
                "the old one; other services reach this one by its name or an alias",
                field=f"{where}.{key}",
            )
    aliases = [
        _alias(a, f"{where}.aliases[{i}]")
        for i, a in enumerate(as_list(config.get("aliases", []), f"{where}.aliases"))
    ]
    return NetworkOptions(aliases=aliases)


def _address(value: Any, where: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(as_str(value, where))
    except ValueError as exc:
        raise InvalidSpec(f"{where}: {value!r} is not an IP address", field=where) from exc
    if address.version != version:
        raise InvalidSpec(f"{where}: {value!r} is not an IPv{version} address", field=where)
    return str(address)


# --- top-level networks ----------------------------------------------------------------------------------
def declare_networks(value: Any, warn: Callable[[str, str], None]) -> tuple[list[str], list[str]]:
    """The top-level ``networks``: the app's networks besides its default one, and those that declare
    address pools (``ipam.config``: checked, not used: the engine picks the subnets). ``name``,
    ``external``, ``internal`` and ``enable_ipv6`` are read and mapped with a warning (``_mapped``)."""
    names: list[str] = []
    pooled: list[str] = []
    for name, body in as_mapping(value, "networks").items():
        where = f"networks.{name}"
        if not _NETWORK_NAME.fullmatch(name):
            raise InvalidSpec(
                f"invalid name {name!r} in networks: use a-z, 0-9, '_', '.' and '-', "
                "starting with a-z or 0-9",
                field=where,
            )
        definition = checked_keys(body, where, {"driver", "ipam", *_MAPPED})
        _mapped(definition, where, warn)
        if definition.get("driver", "bridge") not in ("bridge", "overlay"):
            raise InvalidSpec(
                f"{where}.driver {definition['driver']!r} is not supported (use bridge or overlay)",
                field=f"{where}.driver",
            )
        if "ipam" in definition and _ipam(definition["ipam"], f"{where}.ipam"):
            pooled.append(name)
        if name != DEFAULT:
            names.append(name)
    return names, pooled


_MAPPED = ("name", "external", "internal", "enable_ipv6")


def _mapped(definition: dict[str, Any], where: str, warn: Callable[[str, str], None]) -> None:
    """What docker compose does with a network that MyPaas does its own way (each one warned)."""
    external = definition.get("external", False)
    given = definition.get("name")
    if isinstance(external, dict):  # the deprecated external: {name: N}
        given = checked_keys(external, f"{where}.external", {"name"}).get("name", given)
        external = True
    if as_bool(external, f"{where}.external"):
        shown = f" {as_str(given, f'{where}.name')!r}" if given else ""
        warn(
            f"{where}.external",
            f"the existing network{shown} is not joined: the platform's router reaches the app's routed "
            "service itself; the services on it join a network of the app's own",
        )
    elif "name" in definition:
        name = as_str(definition["name"], f"{where}.name")
        warn(f"{where}.name", f"the platform names the app's networks: {name!r} is not the engine's name")
    if "internal" in definition and as_bool(definition["internal"], f"{where}.internal"):
        warn(
            f"{where}.internal",
            "not made internal: the services on it can still reach outside the platform (an app's "
            "networks are only shared by its own services)",
        )
    if "enable_ipv6" in definition and as_bool(definition["enable_ipv6"], f"{where}.enable_ipv6"):
        warn(f"{where}.enable_ipv6", "IPv6 is not enabled: the app's networks are IPv4")


def _ipam(value: Any, where: str) -> list[IpamPool]:
    body = checked_keys(value, where, {"driver", "config"})
    if body.get("driver", "default") != "default":
        raise InvalidSpec(
            f"{where}.driver: only the engine's default IPAM driver is supported", field=f"{where}.driver"
        )
    pools = []
    for index, item in enumerate(as_list(body.get("config", []), f"{where}.config")):
        at = f"{where}.config[{index}]"
        config = checked_keys(item, at, {"subnet", "ip_range", "gateway"})
        if "subnet" not in config:
            raise InvalidSpec(f"{at}.subnet is required", field=f"{at}.subnet")
        subnet = _subnet(config["subnet"], f"{at}.subnet")
        pool: dict[str, str] = {"subnet": str(subnet)}
        if "ip_range" in config:
            ip_range = _subnet(config["ip_range"], f"{at}.ip_range")
            if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
                raise InvalidSpec(f"{at}.ip_range is not inside {subnet}", field=f"{at}.ip_range")
            pool["ip_range"] = str(ip_range)
        if "gateway" in config:
            gateway = _address(config["gateway"], f"{at}.gateway", subnet.version)
            if ipaddress.ip_address(gateway) not in subnet:
                raise InvalidSpec(f"{at}.gateway is not inside {subnet}", field=f"{at}.gateway")
            pool["gateway"] = gateway
        pools.append(IpamPool(**pool))
    return pools


def _subnet(value: Any, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(as_str(value, where))
    except ValueError as exc:
        raise InvalidSpec(f"{where}: {value!r} is not a subnet such as 172.28.0.0/16", field=where) from exc


# --- across services -------------------------------------------------------------------------------------
def finish_app(app: AppSpec, bodies: dict[str, Any], renamed: dict[str, str]) -> AppSpec:
    """What one service's keys give others: ``links`` (aliases of the linked service, and an implicit
    dependency). ``renamed``: each service's
    name as written -> its name on the platform."""
    services = dict(app.services)
    for written, body in bodies.items():
        name = renamed[written]
        for link in (body or {}).get("links") or []:
            target, _, alias = str(link).partition(":")
            target = renamed[target]
            if alias and alias != target:
                linked = services[target]
                services[target] = linked.model_copy(update={"aliases": _unique([*linked.aliases, alias])})
            svc = services[name]
            if target not in svc.depends_on:
                services[name] = svc.model_copy(
                    update={"depends_on": {**svc.depends_on, target: "service_started"}}
                )
    return app.model_copy(update={"services": services})


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
