"""A service's environment as docker compose builds it: the ``env_file`` values, ``environment`` over them.

An entry without a value (``- KEY``, ``KEY:``) takes the variable's value from the shell of the user who
deploys, then from the project's env file; when neither has it, it is left out (and hides an ``env_file``
value of the same key), never an empty string. Keys are what the engine takes: anything but '' and keys
holding '=' or a NUL (``discovery.type`` is fine).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mypaas.errors import InvalidSpec
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.values import as_bool, as_list, as_str, checked_keys, key_values


@dataclass(frozen=True)
class EnvFile:
    """One ``env_file`` entry: its path as written, whether it must exist, and where it was written."""

    path: str
    required: bool
    where: str


def check_env_name(key: str, where: str) -> str:
    """A variable name the engine accepts in a container's environment."""
    if not key or "=" in key or "\0" in key:
        raise InvalidSpec(
            f"{where}: invalid variable name {key!r} (it must not be empty, nor hold '=')", field=where
        )
    return key


def environment_entries(value: Any, where: str, variables: Mapping[str, str]) -> dict[str, str | None]:
    """The ``environment`` key: each valueless entry resolved from ``variables`` (None when unset)."""
    out: dict[str, str | None] = {}
    for key, val in key_values(value, where).items():
        check_env_name(key, where)
        resolved = variables.get(key) if val is None else val
        if resolved is not None and "\0" in resolved:
            raise InvalidSpec(f"{where}.{key}: a value cannot hold a NUL character", field=f"{where}.{key}")
        out[key] = resolved
    return out


def env_file_entries(value: Any, where: str) -> list[EnvFile]:
    """The ``env_file`` key: a path, or a list of paths and ``{path, required}`` mappings."""
    entries = [value] if isinstance(value, str | dict) else as_list(value, where)
    out = []
    for index, entry in enumerate(entries):
        at = f"{where}[{index}]" if isinstance(value, list) else where
        if isinstance(entry, str):
            out.append(EnvFile(as_str(entry, at), True, where))
            continue
        body = checked_keys(entry, at, {"path", "required"})
        path = as_str(body.get("path"), f"{at}.path")
        out.append(EnvFile(path, as_bool(body.get("required", True), f"{at}.required"), where))
    return out


def service_environment(
    env_files: list[EnvFile],
    environment: Mapping[str, str | None],
    files: Mapping[str, str],
    variables: Mapping[str, str],
) -> dict[str, str]:
    """The container's variables: the env files' in order, then ``environment`` (an unset entry removes
    the key). Env file values interpolate from ``variables``, then ``environment``."""
    values: dict[str, str] = {}

    def lookup(key: str) -> str | None:
        found = variables.get(key)
        if found is None:
            found = environment.get(key)
        return values.get(key) if found is None else found

    for entry in env_files:
        contents = lookup_file(files, entry.path)
        if contents is None:
            if entry.required:
                raise InvalidSpec(
                    f"env_file {entry.path!r} was not sent with the compose file", field=entry.where
                )
            continue
        for key, val in parse_env_file(contents, f"env_file {entry.path}", lookup).items():
            values[check_env_name(key, f"env_file {entry.path}")] = val
    merged: dict[str, str | None] = {**values, **environment}
    return {key: val for key, val in merged.items() if val is not None}


def lookup_file(files: Mapping[str, str], path: str) -> str | None:
    if path in files:
        return files[path]
    wanted = posixpath.normpath(path)
    return next((text for name, text in files.items() if posixpath.normpath(name) == wanted), None)
