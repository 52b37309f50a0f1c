"""What `mypaas deploy -f` sends of a compose file's top-level secrets and configs: the value of each
one the CLI has to supply, as the manager never sees the user's machine — a ``file`` read here
(relative to the compose file), an ``environment`` variable of the user's shell, else of ``.env``.
Values go base64-encoded, by ``secrets.NAME`` / ``configs.NAME``. A missing file or variable is an
error naming it, before anything is sent. ``content`` and ``external`` values need nothing from here.
The compose reader's helpers (which load the domain's models) are imported only for a file that has a
value to send: every other deploy keeps the command line light.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mypaas.errors import InvalidSpec

MAX_BYTES = 500 * 1024  # domain.MAX_BYTES (the manager checks it again)


def secret_values(text: str, base: Path, dotenv: str | None) -> dict[str, str]:
    """The values of the compose text's file and environment secrets and configs (base64)."""
    sources = _sources(text)
    if not sources:
        return {}
    variables = {**_dotenv(dotenv), **os.environ}
    values: dict[str, str] = {}
    for where, body in sources:
        values[where] = base64.b64encode(_value(body, where, base, variables)).decode("ascii")
    return values


def _sources(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The definitions whose value the CLI sends (``secrets.NAME`` / ``configs.NAME``, body)."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []  # the manager reports what is wrong with the file
    if not isinstance(doc, dict):
        return []
    out = []
    for top in ("secrets", "configs"):
        definitions = doc.get(top)
        for name, body in definitions.items() if isinstance(definitions, dict) else ():
            if isinstance(body, dict) and not body.get("external") and _has_source(body):
                out.append((f"{top}.{name}", body))
    return out


def _has_source(body: dict[str, Any]) -> bool:
    return isinstance(body.get("file"), str) or isinstance(body.get("environment"), str)


def _dotenv(text: str | None) -> dict[str, str]:
    from mypaas.spec.values import parse_env_file

    try:
        return parse_env_file(text or "", ".env")
    except InvalidSpec:
        return {}


def _value(body: dict[str, Any], where: str, base: Path, variables: Mapping[str, str]) -> bytes:
    if isinstance(body.get("file"), str):
        return _read(_interpolated(body["file"], variables, f"{where}.file"), f"{where}.file", base)
    name = body["environment"]
    if name not in variables:
        raise InvalidSpec(
            f"{where}.environment: the variable {name} is not set (in your shell or .env)",
            field=f"{where}.environment",
        )
    return variables[name].encode()


def _interpolated(path: str, variables: Mapping[str, str], where: str) -> str:
    from mypaas.spec.values import interpolate

    try:
        return interpolate(path, variables, where)
    except InvalidSpec:
        return path  # the manager reports the bad interpolation


def _read(path: str, where: str, base: Path) -> bytes:
    file = base / Path(path).expanduser()  # an absolute path stays as it is
    try:
        if not file.is_file():
            raise InvalidSpec(f"{where}: {path!r} not found at {file}", field=where)
        if file.stat().st_size > MAX_BYTES:
            raise InvalidSpec(f"{where}: {path!r} is larger than {MAX_BYTES // 1024} KiB", field=where)
        return file.read_bytes()
    except OSError as exc:
        raise InvalidSpec(f"{where}: cannot read {file}: {exc.strerror or exc}", field=where) from exc
