"""A service's ``ports``, short and long syntax, as docker compose reads them: an optional host address
(``127.0.0.1:8080:80``, ``[::1]:8080:80``, ``:2283:2283`` for all of them), ``/udp``, ranges
(``8000-8010:8000-8010``), and the long syntax's ``name``, ``app_protocol``, ``mode`` and ``host_ip``.

A port bound to one host address is published there only on the docker backend; Swarm cannot bind an
address, so there it is not published on the hosts (said in a warning). Only TCP ports speaking HTTP
are routed (domain.PortSpec.routable)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from mypaas.domain import PortSpec
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_list, as_str, checked_keys, port_number, stringify

if TYPE_CHECKING:
    from mypaas.spec.services import Context

PROTOCOLS = ("tcp", "udp")
MAX_RANGE = 1000  # ports one range may publish
_ALL_ADDRESSES = ("", "0.0.0.0", "::")  # noqa: S104 -- publishing on all addresses is what they mean
_RANGE = re.compile(r"^([0-9]+)-([0-9]+)\Z")


def parse_ports(value: Any, where: str, context: Context) -> dict[str, Any]:
    ports: list[PortSpec] = []
    for index, item in enumerate(as_list(value, where)):
        at = f"{where}[{index}]"
        ports.extend(_long(item, at) if isinstance(item, dict) else _short(item, at))
    for port in ports:
        if port.host_ip is not None:
            context.warn(
                where,
                f"{port.host_ip}:{port.host}: published on that address of the host on the docker "
                "backend; Swarm cannot bind an address, so there it is not published on the hosts",
            )
            break
    return {"ports": ports}


def protocol(value: Any, where: str) -> str:
    if value not in PROTOCOLS:
        raise InvalidSpec(f"{where}: protocol {value!r} is not supported (tcp or udp)", field=where)
    return str(value)


def _short(value: Any, where: str) -> list[PortSpec]:
    """``80``, ``8080:80``, ``127.0.0.1:8080:80``, ``[::1]:8080:80``, ``:2283:2283``, ``8000-8010``,
    ``8000-8010:8000-8010``, each with an optional ``/tcp`` or ``/udp``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [PortSpec(container=port_number(value, where))]
    text = as_str(value, where)
    spec, _, proto = text.rpartition("/") if "/" in text else (text, "", "tcp")
    proto = protocol(proto, where)
    address: str | None = None
    if spec.startswith("["):
        address, bracket, spec = spec[1:].partition("]")
        if not bracket or not spec.startswith(":"):
            raise InvalidSpec(f"{where}: expected [ADDRESS]:HOST:CONTAINER, got {text!r}", field=where)
        spec = spec[1:]
    parts = spec.split(":")
    if len(parts) > 3 or (address is not None and len(parts) != 2):
        raise InvalidSpec(
            f"{where}: expected [ADDRESS:][HOST:]CONTAINER[/PROTOCOL], got {text!r}", field=where
        )
    if len(parts) == 3:
        address = parts.pop(0)
    host = parts[0] if len(parts) == 2 else ""
    return _ports(parts[-1], host, _host_ip(address, where), proto, where)


def _long(value: Any, where: str) -> list[PortSpec]:
    keys = {"target", "published", "protocol", "mode", "host_ip", "name", "app_protocol"}
    body = checked_keys(value, where, keys)
    if "target" not in body:
        raise InvalidSpec(f"{where}.target is required (the container port)", field=f"{where}.target")
    proto = protocol(body["protocol"], f"{where}.protocol") if "protocol" in body else "tcp"
    if body.get("mode", "ingress") not in ("ingress", "host"):
        raise InvalidSpec(f"{where}.mode must be 'ingress' or 'host'", field=f"{where}.mode")
    address = _host_ip(body["host_ip"], f"{where}.host_ip") if "host_ip" in body else None
    published = body.get("published")
    host = "" if published is None else stringify(published, f"{where}.published")
    target = stringify(body["target"], f"{where}.target")
    ports = _ports(target, host, address, proto, where)
    extra: dict[str, Any] = {}
    for key in ("name", "app_protocol"):
        if key in body:
            extra[key] = as_str(body[key], f"{where}.{key}")
    return [p.model_copy(update=extra) for p in ports]


def _host_ip(address: Any, where: str) -> str | None:
    """None for all of the host's addresses, else the one address given."""
    if address is None or address in _ALL_ADDRESSES:
        return None
    text = as_str(address, where).strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise InvalidSpec(f"{where}: {address!r} is not an IP address", field=where) from exc


def _ports(target: str, host: str, address: str | None, proto: str, where: str) -> list[PortSpec]:
    """One PortSpec per container port of ``target`` (a port or a range), published on the matching
    port of ``host`` ('' for none)."""
    containers = _numbers(target, where)
    if not host:
        if address is not None:
            raise InvalidSpec(f"{where}: a port bound to {address} needs a host port", field=where)
        return [PortSpec(container=c, protocol=proto) for c in containers]
    hosts = _numbers(host, where)
    if len(hosts) != len(containers):
        raise InvalidSpec(
            f"{where}: the host ports ({host}) and the container ports ({target}) must be as many "
            "(a free port picked from a range is not supported)",
            field=where,
        )
    return [
        PortSpec(container=c, host=h, protocol=proto, host_ip=address)
        for c, h in zip(containers, hosts, strict=True)
    ]


def _numbers(text: str, where: str) -> list[int]:
    match = _RANGE.match(text.strip())
    if match is None:
        return [port_number(text, where)]
    first, last = port_number(match[1], where), port_number(match[2], where)
    if last < first:
        raise InvalidSpec(f"{where}: the range {text!r} ends before it starts", field=where)
    if last - first >= MAX_RANGE:
        raise InvalidSpec(f"{where}: the range {text!r} holds more than {MAX_RANGE} ports", field=where)
    return list(range(first, last + 1))
