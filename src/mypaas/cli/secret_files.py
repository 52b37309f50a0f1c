"""What `mypaas deploy -f` sends of a compose file's top-level secrets and configs: the value of each
one the CLI has to supply, as the manager never sees the user's machine — a ``file`` read here
(relative to the compose file), an ``environment`` variable of the user's shell, else of ``.env``.
Values go base64-encoded, by ``secrets.NAME`` / ``configs.NAME``. A missing file or variable is an
error naming it, before anything is sent. ``content`` and ``external`` values need nothing from here.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mypaas.domain import MAX_SECRET_BYTES
from mypaas.errors import InvalidSpec
from mypaas.spec.values import interpolate, load_yaml, parse_env_file


def secret_values(text: str, base: Path, dotenv: str | None) -> dict[str, str]:
    """The values of the compose text's file and environment secrets and configs (base64)."""
    try:
        doc = load_yaml(text)
    except InvalidSpec:
        return {}  # the manager reports what is wrong with the file
    if not isinstance(doc, dict):
        return {}
    variables = {**_dotenv(dotenv), **os.environ}
    values: dict[str, str] = {}
    for top in ("secrets", "configs"):
        definitions = doc.get(top)
        for name, body in definitions.items() if isinstance(definitions, dict) else ():
            value = _value(body, f"{top}.{name}", base, variables)
            if value is not None:
                values[f"{top}.{name}"] = base64.b64encode(value).decode("ascii")
    return values


def _dotenv(text: str | None) -> dict[str, str]:
    try:
        return parse_env_file(text or "", ".env")
    except InvalidSpec:
        return {}


def _value(body: Any, where: str, base: Path, variables: Mapping[str, str]) -> bytes | None:
    if not isinstance(body, dict) or body.get("external"):
        return None
    if isinstance(body.get("file"), str):
        return _read(_interpolated(body["file"], variables, f"{where}.file"), f"{where}.file", base)
    if isinstance(body.get("environment"), str):
        name = body["environment"]
        if name not in variables:
            raise InvalidSpec(
                f"{where}.environment: the variable {name} is not set (in your shell or .env)",
                field=f"{where}.environment",
            )
        return variables[name].encode()
    return None


def _interpolated(path: str, variables: Mapping[str, str], where: str) -> str:
    try:
        return interpolate(path, variables, where)
    except InvalidSpec:
        return path  # the manager reports the bad interpolation


def _read(path: str, where: str, base: Path) -> bytes:
    file = base / Path(path).expanduser()  # an absolute path stays as it is
    try:
        if not file.is_file():
            raise InvalidSpec(f"{where}: {path!r} not found at {file}", field=where)
        if file.stat().st_size > MAX_SECRET_BYTES:
            raise InvalidSpec(f"{where}: {path!r} is larger than {MAX_SECRET_BYTES // 1024} KiB", field=where)
        return file.read_bytes()
    except OSError as exc:
        raise InvalidSpec(f"{where}: cannot read {file}: {exc.strerror or exc}", field=where) from exc
