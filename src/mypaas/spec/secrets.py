"""Compose ``secrets`` and ``configs``: the top-level definitions (where each value comes from) and the
service keys that mount them as read-only files.

Where docker compose and Swarm's ``docker stack deploy`` differ, MyPaas follows Swarm:

- ``file``: a file the CLI reads on the user's machine and uploads with the deploy; ``environment``: a
  variable of the CLI user's shell, else of ``.env``; ``content`` (configs): inline, interpolated.
- ``external: true`` (with an optional ``name``): a secret set with ``mypaas secrets set APP NAME``,
  not an engine object made with ``docker secret create`` (a warning says so).
- ``uid``, ``gid`` and ``mode`` apply on both backends (docker compose ignores them for a bind-mounted
  secret); the defaults are Swarm's: 0, 0 and 0444.
- A secret's relative ``target`` is a file under ``/run/secrets``; a config's target must be absolute
  (default ``/NAME``).
- ``labels`` and a ``name`` that is not external are not kept (MyPaas names and labels the engine's
  objects itself): a warning says so. ``driver``, ``driver_opts`` and ``template_driver`` are refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

from mypaas.domain import SecretMount, SecretSource, ServiceSpec, check_secret_name
from mypaas.errors import InvalidSpec
from mypaas.spec.values import (
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_str,
    checked_keys,
    unsupported,
)
from mypaas.spec.yamlload import ZeroPadded

SECRETS_DIR = "/run/secrets"
_SOURCES = ("file", "environment", "content", "external")
_REFUSED = {
    "driver": "secrets live in MyPaas's encrypted store",
    "driver_opts": "secrets live in MyPaas's encrypted store",
    "template_driver": "values are mounted as they are",
}
Warn = Callable[[str, str], None]


def parse_definitions(value: Any, kind: str, warn: Warn) -> dict[str, SecretSource]:
    """The top-level ``secrets`` (kind ``secret``) or ``configs`` (kind ``config``) of a compose file."""
    top = f"{kind}s"
    out: dict[str, SecretSource] = {}
    for name, body in as_mapping(value, top).items():
        where = f"{top}.{name}"
        check_secret_name(name, field=where)
        out[name] = _definition(name, body, where, kind, warn)
    return out


def _definition(name: str, body: Any, where: str, kind: str, warn: Warn) -> SecretSource:
    allowed = {"file", "environment", "external", "name", "labels", *_REFUSED}
    if kind == "config":
        allowed.add("content")
    for key in as_mapping(body, where):
        if key in _REFUSED:
            raise unsupported(key, f"{where}.{key}", _REFUSED[key])
        if key == "content" and kind == "secret":
            raise unsupported(key, f"{where}.{key}", "a secret's value comes from file or environment")
    definition = checked_keys(body, where, allowed)
    external, external_name = _external(definition.get("external", False), f"{where}.external")
    given = [key for key in _SOURCES if key in definition and (key != "external" or external)]
    if len(given) != 1:
        choices = (
            "file, environment, content or external" if kind == "config" else "file, environment or external"
        )
        which = " and ".join(given) if given else "none"
        raise InvalidSpec(f"{where}: give exactly one of {choices} (got {which})", field=where)
    if "labels" in definition:
        warn(f"{where}.labels", "not kept: MyPaas labels the engine's objects itself")
    if external:
        ref = external_name or definition.get("name") or name
        warn(f"{where}.external", f"the value set with `mypaas secrets set APP {ref}` (not a docker secret)")
        return SecretSource(kind="external", name=check_secret_name(ref, field=f"{where}.name"))
    if "name" in definition:
        as_str(definition["name"], f"{where}.name")
        warn(f"{where}.name", "not kept: MyPaas names the engine's objects itself")
    source = given[0]
    if source == "content":
        content = definition["content"]
        if not isinstance(content, str):
            raise InvalidSpec(f"{where}.content must be a string", field=f"{where}.content")
        return SecretSource(kind="content", content=content)
    text = as_str(definition[source], f"{where}.{source}")
    if "\0" in text:
        raise InvalidSpec(f"{where}.{source} must not hold a NUL character", field=f"{where}.{source}")
    return SecretSource(kind=source, name=text)


def _external(value: Any, where: str) -> tuple[bool, str | None]:
    """``external: true`` or the old ``external: {name: NAME}``."""
    if isinstance(value, dict):
        body = checked_keys(value, where, {"name"})
        return True, as_str(body["name"], f"{where}.name") if "name" in body else None
    return as_bool(value, where), None


# --- the service keys ------------------------------------------------------------------------------------
def service_secrets(value: Any, where: str, context: object) -> dict[str, Any]:
    """A service's ``secrets`` (handler of spec/services.py): ``- NAME`` or ``{source, target, uid,
    gid, mode}``; the names are checked against the top-level ones by ``check_references``."""
    return {"secrets": _mounts(value, where, "secret")}


def service_configs(value: Any, where: str, context: object) -> dict[str, Any]:
    """A service's ``configs`` (handler of spec/services.py), as ``service_secrets``."""
    return {"configs": _mounts(value, where, "config")}


def _mounts(value: Any, where: str, kind: str) -> list[SecretMount]:
    mounts: list[SecretMount] = []
    for index, item in enumerate(as_list(value, where)):
        item_field = f"{where}[{index}]"
        mounts.append(
            _long(item, item_field, kind) if isinstance(item, dict) else _short(item, item_field, kind)
        )
    return mounts


def _short(value: Any, where: str, kind: str) -> SecretMount:
    source = check_secret_name(as_str(value, where), field=where)
    return SecretMount(source=source, target=_target(None, source, where, kind))


def _long(value: Any, where: str, kind: str) -> SecretMount:
    body = checked_keys(value, where, {"source", "target", "uid", "gid", "mode"})
    if "source" not in body:
        raise InvalidSpec(f"{where}.source is required", field=f"{where}.source")
    source = check_secret_name(as_str(body["source"], f"{where}.source"), field=f"{where}.source")
    target = _target(body.get("target"), source, f"{where}.target", kind)
    fields: dict[str, Any] = {"source": source, "target": target}
    for key in ("uid", "gid"):
        if key in body:
            fields[key] = as_int(body[key], f"{where}.{key}")
    if "mode" in body:
        fields["mode"] = _mode(body["mode"], f"{where}.mode")
    return SecretMount(**fields)


def _target(value: Any, source: str, where: str, kind: str) -> str:
    if value is None:
        return f"{SECRETS_DIR}/{source}" if kind == "secret" else f"/{source}"
    target = as_str(value, where)
    if kind == "secret" and not target.startswith("/"):
        target = f"{SECRETS_DIR}/{target}"
    if not target.startswith("/"):
        raise InvalidSpec(f"{where}: the target {target!r} must be an absolute path", field=where)
    if "\0" in target or target == "/" or posixpath.normpath(target) != target or len(target) > 1024:
        raise InvalidSpec(f"{where}: {target!r} is not a plain path to a file", field=where)
    return target


def _mode(value: Any, where: str) -> int:
    """An octal mode: a YAML number (``0440`` or ``0o440``; a plain ``288`` is decimal) or a string of
    octal digits (``"440"``, ``"0440"``), as docker compose reads them."""
    if isinstance(value, ZeroPadded):
        value = value.digits
    if isinstance(value, str):
        text = value.strip().removeprefix("0o")
        if not text or any(char not in "01234567" for char in text):
            raise InvalidSpec(f"{where} must be an octal mode such as 0440, got {value!r}", field=where)
        value = int(text, 8)
    return as_int(value, where, maximum=0o777)


# --- the whole app ---------------------------------------------------------------------------------------
def check_references(
    services: dict[str, ServiceSpec], secrets: dict[str, SecretSource], configs: dict[str, SecretSource]
) -> None:
    """Every secret and config a service mounts is declared at the top level; no path is mounted twice."""
    for name, svc in services.items():
        taken = {v.target for v in svc.volumes}
        for key, mounts, declared in (("secrets", svc.secrets, secrets), ("configs", svc.configs, configs)):
            for index, mount in enumerate(mounts):
                where = f"services.{name}.{key}[{index}]"
                if mount.source not in declared:
                    raise InvalidSpec(
                        f"{where}: {key[:-1]} {mount.source!r} is not declared in the top-level {key}",
                        field=where,
                    )
                if mount.target in taken:
                    raise InvalidSpec(f"{where}: {mount.target} is mounted twice", field=where)
                taken.add(mount.target)
