"""Merging compose trees as docker compose does (several ``-f`` files, ``extends``, ``include``).

The rules (compose-spec "merge"): mappings are merged key by key; a scalar of the later file replaces the
earlier one (a null leaves it as it was); sequences are appended, except

- ``command``, ``entrypoint`` and ``healthcheck.test``, which the later file replaces;
- key/value lists (``environment``, ``labels``, ``build.args``, ``sysctls``...), merged by key as mappings
  (``- KEY=V`` and ``KEY: V`` alike; the later value wins, a valueless ``KEY`` included);
- ``depends_on`` and ``networks``, whose list forms become mappings first;
- resources with a unique key — ``ports`` (address, published, target, protocol), ``volumes`` and
  ``devices`` (the target), ``secrets`` and ``configs`` (the target), ``expose``, ``env_file``,
  ``cap_add``... — where an entry with the key of an earlier one replaces it in place.

A ``!reset`` value removes the key from what earlier files set; an ``!override`` value replaces it whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mypaas.errors import InvalidSpec
from mypaas.spec.yamlload import Path

Merger = Callable[[Any, Any, tuple[str, ...]], Any]


def merge(base: Any, other: Any, path: tuple[str, ...] = ()) -> Any:
    """``other`` merged over ``base`` at ``path`` (the keys from the top); neither is changed."""
    special = _special(path)
    return _generic(base, other, path) if special is None else special(base, other, path)


def _generic(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    if other is None:
        return base
    if isinstance(base, dict):
        if not isinstance(other, dict):
            raise _mismatch(path, base, other)
        return _merge_mappings(base, other, path)
    if isinstance(base, list):
        if not isinstance(other, list):
            raise _mismatch(path, base, other)
        return [*base, *other]
    return other


def _merge_mappings(base: dict[str, Any], other: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = dict(base)
    for key, value in other.items():
        out[key] = merge(base[key], value, (*path, str(key))) if key in base else value
    return out


def _mismatch(path: tuple[str, ...], base: Any, other: Any) -> InvalidSpec:
    where = ".".join(path)
    return InvalidSpec(
        f"{where}: cannot merge {_kind(other)} into {_kind(base)} (a later file must keep the shape, or use "
        "!override)",
        field=where,
    )


def _kind(value: Any) -> str:
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value"


# --- the special rules --------------------------------------------------------------------------------
def _replace(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    return base if other is None else other


def _key_values(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    if other is None:
        return base
    return {**as_key_values(base), **as_key_values(other)}


def as_key_values(value: Any) -> dict[str, Any]:
    """``[K=V, K]`` or ``{K: V}`` as a mapping (``K`` alone maps to None); anything else as it is."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, list):
        return {} if value is None else {str(value): None}
    out: dict[str, Any] = {}
    for item in value:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def _names(default: Any) -> Merger:
    """A list of names or a mapping of them (``depends_on``, service ``networks``), merged as mappings."""

    def merge_names(base: Any, other: Any, path: tuple[str, ...]) -> Any:
        if other is None:
            return base

        def mapping(value: Any) -> dict[str, Any]:
            if isinstance(value, list):
                return {str(name): dict(default) if default else None for name in value}
            return value if isinstance(value, dict) else {}

        return _merge_mappings(mapping(base), mapping(other), path)

    return merge_names


def _build(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    if other is None:
        return base

    def mapping(value: Any) -> dict[str, Any]:
        return {"context": value} if isinstance(value, str) else value if isinstance(value, dict) else {}

    return _merge_mappings(mapping(base), mapping(other), path)


def _logging(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    """Options are merged when both files name the same driver (or one names none), else replaced."""
    if not isinstance(base, dict) or not isinstance(other, dict):
        return _generic(base, other, path)
    if "driver" in base and "driver" in other and base["driver"] != other["driver"]:
        return other
    return _merge_mappings(base, other, path)


def _sequence(base: Any, other: Any, path: tuple[str, ...]) -> Any:
    """A string or a list (``dns``, ``tmpfs``, ``env_file``...), appended as lists."""
    if other is None:
        return base

    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [] if value is None else [value]

    if isinstance(base, dict) and isinstance(other, dict):  # extra_hosts as mappings
        return {**base, **other}
    return [*items(_hosts(base)), *items(_hosts(other))]


def _hosts(value: Any) -> Any:
    if isinstance(value, dict):  # extra_hosts: {host: ip} as host=ip entries
        return [f"{host}={ip}" for host, ip in value.items()]
    return value


_SPECIALS: list[tuple[tuple[str, ...], Merger]] = [
    (("services", "*", "command"), _replace),
    (("services", "*", "entrypoint"), _replace),
    (("services", "*", "healthcheck", "test"), _replace),
    (("services", "*", "ulimits", "*"), _replace),
    (("services", "*", "build"), _build),
    (("services", "*", "logging"), _logging),
    (("services", "*", "depends_on"), _names({"condition": "service_started"})),
    (("services", "*", "networks"), _names(None)),
    *(
        (("services", "*", *key), _key_values)
        for key in (
            ("environment",),
            ("labels",),
            ("annotations",),
            ("sysctls",),
            ("build", "args"),
            ("build", "labels"),
            ("build", "additional_contexts"),
            ("deploy", "labels"),
        )
    ),
    (("networks", "*", "labels"), _key_values),
    (("volumes", "*", "labels"), _key_values),
    *(
        (("services", "*", key), _sequence)
        for key in ("dns", "dns_opt", "dns_search", "env_file", "label_file", "tmpfs", "extra_hosts")
    ),
]


def _special(path: tuple[str, ...]) -> Merger | None:
    for pattern, merger in _SPECIALS:
        if len(pattern) == len(path) and all(p in ("*", k) for p, k in zip(pattern, path, strict=True)):
            return merger
    return None


# --- unique entries -----------------------------------------------------------------------------------
def _port_key(item: Any) -> str:
    if isinstance(item, dict):
        host = item.get("host_ip", "0.0.0.0")  # noqa: S104 -- the key compose gives a port on all addresses
        return f"{host}:{item.get('published')}:{item.get('target')}/{item.get('protocol', 'tcp')}"
    return str(item)


def _target_key(item: Any) -> str:
    """A volume's or device's target: ``src:target[:mode]``, a lone ``target``, or ``{target: ...}``."""
    if isinstance(item, dict):
        return str(item.get("target"))
    parts = str(item).split(":")
    return parts[0] if len(parts) == 1 else parts[1]


def _mount_key(folder: str) -> Callable[[Any], str]:
    def key(item: Any) -> str:
        if isinstance(item, dict):
            return str(item["target"]) if "target" in item else f"{folder}/{item.get('source')}"
        return f"{folder}/{item}"

    return key


def _env_file_key(item: Any) -> str:
    return str(item.get("path")) if isinstance(item, dict) else str(item)


def _value_key(item: Any) -> str:
    return str(item).partition("=")[0] if isinstance(item, str) else repr(item)


_UNIQUE: dict[str, Callable[[Any], str]] = {
    "ports": _port_key,
    "volumes": _target_key,
    "devices": _target_key,
    "secrets": _mount_key("/run/secrets"),
    "configs": _mount_key(""),
    "env_file": _env_file_key,
    "expose": str,
    **{key: _value_key for key in ("cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "links")},
    **{key: _value_key for key in ("profiles", "tmpfs", "extra_hosts", "external_links", "security_opt")},
}


def enforce_unique(model: dict[str, Any]) -> None:
    """In every service, a list entry with the key of an earlier one replaces it (in place)."""
    services = model.get("services")
    if not isinstance(services, dict):
        return
    for body in services.values():
        if not isinstance(body, dict):
            continue
        for key, index in _UNIQUE.items():
            if isinstance(body.get(key), list):
                body[key] = _unique(body[key], index)


def _unique(items: list[Any], index: Callable[[Any], str]) -> list[Any]:
    out: list[Any] = []
    where: dict[str, int] = {}
    for item in items:
        try:
            key = index(item)
        except (KeyError, TypeError, AttributeError):
            out.append(item)  # a malformed entry: its service key's check reports it
            continue
        if key in where:
            out[where[key]] = item
        else:
            where[key] = len(out)
            out.append(item)
    return out


# --- !reset and !override -----------------------------------------------------------------------------
def remove_paths(tree: Any, paths: list[Path]) -> Any:
    """``tree`` without the values at ``paths`` (what a later file resets or overrides)."""
    for path in paths:
        tree = _without(tree, path)
    return tree


def _without(node: Any, path: Path) -> Any:
    if not path or not isinstance(node, dict) or path[0] not in node:
        return node
    out = dict(node)
    if len(path) == 1:
        del out[path[0]]
    else:
        out[path[0]] = _without(node[path[0]], path[1:])
    return out
