"""The compose v2 resource keys docker compose still takes next to ``deploy``: ``mem_limit``, ``cpus``,
``mem_reservation`` and ``scale`` give the ServiceSpec fields ``deploy.resources`` and ``deploy.replicas``
give. A service that sets both with different values is refused, naming them (docker compose refuses
``scale`` and ``deploy.replicas`` that differ the same way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.domain import MAX_REPLICAS
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_int, as_positive_float, parse_bytes

if TYPE_CHECKING:
    from mypaas.spec.services import Context

Handler = Callable[[Any, str, "Context"], dict[str, Any]]

# ServiceSpec field -> (the v2 key, the deploy key that gives it too)
_SHARED = {
    "memory": ("mem_limit", "deploy.resources.limits.memory"),
    "cpus": ("cpus", "deploy.resources.limits.cpus"),
    "reserve_memory": ("mem_reservation", "deploy.resources.reservations.memory"),
    "replicas": ("scale", "deploy.replicas"),
}


def _mem_limit(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"memory": parse_bytes(value, where)}


def _mem_reservation(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"reserve_memory": parse_bytes(value, where)}


def _cpus(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"cpus": as_positive_float(value, where)}


def _scale(value: Any, where: str, context: Context) -> dict[str, Any]:
    return {"replicas": as_int(value, where, minimum=0, maximum=MAX_REPLICAS)}


RESOURCE_KEYS: dict[str, Handler] = {
    "mem_limit": _mem_limit,
    "mem_reservation": _mem_reservation,
    "cpus": _cpus,
    "scale": _scale,
}


def check_same(kwargs: dict[str, Any], field_name: str, given: Any, key: str, where: str) -> None:
    """Refuse a v2 key and its ``deploy`` twin that give one field different values (``where``: the
    service; ``key``: the key being read)."""
    if field_name not in _SHARED or field_name not in kwargs or kwargs[field_name] == given:
        return
    old, new = _SHARED[field_name]
    first, second = (kwargs[field_name], given) if key == "deploy" else (given, kwargs[field_name])
    raise InvalidSpec(
        f"{where}.{old} ({first}) and {where}.{new} ({second}) differ: give one of them",
        field=f"{where}.{old}",
    )
