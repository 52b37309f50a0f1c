"""What `mypaas deploy` sends: an image, a compose project with the files it reads and its build folders
(:mod:`mypaas.cli.compose`), or a Dockerfile folder; folders go as gzipped tarballs that honour
``.dockerignore``."""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    import tarfile

COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
# read over the compose file found in DIR, as docker compose does without -f
OVERRIDE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
ALWAYS_SENT = ("Dockerfile", ".dockerignore")  # docker sends these even when .dockerignore names them


@dataclass
class Payload:
    """A deploy request: the JSON body, and the build contexts to upload (part name -> tar.gz)."""

    body: dict[str, Any]
    contexts: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposeFlags:
    """`--env-file` and `--profile` of a compose deploy; ``upload`` off: build contexts are not sent."""

    env_files: Sequence[Path] = ()
    profiles: Sequence[str] = ()
    upload: bool = True


def payload_of(
    *,
    image: str | None,
    files: Sequence[Path] | None,
    folder: Path | None,
    port: int | None,
    message: str | None,
    flags: ComposeFlags,
) -> Payload:
    """The request of `mypaas deploy`: exactly one of ``--image``, ``-f`` files or ``DIR``."""
    import typer

    given = [flag for flag, value in (("--image", image), ("-f", files), ("DIR", folder)) if value]
    if len(given) != 1:
        which = " and ".join(given) if given else "none"
        raise typer.BadParameter(f"give exactly one of them (got {which})", param_hint="--image / -f / DIR")
    if port is not None and files:
        raise typer.BadParameter(
            "applies to --image or DIR; a compose file names its own ports", param_hint="--port"
        )
    if image is not None:
        if flags.env_files or flags.profiles:
            raise typer.BadParameter(
                "apply to a compose project, not --image", param_hint="--env-file / --profile"
            )
        return image_payload(image, port, message)
    if files:
        return compose_payload(files, message, flags)
    assert folder is not None
    return folder_payload(folder, port, message, flags)


def image_payload(image: str, port: int | None, message: str | None) -> Payload:
    return Payload(_body({"image": image, "port": port}, message))


def folder_payload(
    folder: Path,
    port: int | None,
    message: str | None,
    flags: ComposeFlags | None = None,
) -> Payload:
    """A folder with a Dockerfile is built as service ``web``; one with only a compose file deploys that
    (and its ``compose.override.yml`` over it, as docker compose does)."""
    if not folder.is_dir():
        raise InvalidSpec(_not_a_folder(folder), field="DIR")
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
            overrides = [folder / other for other in OVERRIDE_NAMES if (folder / other).is_file()]
            return compose_payload([folder / name, *overrides[:1]], message, flags)
    # no Dockerfile, no compose file: the server detects a Python, Node or static app
    return Payload(_body({"source": True, "port": port}, message), {"app": tar_folder(folder)})


def _not_a_folder(path: Path) -> str:
    """What DIR is when it is not a folder; a compose file given as DIR is meant for -f."""
    if not path.exists():
        return f"{path}: no such folder"
    if path.suffix in (".yml", ".yaml"):
        return f"{path} is a file, not a folder: a compose file goes with -f (mypaas deploy APP -f {path})"
    return f"{path} is a file, not a folder (DIR is a folder with a Dockerfile or a compose file)"


def compose_payload(
    paths: Path | Sequence[Path],
    message: str | None,
    flags: ComposeFlags | None = None,
) -> Payload:
    """A compose project (``-f`` files merged in order): every file it reads, the variables it uses, and
    its build contexts (not tarred when ``flags.upload`` is off: a dry run builds nothing)."""
    from mypaas.cli.compose import project_payload

    flags = flags or ComposeFlags()
    files = [paths] if isinstance(paths, Path) else list(paths)
    body, folders = project_payload(files, env_files=flags.env_files, profiles=flags.profiles)
    uploads = {name: tar_folder(folder) for name, folder in folders.items()} if flags.upload else {}
    if body.pop("binds", False):  # relative bind mounts: the project's own files go with the deploy
        from mypaas.cli.project_files import project_file_parts, project_files_of  # it uses this module

        project = files[0].absolute().parent
        uploads.update(project_file_parts(project, project_files_of(body)))
    return Payload(_body(body, message), uploads)


def _body(body: dict[str, Any], message: str | None) -> dict[str, Any]:
    out = {key: value for key, value in body.items() if value is not None}
    if message:
        out["description"] = message
    return out


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
    import tarfile  # only for folders: `deploy --image` sends none

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
