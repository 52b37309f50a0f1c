"""The compose ``tmpfs`` key (``PATH[:OPTIONS]``), and a service's mounts gathered together: the tmpfs
mounts of ``volumes`` and of ``tmpfs``, no two mounts at one target."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypaas.domain import TmpfsMount
from mypaas.errors import InvalidSpec
from mypaas.spec.values import as_list, as_str, parse_bytes
from mypaas.spec.volumes import file_mode, mount_target

if TYPE_CHECKING:
    from mypaas.spec.services import Context

__all__ = ["finish_mounts", "parse_tmpfs"]

# --- the tmpfs key ---------------------------------------------------------------------------------------
_TMPFS_FLAGS = ("noexec", "exec", "nosuid", "suid", "nodev", "dev")


def parse_tmpfs(value: Any, where: str, context: Context) -> dict[str, Any]:
    """``tmpfs: /run`` or a list of ``PATH[:OPTIONS]`` (``size=64m``, ``mode=1777``, ``ro``, ...)."""
    items = [value] if isinstance(value, str) else as_list(value, where)
    mounts: list[TmpfsMount] = []
    for index, item in enumerate(items):
        item_field = where if isinstance(value, str) else f"{where}[{index}]"
        path, _, options = as_str(item, item_field).partition(":")
        mounts.append(_tmpfs_options(mount_target(path, item_field), options, item_field, context.warn))
    return {"tmpfs": mounts}


def _tmpfs_options(target: str, text: str, where: str, warn: Callable[[str, str], None]) -> TmpfsMount:
    fields: dict[str, Any] = {"target": target}
    ignored: list[str] = []
    for option in filter(None, text.split(",")):
        key, sep, val = option.partition("=")
        if key == "size" and sep:
            fields["size"] = parse_bytes(val, f"{where} size")
        elif key == "mode" and sep:
            fields["mode"] = file_mode(val, f"{where} mode")  # octal, as docker's --tmpfs takes it
        elif key in ("ro", "rw") and not sep:
            fields["read_only"] = key == "ro"
        elif key in _TMPFS_FLAGS or sep:
            ignored.append(option)
        else:
            raise InvalidSpec(f"{where}: unknown tmpfs option {option!r}", field=where)
    if ignored:
        warn(where, f"tmpfs options {', '.join(ignored)} are not applied (only size, mode and ro are)")
    return TmpfsMount(**fields)


# --- all of a service's mounts together ------------------------------------------------------------------
def finish_mounts(kwargs: dict[str, Any], where: str) -> None:
    """Gather the tmpfs mounts of ``volumes`` with the ``tmpfs`` key's; refuse two mounts at one target."""
    tmpfs = [*kwargs.pop("tmpfs", []), *kwargs.pop("tmpfs_mounts", [])]
    if tmpfs:
        kwargs["tmpfs"] = tmpfs
    seen: set[str] = set()
    for mount in [*kwargs.get("volumes", []), *kwargs.get("project_files", []), *tmpfs]:
        if mount.target in seen:
            raise InvalidSpec(f"{where}: two mounts at {mount.target}", field=f"{where}.volumes")
        seen.add(mount.target)
