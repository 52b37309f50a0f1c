"""Paths inside a compose project: files are named relative to the project folder (the first compose
file's folder); a relative path written in an included or extended file is relative to that file's folder
and is rewritten relative to the project folder (``./sub/app``), so the rest of MyPaas sees one folder."""

from __future__ import annotations

import posixpath
import re
from typing import Any

_URL = re.compile(r"^(?:[a-z]+://|git@|github\.com/)")


def resolve(base: str, ref: str) -> str:
    """The name of the file ``ref`` written in a file whose folder is ``base``."""
    return posixpath.normpath(ref if posixpath.isabs(ref) else posixpath.join(base, ref))


def folder_of(name: str) -> str:
    return posixpath.dirname(name) or "."


def rebased(path: str, base: str) -> str:
    """A relative path written in a file whose folder is ``base``, relative to the project folder."""
    if base in (".", "") or not path or path.startswith(("/", "~")) or _URL.match(path):
        return path
    out = posixpath.normpath(posixpath.join(base, path))
    return out if out.startswith(("/", "../")) or out == ".." else f"./{out}"


def rebase(tree: dict[str, Any], base: str) -> None:
    """Rewrite the relative paths of ``tree`` (a file whose folder is ``base``) relative to the project."""
    if base in (".", ""):
        return
    for key in ("secrets", "configs"):
        for body in _mappings(tree.get(key)):
            if isinstance(body.get("file"), str):
                body["file"] = rebased(body["file"], base)
    for body in _mappings(tree.get("services")):
        _rebase_service(body, base)


def _mappings(value: Any) -> list[dict[str, Any]]:
    return [body for body in value.values() if isinstance(body, dict)] if isinstance(value, dict) else []


def _rebase_service(body: dict[str, Any], base: str) -> None:
    build = body.get("build")
    if isinstance(build, str):
        body["build"] = rebased(build, base)
    elif isinstance(build, dict):
        build["context"] = rebased(str(build.get("context", ".")), base)
    for key in ("env_file", "label_file"):
        value = body.get(key)
        items = value if isinstance(value, list) else [value]
        rewritten = [_rebase_entry(item, base) for item in items]
        if key in body:
            body[key] = rewritten if isinstance(value, list) else rewritten[0]
    if isinstance(body.get("volumes"), list):
        body["volumes"] = [_rebase_mount(item, base) for item in body["volumes"]]


def _rebase_entry(item: Any, base: str) -> Any:
    if isinstance(item, str):
        return rebased(item, base)
    if isinstance(item, dict) and isinstance(item.get("path"), str):
        return {**item, "path": rebased(item["path"], base)}
    return item


def _rebase_mount(item: Any, base: str) -> Any:
    if isinstance(item, str):
        source, sep, rest = item.partition(":")
        return rebased(source, base) + sep + rest if sep and source.startswith(".") else item
    if isinstance(item, dict) and item.get("type") == "bind" and isinstance(item.get("source"), str):
        return {**item, "source": rebased(item["source"], base)}
    return item
