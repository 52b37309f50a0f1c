"""What `mypaas deploy -f` sends of a compose project's top-level secrets and configs: the value of each
one the CLI has to supply, as the manager never sees the user's machine — a ``file`` read here
(relative to the project folder), an ``environment`` variable of the user's shell, else of the env files.
Values go base64-encoded, by ``secrets.NAME`` / ``configs.NAME``. A missing file or variable is an
error naming it, before anything is sent. ``content`` and ``external`` values need nothing from here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mypaas.errors import InvalidSpec

MAX_BYTES = 500 * 1024  # domain.MAX_BYTES (the manager checks it again)


def secret_values(
    sources: Mapping[str, dict[str, Any]], base: Path, variables: Mapping[str, str]
) -> dict[str, str]:
    """The values (base64) of the project's file and environment secrets and configs, by
    ``secrets.NAME`` / ``configs.NAME``: ``sources`` as the project reader found them (files merged,
    interpolated), ``variables`` the project's (the shell's over the env files')."""
    return {
        where: base64.b64encode(_value(body, where, base, variables)).decode("ascii")
        for where, body in sources.items()
    }


def _value(body: dict[str, Any], where: str, base: Path, variables: Mapping[str, str]) -> bytes:
    if isinstance(body.get("file"), str):
        return _read(body["file"], f"{where}.file", base)
    name = body["environment"]
    if name not in variables:
        raise InvalidSpec(
            f"{where}.environment: the variable {name} is not set (in your shell or .env)",
            field=f"{where}.environment",
        )
    return variables[name].encode()


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
