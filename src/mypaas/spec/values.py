"""Value syntaxes inside Compose files: scalars, keys, ports, durations, sizes, probes.

Pure helpers for :mod:`mypaas.spec.compose`; each raises ``InvalidSpec`` naming the field at fault. (YAML is
read by :mod:`mypaas.spec.yamlload`, env files by :mod:`mypaas.spec.envfile`.)
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from mypaas.errors import InvalidSpec

if TYPE_CHECKING:  # the domain's models load pydantic: the CLI reads a project without them
    from mypaas.domain import ProbeSpec


# --- scalars ---------------------------------------------------------------------------------------------
def as_mapping(value: Any, field: str) -> dict[str, Any]:
    """A mapping with string keys (``None``, as YAML gives for an empty key, counts as empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpec(f"{field} must be a mapping, got {_kind(value)}", field=field)
    for key in value:
        if not isinstance(key, str):
            raise InvalidSpec(f"{field}: keys must be strings, got {key!r}", field=field)
    return value


def as_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidSpec(f"{field} must be a list, got {_kind(value)}", field=field)
    return value


def as_str(value: Any, field: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise InvalidSpec(f"{field} must be a non-empty string, got {_kind(value)}", field=field)
    return value


def stringify(value: Any, field: str) -> str:
    """A scalar as text: numbers as written, booleans as 'true'/'false', null as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidSpec(f"{field} must be a string, number or boolean, got {_kind(value)}", field=field)


def as_int(value: Any, field: str, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    """An integer in [minimum, maximum]; a string of digits counts too (it is what ``${VAR}`` gives)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(f"{field} must be an integer, got {_kind(value)}", field=field)
    if value < minimum:
        raise InvalidSpec(f"{field} must be at least {minimum}, got {value}", field=field)
    if value > maximum:
        raise InvalidSpec(f"{field} must be at most {maximum}, got {value}", field=field)
    return value


def as_bool(value: Any, field: str) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidSpec(f"{field} must be true or false, got {_kind(value)}", field=field)
    return value


def as_positive_float(value: Any, field: str) -> float:
    """A float > 0, from a number or a numeric string (``cpus: "0.5"``)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise InvalidSpec(f"{field} must be a number greater than 0, got {value!r}", field=field)
    return number


def key_values(value: Any, field: str) -> dict[str, str | None]:
    """A mapping, or a list of ``K=V`` / ``K`` strings (``K`` alone gives None), as environment takes."""
    if isinstance(value, list):
        pairs: dict[str, str | None] = {}
        for index, item in enumerate(value):
            text = as_str(item, f"{field}[{index}]")
            key, sep, val = text.partition("=")
            pairs[key] = val if sep else None
        return pairs
    if not isinstance(value, dict):
        raise InvalidSpec(
            f"{field} must be a mapping or a list of KEY=VALUE, got {_kind(value)}", field=field
        )
    return {
        key: None if val is None else stringify(val, f"{field}.{key}")
        for key, val in as_mapping(value, field).items()
    }


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- keys -----------------------------------------------------------------------------------------------
def is_extension(key: Any) -> bool:
    """``x-*`` extension keys, skipped on purpose wherever they appear."""
    return isinstance(key, str) and key.startswith("x-")


def checked_keys(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed`` (or ``x-*``); another key is an error."""
    body = as_mapping(value, where)
    for key in body:
        if key not in allowed and not key.startswith("x-"):
            raise unsupported(key, f"{where}.{key}")
    return body


def unsupported(key: str, where: str, reason: str | None = None) -> InvalidSpec:
    inside = where.rpartition(".")[0]
    location = f" in {inside}" if inside else ""
    because = reason or "MyPaas does not support it yet"
    return InvalidSpec(f"unsupported key {key!r}{location} ({because})", field=where)


# --- ports ----------------------------------------------------------------------------------------------
def port_number(value: Any, where: str) -> int:
    if isinstance(value, str) and "-" in value:
        raise InvalidSpec(f"{where}: port ranges such as {value!r} are not supported", field=where)
    if isinstance(value, str) and not value.strip().isdigit():
        raise InvalidSpec(f"{where}: invalid port {value!r}", field=where)
    port = as_int(value, where, minimum=1)
    if port > 65535:
        raise InvalidSpec(f"{where}: port {port} is out of range (1-65535)", field=where)
    return port


# --- durations and sizes ---------------------------------------------------------------------------------
_DURATION = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, field: str) -> float:
    """A compose duration in seconds: ``"1m30s"``, ``"500ms"``, ``"10s"``; a bare number is seconds."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        seconds = sum(float(number) * _SECONDS[unit] for number, unit in _DURATION_PART.findall(value))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise InvalidSpec(
            f"invalid duration {value!r} for {field}: use seconds or units such as '1m30s', '500ms', '10s'",
            field=field,
        )
    return seconds


_BYTES = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?(?:([kmgtp])i?)?b?", re.IGNORECASE)


def parse_bytes(value: Any, field: str) -> int:
    """A compose byte size: ``"512m"``, ``"1g"``, ``"256M"``, ``"100k"``, ``"1024b"`` (1k = 1024) or bytes."""
    size: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _BYTES.fullmatch(value.strip())):
        unit = (match[2] or "").lower()
        size = int(float(match[1]) * 1024 ** (" kmgtp".index(unit) if unit else 0))
    if size is None or size <= 0:
        raise InvalidSpec(
            f"invalid size {value!r} for {field}: use bytes or a unit such as '512m', '1g', '100k'",
            field=field,
        )
    return size


def parse_probe(value: Any, where: str) -> ProbeSpec:
    """``x-mypaas-probe: {http: /healthz, status: 200}`` or ``{tcp: 5432}``, plus interval, timeout
    and retries (durations as in ``healthcheck``)."""
    from mypaas.domain import ProbeSpec

    body = checked_keys(value, where, {"http", "tcp", "status", "interval", "timeout", "retries"})
    if ("http" in body) == ("tcp" in body):
        raise InvalidSpec(f"{where}: give exactly one of http (a path) or tcp (a port)", field=where)
    fields: dict[str, Any] = {}
    if "http" in body:
        path = as_str(body["http"], f"{where}.http")
        if not path.startswith("/"):
            raise InvalidSpec(f"{where}.http must be a path starting with '/'", field=f"{where}.http")
        fields.update(kind="http", path=path)
    else:
        fields.update(kind="tcp", port=as_int(body["tcp"], f"{where}.tcp", minimum=1, maximum=65535))
    if "status" in body:
        fields["status"] = as_int(body["status"], f"{where}.status", minimum=100, maximum=599)
    for key in ("interval", "timeout"):
        if key in body:
            fields[f"{key}_s"] = parse_duration(body[key], f"{where}.{key}")
    if "retries" in body:
        fields["retries"] = as_int(body["retries"], f"{where}.retries", minimum=1, maximum=100)
    return ProbeSpec(**fields)
