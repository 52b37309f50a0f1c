"""What a service mounts (compose ``volumes`` and ``tmpfs``) and the top-level ``volumes``.

- A relative bind mount (``./conf:/etc/app``) names files of the compose project: they are uploaded with
  the deploy and become a layer of the service's image (``ProjectFiles``; build/project_files.py).
- An absolute host path needs the admin setting ``allow_host_mounts``; the Docker socket (or a folder
  holding it) needs ``allow_docker_socket``: it is root on the host. The host's ``/etc/localtime`` and
  ``/etc/timezone`` need neither: they are mounted read-only (``:rw`` is refused as any host path).
- ``- /data`` (or a long ``type: volume`` without a source) is an anonymous volume: one per instance.
- Modes: ``ro``/``rw``; ``nocopy``, propagation and ``cached``/``delegated``/``consistent`` go to the engine
  where they mean something there, else they are a warning; ``z``/``Z`` (SELinux relabelling) is not done.
- A top-level volume with ``external: true`` is an existing volume of the platform, mounted by its
  engine name (``name:``, else the key); MyPaas neither creates nor removes it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mypaas.domain import ProjectFiles, TmpfsMount, VolumeMount
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_bool, as_list, as_mapping, as_str, checked_keys, parse_bytes, unsupported

if TYPE_CHECKING:
    from mypaas.spec.services import Context

__all__ = ["Declared", "declare_volumes", "file_mode", "mount_target", "parse_volumes"]

_RESOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_ENGINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
_PROPAGATION = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_CONSISTENCY = ("consistent", "cached", "delegated")
_SELINUX = ("z", "Z")
_MODES = ("ro", "rw", "nocopy", *_SELINUX, *_CONSISTENCY, *_PROPAGATION)
# the engine mounts its own files over these in every container: project files there would be hidden
_ENGINE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
_KERNEL_DIRS = ("/proc", "/sys", "/dev")
_ZONE_FILES = ("/etc/localtime", "/etc/timezone")  # the host's time zone: any service may read them
# a relative bind whose folder or target has one of these names is probably where the app keeps data
_DATA_WORDS = {"data", "db", "database", "pgdata", "storage", "uploads", "logs", "log", "backups"}


# --- top-level volumes ---------------------------------------------------------------------------------
@dataclass
class Declared:
    """The top-level volumes: the app's own (compose names) and the external ones (name -> engine name)."""

    own: list[str] = field(default_factory=list)
    external: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def declare_volumes(value: Any) -> Declared:
    """``{name: {}}``, ``{name: {driver: local}}``, ``{name: {external: true, name: ENGINE_NAME}}``."""
    declared = Declared()
    for name, body in as_mapping(value, "volumes").items():
        where = f"volumes.{name}"
        if not _RESOURCE_NAME.fullmatch(name):
            raise InvalidSpec(
                f"invalid name {name!r} in volumes: use a-z, 0-9, '_', '.' and '-', starting with a-z or 0-9",
                field=where,
            )
        definition = checked_keys(body, where, {"driver", "external", "name", "labels"})
        if definition.get("driver", "local") != "local":
            raise InvalidSpec(
                f"{where}.driver {definition['driver']!r} is not supported (use local)",
                field=f"{where}.driver",
            )
        if "labels" in definition:
            declared.warnings.append(f"{where}.labels: not applied (MyPaas labels the volumes it makes)")
        external = _external(definition.get("external", False), f"{where}.external")
        engine_name = definition.get("name") if "name" in definition else external or None
        if engine_name is not None:
            engine_name = engine_volume_name(engine_name, f"{where}.name")
        if external is None:
            if engine_name is not None:
                declared.warnings.append(
                    f"{where}.name: the volume is the app's own, named by MyPaas "
                    "(to use an existing volume of the platform, add external: true)"
                )
            declared.own.append(name)
        else:
            declared.external[name] = engine_name or name
    for name, engine_name in declared.external.items():
        if engine_name in declared.own:
            raise InvalidSpec(
                f"volumes.{name}: external volume {engine_name!r} has the name of a volume of the app's own",
                field=f"volumes.{name}.name",
            )
    return declared


def _external(value: Any, where: str) -> str | None:
    """None when not external; else the name it gives (deprecated ``external: {name: N}``) or ''."""
    if isinstance(value, dict):
        body = checked_keys(value, where, {"name"})
        return str(body.get("name") or "")
    return "" if as_bool(value, where) else None


def engine_volume_name(value: Any, where: str) -> str:
    """An external volume's engine name, checked: never one of a MyPaas app's own volumes."""
    name = as_str(value, where)
    if not _ENGINE_NAME.fullmatch(name):
        raise InvalidSpec(f"{where}: invalid volume name {name!r}", field=where)
    if name.startswith(("mypaas_", "mypaasov_")):
        raise InvalidSpec(f"{where}: {name!r} is a volume of a MyPaas app, not one to share", field=where)
    return name


# --- a service's volumes -------------------------------------------------------------------------------
@dataclass
class _Mount:
    """One entry of a service's ``volumes``, read but not yet checked."""

    kind: str  # volume | anonymous | bind (a host path) | files (a project path) | tmpfs
    source: str
    target: str
    read_only: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # nocopy, propagation, consistency, selinux, ...


def parse_volumes(value: Any, where: str, context: Context) -> dict[str, Any]:
    """The ``volumes`` key: the service's volumes, project files and tmpfs mounts."""
    volumes: list[VolumeMount] = []
    files: list[ProjectFiles] = []
    tmpfs: list[TmpfsMount] = []
    for index, item in enumerate(as_list(value, where)):
        item_field = f"{where}[{index}]"
        mount = _long(item, item_field) if isinstance(item, dict) else _short(item, item_field)
        mount.target = mount_target(mount.target, item_field)
        if mount.kind == "files":
            files.append(_project_files(mount, item_field, context))
        elif mount.kind == "tmpfs":
            tmpfs.append(_tmpfs_mount(mount))
        else:
            volumes.append(_volume(mount, item_field, context))
    return {"volumes": volumes, "project_files": files, "tmpfs_mounts": tmpfs}


def _short(value: Any, where: str) -> _Mount:
    """``SOURCE:TARGET[:MODES]`` (MODES comma-separated) or ``/path`` (an anonymous volume)."""
    text = as_str(value, where)
    parts = text.split(":")
    if len(parts) == 1:
        if not text.startswith("/"):
            raise InvalidSpec(
                f"{where}: expected SOURCE:TARGET[:MODE] or an absolute path (an anonymous volume), "
                f"got {text!r}",
                field=where,
            )
        return _Mount("anonymous", "", text)
    if len(parts) > 3 or not parts[0]:
        raise InvalidSpec(f"{where}: expected SOURCE:TARGET[:MODE], got {text!r}", field=where)
    mount = _Mount(_kind_of(parts[0]), parts[0], parts[1])
    for mode in parts[2].split(",") if len(parts) == 3 else ():
        if mode not in _MODES:
            raise InvalidSpec(
                f"{where}: unknown mode {mode!r} in {text!r} (expected ro, rw, z, Z, nocopy, "
                "cached, delegated, consistent or a propagation such as rshared)",
                field=where,
            )
        if mode in ("ro", "rw"):
            mount.read_only = mode == "ro"
            mount.options["rw"] = mode == "rw"  # said, not the default: a zone file stays refused
        elif mode == "nocopy":
            mount.options["nocopy"] = True
        elif mode in _SELINUX:
            mount.options["selinux"] = mode
        elif mode in _CONSISTENCY:
            mount.options["consistency"] = mode
        else:
            mount.options["propagation"] = mode
    return mount


def _kind_of(source: str) -> str:
    if source.startswith("."):
        return "files"
    if source.startswith(("/", "~")):
        return "bind"
    return "volume"


_LONG_KEYS = {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"}
_OTHER_TYPES = {
    "npipe": "named pipes are Windows engines'",
    "cluster": "cluster volumes are not supported",
    "image": "image mounts need a newer engine than MyPaas supports",
}


def _long(value: Any, where: str) -> _Mount:
    body = checked_keys(value, where, _LONG_KEYS)
    kind = body.get("type")
    if kind in _OTHER_TYPES:
        raise InvalidSpec(
            f"{where}.type {kind!r} is not supported: {_OTHER_TYPES[kind]}", field=f"{where}.type"
        )
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidSpec(
            f"{where}.type must be 'volume', 'bind' or 'tmpfs', got {kind!r}", field=f"{where}.type"
        )
    source = body.get("source") or ""
    if source:
        source = as_str(source, f"{where}.source")
    mount = _Mount(kind, source, as_str(body.get("target"), f"{where}.target"))
    mount.read_only = as_bool(body.get("read_only", False), f"{where}.read_only")
    if "consistency" in body:
        mount.options["consistency"] = _choice(
            body["consistency"], f"{where}.consistency", (*_CONSISTENCY, "default")
        )
    if kind == "volume":
        _long_volume(mount, body, where)
    elif kind == "bind":
        _long_bind(mount, body, where)
    else:
        _long_tmpfs(mount, body, where)
    for key in {"bind", "volume", "tmpfs"} - {kind}:
        if key in body:
            raise InvalidSpec(f"{where}.{key} applies to type {key}, not {kind}", field=f"{where}.{key}")
    return mount


def _long_volume(mount: _Mount, body: dict[str, Any], where: str) -> None:
    if mount.source.startswith(("/", ".", "~")):
        raise InvalidSpec(
            f"{where}.source {mount.source!r} is a path: use type bind", field=f"{where}.source"
        )
    mount.kind = "volume" if mount.source else "anonymous"
    options = checked_keys(body.get("volume"), f"{where}.volume", {"nocopy", "subpath"})
    if "subpath" in options:
        raise unsupported(
            "subpath", f"{where}.volume.subpath", "it needs a newer engine than MyPaas supports"
        )
    if as_bool(options.get("nocopy", False), f"{where}.volume.nocopy"):
        mount.options["nocopy"] = True


def _long_bind(mount: _Mount, body: dict[str, Any], where: str) -> None:
    if not mount.source:
        raise InvalidSpec(f"{where}.source is required for type bind", field=f"{where}.source")
    mount.kind = _kind_of(mount.source)
    if mount.kind == "volume":
        raise InvalidSpec(
            f"{where}.source {mount.source!r} is not a path: start a project path with ./ "
            "(or use type volume for a named volume)",
            field=f"{where}.source",
        )
    options = checked_keys(body.get("bind"), f"{where}.bind", {"propagation", "create_host_path", "selinux"})
    if "propagation" in options:
        mount.options["propagation"] = _choice(
            options["propagation"], f"{where}.bind.propagation", _PROPAGATION
        )
    if "selinux" in options:
        mount.options["selinux"] = _choice(options["selinux"], f"{where}.bind.selinux", _SELINUX)
    if "create_host_path" in options:
        mount.options["create_host_path"] = as_bool(
            options["create_host_path"], f"{where}.bind.create_host_path"
        )


def _long_tmpfs(mount: _Mount, body: dict[str, Any], where: str) -> None:
    if mount.source:
        raise InvalidSpec(f"{where}.source: a tmpfs mount has no source", field=f"{where}.source")
    options = checked_keys(body.get("tmpfs"), f"{where}.tmpfs", {"size", "mode"})
    if "size" in options:
        mount.options["size"] = parse_bytes(options["size"], f"{where}.tmpfs.size")
    if "mode" in options:
        mount.options["mode"] = file_mode(options["mode"], f"{where}.tmpfs.mode")


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidSpec(f"{where} must be one of {', '.join(allowed)}, got {value!r}", field=where)
    return str(value)


def file_mode(value: Any, where: str) -> int:
    """A mode as an integer (as YAML gives it) or an octal string ("1777", "0o1777")."""
    if isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{1,4}", value):
        mode = int(value.removeprefix("0o"), 8)
    elif isinstance(value, int) and not isinstance(value, bool):
        mode = value
    else:
        raise InvalidSpec(f"{where} must be a file mode such as 1777 (octal), got {value!r}", field=where)
    if not 0 <= mode <= 0o7777:
        raise InvalidSpec(f"{where}: mode {value!r} is out of range", field=where)
    return mode


def mount_target(target: str, where: str) -> str:
    if not target.startswith("/"):
        raise InvalidSpec(f"{where}: the target {target!r} must be an absolute path", field=where)
    normal = posixpath.normpath(target)
    if normal.startswith("//"):
        normal = normal[1:]
    if normal == "/":
        raise InvalidSpec(f"{where}: the target cannot be the root folder '/'", field=where)
    return normal


# --- each kind, checked --------------------------------------------------------------------------------
def _volume(mount: _Mount, where: str, context: Context) -> VolumeMount:
    """A named, external or anonymous volume, or a host path."""
    options = mount.options
    source = mount.source
    if mount.kind == "bind" and _is_zone_file(mount, where, context):
        mount.read_only = True
    elif mount.kind == "bind":
        _check_host_path(source, where, context)
    elif mount.kind == "volume":
        if source in context.external_volumes:
            source = context.external_volumes[source]
        elif source not in context.volumes:
            raise InvalidSpec(
                f"{where}: volume {source!r} is not declared in the top-level volumes", field=where
            )
    else:
        context.warn(
            where,
            f"anonymous volume {mount.target}: each instance gets its own, removed with the instance "
            "(docker compose keeps it when it recreates the container); a named volume keeps data",
        )
    if "selinux" in options and mount.kind != "anonymous":
        context.warn(where, f"SELinux relabelling (:{options['selinux']}) is not done")
    if "nocopy" in options and mount.kind == "bind":
        context.warn(where, "nocopy applies to volumes: it has no meaning for a host path")
    if "create_host_path" in options and mount.kind == "bind":
        context.warn(where, "create_host_path: MyPaas does not create host paths; it must exist on the host")
    propagation = options.get("propagation")
    if propagation and mount.kind != "bind":
        context.warn(
            where, f"propagation {propagation} applies to host paths: it has no meaning for a volume"
        )
        propagation = None
    consistency = options.get("consistency")
    return VolumeMount(
        source=source,
        target=mount.target,
        read_only=mount.read_only,
        bind=mount.kind == "bind",
        no_copy=bool(options.get("nocopy")) and mount.kind != "bind",
        propagation=propagation,
        consistency=consistency if consistency != "default" else None,
    )


def _is_zone_file(mount: _Mount, where: str, context: Context) -> bool:
    """The host's ``/etc/localtime`` or ``/etc/timezone``, read-only: it tells the time zone and exposes
    nothing, so no admin setting is needed (written ``:rw``, it is a host path like any other)."""
    if posixpath.normpath(mount.source) not in _ZONE_FILES or mount.options.get("rw"):
        return False
    if not mount.read_only:
        context.warn(where, f"{mount.source} is the host's: mounted read-only")
    return True


def _check_host_path(source: str, where: str, context: Context) -> None:
    policy = context.policy
    normal = posixpath.normpath(source)
    exact = normal in _SOCKETS or normal.endswith("/docker.sock")
    holds = any(sock.startswith(normal.rstrip("/") + "/") for sock in _SOCKETS)
    if (exact or holds) and not policy.allow_docker_socket:
        what = "is the Docker socket" if exact else "holds the Docker socket"
        raise InvalidSpec(
            f"{where}: {source!r} {what}, which is root on the host: not allowed "
            "(admin setting allow_docker_socket)",
            field=where,
        )
    if not exact and not policy.allow_host_mounts:
        raise InvalidSpec(
            f"{where}: host paths are not allowed (admin setting allow_host_mounts): {source!r}", field=where
        )


def _project_files(mount: _Mount, where: str, context: Context) -> ProjectFiles:
    """A relative bind: files of the compose project, copied into the release."""
    source = posixpath.normpath(mount.source)
    shown = mount.source
    if mount.target.startswith(tuple(f"{d}/" for d in _KERNEL_DIRS)) or mount.target in _KERNEL_DIRS:
        raise InvalidSpec(
            f"{where}: project files cannot go to {mount.target} (the kernel's files are mounted there)",
            field=where,
        )
    if mount.target in _ENGINE_FILES:
        context.warn(
            where, f"the engine mounts its own {mount.target} in every container: {shown} is not seen there"
        )
    options = mount.options
    for key in ("nocopy", "propagation", "consistency"):
        if key in options and options[key] != "default":
            context.warn(where, f"{key} has no meaning for project files (they are copied into the release)")
    if not mount.read_only and _looks_like_data(source, mount.target):
        context.warn(
            where,
            f"{shown} looks like a folder the app writes to: it is copied into the release and what the "
            "app writes there stays with each instance (gone at the next deploy); a named volume keeps data",
        )
    create = bool(options.get("create_host_path"))
    return ProjectFiles(source=source, target=mount.target, read_only=mount.read_only, create=create)


def _looks_like_data(source: str, target: str) -> bool:
    if target.startswith(("/var/lib/", "/var/log/")):
        return True
    words = {part.lower() for part in (*source.split("/"), *target.split("/"))}
    return bool(words & _DATA_WORDS)


def _tmpfs_mount(mount: _Mount) -> TmpfsMount:
    return TmpfsMount(
        target=mount.target,
        size=mount.options.get("size"),
        mode=mount.options.get("mode"),
        read_only=mount.read_only,
    )
