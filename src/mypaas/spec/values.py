"""Value syntaxes inside Compose files: YAML, scalars, keys, ports, durations, sizes, env files, ``${VAR}``.

Pure helpers for :mod:`mypaas.spec.compose`; each raises ``InvalidSpec`` naming the field at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from mypaas.domain import ENV_KEY, ProbeSpec
from mypaas.errors import InvalidSpec

# --- YAML ------------------------------------------------------------------------------------------------
# docker compose reads YAML 1.2, PyYAML speaks YAML 1.1. Without these resolvers `restart: no` would be
# False, `22:22` the integer 1342 (base 60), `010` the integer 8 and `2024-01-01` a date.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_REPLACED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float", "timestamp")}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars that also refuses duplicate keys, as docker compose does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
_ComposeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str) -> Any:
    """Parse one YAML document safely (no Python tags); a syntax error names its line."""
    try:
        return yaml.load(text, Loader=_ComposeLoader)  # noqa: S506 -- _ComposeLoader is a SafeLoader
    except yaml.YAMLError as exc:
        problem, where = str(exc).splitlines()[0], ""
        if isinstance(exc, yaml.MarkedYAMLError):
            problem = exc.problem or problem
            where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise InvalidSpec(f"invalid YAML: {problem}{where}", field="compose") from exc
    except RecursionError as exc:
        raise InvalidSpec("invalid YAML: nested too deeply", field="compose") from exc


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


# --- env files -------------------------------------------------------------------------------------------
_ENV_KEY = ENV_KEY
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


def parse_env_file(text: str, field: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped, ``export`` and quotes allowed.

    Values are taken literally: no ``${VAR}`` interpolation inside env files.
    """
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        where = f"{field} line {number}"
        if not sep or not _ENV_KEY.fullmatch(key):
            raise InvalidSpec(
                f"{where}: expected KEY=VALUE with a valid variable name, got {line!r}", field=field
            )
        env[key] = _env_value(value.strip(), where, field)
    return env


def _env_value(value: str, where: str, field: str) -> str:
    if not value.startswith(("'", '"')):
        return re.split(r"\s#", value, maxsplit=1)[0].rstrip()
    quote = value[0]
    chars: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if quote == '"' and char == "\\" and index + 1 < len(value):
            escaped = value[index + 1]
            chars.append(_ESCAPES.get(escaped, "\\" + escaped))
            index += 2
            continue
        if char == quote:
            rest = value[index + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise InvalidSpec(f"{where}: unexpected text after the closing quote: {rest!r}", field=field)
            return "".join(chars)
        chars.append(char)
        index += 1
    raise InvalidSpec(f"{where}: unterminated quote (values must fit on one line)", field=field)


# --- interpolation ---------------------------------------------------------------------------------------
_TEMPLATE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\}|(?P<invalid>))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)


def interpolate(text: str, variables: Mapping[str, str], field: str) -> str:
    """Replace ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
    ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$``; an unset variable is ''."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return variables.get(match["named"], "")
        if match["braced"] is not None:
            return _braced(match["braced"], variables, field)
        raise InvalidSpec(
            f"invalid interpolation in {field}: {text!r} has a '$' starting no variable (write '$$' for '$')",
            field=field,
        )

    return _TEMPLATE.sub(replace, text)


def _braced(body: str, variables: Mapping[str, str], field: str) -> str:
    match = _BRACED.fullmatch(body)
    if match is None:
        raise InvalidSpec(f"invalid interpolation '${{{body}}}' in {field}", field=field)
    name, op, arg = match["name"], match["op"], match["arg"] or ""
    if "$" in arg:
        raise InvalidSpec(f"nested variables in '${{{body}}}' ({field}) are not supported", field=field)
    value = variables.get(name)
    if op is None:
        return value or ""
    missing = not value if op.startswith(":") else value is None
    if op.endswith("-"):
        return arg if missing else value or ""
    if op.endswith("+"):
        return "" if missing else arg
    if missing:
        raise InvalidSpec(f"variable {name} is required by {field}: {arg or 'it is not set'}", field=field)
    return value or ""


def interpolate_tree(node: Any, variables: Mapping[str, str], field: str) -> Any:
    """A copy of a loaded YAML tree with every string value interpolated (keys are left as they are)."""
    return _Interpolator(variables).walk(node, field)


class _Interpolator:
    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        self.done: dict[int, Any] = {}  # YAML aliases share nodes: walk each once (and survive cycles)

    def walk(self, node: Any, field: str) -> Any:
        if isinstance(node, str):
            return interpolate(node, self.variables, field)
        if not isinstance(node, dict | list):
            return node
        if id(node) in self.done:
            return self.done[id(node)]
        if isinstance(node, list):
            items: list[Any] = []
            self.done[id(node)] = items
            items.extend(self.walk(item, f"{field}[{index}]") for index, item in enumerate(node))
            return items
        mapping: dict[Any, Any] = {}
        self.done[id(node)] = mapping
        for key, value in node.items():
            mapping[key] = self.walk(value, f"{field}.{key}" if field else str(key))
        return mapping


def parse_probe(value: Any, where: str) -> ProbeSpec:
    """``x-mypaas-probe: {http: /healthz, status: 200}`` or ``{tcp: 5432}``, plus interval, timeout
    and retries (durations as in ``healthcheck``)."""
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
