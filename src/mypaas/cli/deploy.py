"""What `mypaas deploy` sends: an image, a Compose file with its env files and build folders, or a
Dockerfile folder; folders go as gzipped tarballs that honour ``.dockerignore``."""

from __future__ import annotations

import functools
import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mypaas.errors import InvalidSpec

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
ALWAYS_SENT = ("Dockerfile", ".dockerignore")  # docker sends these even when .dockerignore names them


@dataclass
class Payload:
    """A deploy request: the JSON body, and the build contexts to upload (part name -> tar.gz)."""

    body: dict[str, Any]
    contexts: dict[str, bytes] = field(default_factory=dict)


def image_payload(image: str, port: int | None, message: str | None) -> Payload:
    return Payload(_body({"image": image, "port": port}, message))


def folder_payload(folder: Path, port: int | None, message: str | None) -> Payload:
    """A folder with a Dockerfile is built as service ``web``; one with only a compose file deploys that."""
    if not folder.is_dir():
        raise InvalidSpec(f"{folder}: no such folder", field="DIR")
    if (folder / "Dockerfile").is_file():
        return Payload(
            _body({"dockerfile": "Dockerfile", "port": port}, message), {"app": tar_folder(folder)}
        )
    for name in COMPOSE_NAMES:
        if (folder / name).is_file():
            if port is not None:
                raise InvalidSpec(
                    "--port applies to an image or a Dockerfile, not a compose file", field="port"
                )
            return compose_payload(folder / name, message)
    # no Dockerfile, no compose file: the server detects a Python, Node or static app
    return Payload(_body({"source": True, "port": port}, message), {"app": tar_folder(folder)})


def compose_payload(path: Path, message: str | None) -> Payload:
    """The compose text, every ``env_file`` it names and ``.env`` beside it, and its build contexts."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"cannot read {path}: {_reason(exc)}", field="file") from exc
    base = path.parent
    env_entries, contexts = compose_references(text)
    env_files: dict[str, str] = {}
    dotenv = base / ".env"
    if dotenv.is_file():
        env_files[".env"] = _read_text(dotenv, ".env")
    for name, required in env_entries:
        file = base / name
        if file.is_file():
            env_files[name] = _read_text(file, f"env_file {name}")
        elif required:
            raise InvalidSpec(f"env_file {name!r} named in {path.name} not found at {file}", field="env_file")
    uploads: dict[str, bytes] = {}
    for context in contexts:
        folder = base / context
        if not folder.is_dir():
            raise InvalidSpec(
                f"build context {context!r} named in {path.name} is not a folder: {folder}", field="build"
            )
        uploads[context] = tar_folder(folder)
    from mypaas.cli.project_files import project_file_parts, project_files_of  # it uses this module

    uploads.update(project_file_parts(base, project_files_of(text, env_files)))
    return Payload(_body({"compose": text, "env_files": env_files}, message), uploads)


def compose_references(text: str) -> tuple[list[tuple[str, bool]], list[str]]:
    """The ``env_file`` paths (with whether each is required) and build contexts a compose text names,
    each as written. A file that does not parse names nothing: the server reports its errors."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return [], []
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict):
        return [], []
    env_files: dict[str, bool] = {}
    contexts: list[str] = []
    for body in services.values():
        if not isinstance(body, dict):
            continue
        for name, required in _env_file_entries(body.get("env_file")):
            env_files[name] = env_files.get(name, False) or required
        context = _context_of(body.get("build"))
        if context is not None and context not in contexts:
            contexts.append(context)
    return list(env_files.items()), contexts


def _env_file_entries(value: Any) -> list[tuple[str, bool]]:
    entries = value if isinstance(value, list) else [value] if value is not None else []
    out = []
    for entry in entries:
        if isinstance(entry, str):
            out.append((entry, True))
        elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
            out.append((entry["path"], entry.get("required", True) is not False))
    return out


def _context_of(build: Any) -> str | None:
    if isinstance(build, str):
        return build
    if isinstance(build, dict):
        context = build.get("context", ".")
        return context if isinstance(context, str) else None
    return None


def _body(body: dict[str, Any], message: str | None) -> dict[str, Any]:
    out = {key: value for key, value in body.items() if value is not None}
    if message:
        out["description"] = message
    return out


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"cannot read {what} at {path}: {_reason(exc)}", field="env_file") from exc


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


# -- tarballs -------------------------------------------------------------------------------------


def dockerignore(folder: Path) -> list[tuple[str, bool]]:
    """The patterns of ``folder/.dockerignore`` as (pattern, is_exception) pairs; none if absent."""
    try:
        lines = (folder / ".dockerignore").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    patterns = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = str(PurePosixPath("/", pattern))[1:].rstrip("/")  # '/a/b/' and './a/b' mean 'a/b'
        if pattern:
            patterns.append((pattern, negate))
    return patterns


def ignored(rel: str, patterns: list[tuple[str, bool]]) -> bool:
    """True if the path ``rel`` (relative, '/'-separated) is excluded; the last matching pattern wins.

    A pattern matching a folder excludes what is inside; ``**`` matches any number of folders.
    """
    if rel == ".git" or rel.startswith(".git/"):
        return True
    result = False
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern, negate in patterns:
        if any(_match(prefix, pattern) for prefix in prefixes):
            result = not negate
    return result


def _match(path: str, pattern: str) -> bool:
    return _regex(pattern).fullmatch(path) is not None


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    """Docker's rules: ``*`` and ``?`` stay within one folder, ``**`` spans any number of them."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def tar_folder(folder: Path) -> bytes:
    """The folder as a gzipped tar (owner root, paths relative), minus ``.git`` and ignored paths."""
    patterns = dockerignore(folder)
    can_prune = not any(negate for _, negate in patterns)  # with '!' exceptions, look inside every folder
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for rel in _walk(folder, patterns, can_prune):
            try:
                tar.add(folder / rel, arcname=rel, recursive=False, filter=_as_root)
            except OSError as exc:
                raise InvalidSpec(f"cannot read {folder / rel}: {_reason(exc)}", field="DIR") from exc
    return buffer.getvalue()


def _walk(folder: Path, patterns: list[tuple[str, bool]], can_prune: bool) -> list[str]:
    out: list[str] = []
    for root, dirs, files in os.walk(folder, onerror=_walk_error):
        here = Path(root).relative_to(folder).as_posix()
        prefix = "" if here == "." else here + "/"
        keep = []
        for name in sorted(dirs):
            rel = prefix + name
            if ignored(rel, patterns):
                if can_prune or rel == ".git":
                    continue
            else:
                out.append(rel)
            keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            rel = prefix + name
            if rel in ALWAYS_SENT or not ignored(rel, patterns):
                out.append(rel)
    return out


def _walk_error(exc: OSError) -> None:
    raise InvalidSpec(f"cannot read {exc.filename}: {exc.strerror}", field="DIR") from exc


def _as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
