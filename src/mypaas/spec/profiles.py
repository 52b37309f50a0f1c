"""Compose profiles: a service with ``profiles`` runs only when one of them is active (``--profile``, else
``COMPOSE_PROFILES``; ``*`` activates all), as in docker compose."""

from __future__ import annotations

import re
from typing import Any

from mypaas.errors import InvalidSpec

_PROFILE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def apply_profiles(model: dict[str, Any], active: set[str]) -> dict[str, list[str]]:
    """Leave out the services whose ``profiles`` are all inactive (``*`` activates all); answer them."""
    services = model.get("services")
    if not isinstance(services, dict):
        return {}
    disabled: dict[str, list[str]] = {}
    for name, body in list(services.items()):
        if not isinstance(body, dict) or body.get("profiles") is None:
            continue
        profiles = [str(profile) for profile in body.pop("profiles")]
        for profile in profiles:
            if not _PROFILE.fullmatch(profile):
                where = f"services.{name}.profiles"
                raise InvalidSpec(
                    f"{where}: invalid profile name {profile!r} (letters, digits, '_', '.', '-')", field=where
                )
        if profiles and "*" not in active and not active.intersection(profiles):
            disabled[name] = profiles
            del services[name]
    if disabled and not services:
        which = ", ".join(sorted({p for profiles in disabled.values() for p in profiles}))
        raise InvalidSpec(
            f"no service is enabled: every service has profiles ({which}); enable one with --profile",
            field="services",
        )
    for name, body in services.items():
        if isinstance(body, dict):
            _check_dependencies(name, body, disabled)
    return disabled


def _check_dependencies(name: str, body: dict[str, Any], disabled: dict[str, list[str]]) -> None:
    depends = body.get("depends_on")
    wanted = (
        depends if isinstance(depends, dict) else dict.fromkeys(depends) if isinstance(depends, list) else {}
    )
    for other, condition in list(wanted.items()):
        if other not in disabled:
            continue
        if isinstance(condition, dict) and condition.get("required") is False and isinstance(depends, dict):
            del depends[other]  # an optional dependency that is not enabled: docker compose drops it
            continue
        where = f"services.{name}.depends_on"
        raise InvalidSpec(
            f"{where}: service {other!r} is not enabled (its profiles: {', '.join(disabled[other])}); "
            "enable one with --profile",
            field=where,
        )
