"""The compose project's own files a deploy uploads: each relative bind mount's source (``./nginx.conf``,
``./html``) as a gzipped tar part ``files:SOURCE`` whose entry ``.`` is the source itself, with its
owners, modes and times, minus what the project's ``.dockerignore`` excludes (and ``.git``).

The sources come from the compose project as the server reads it (``read_project``: interpolation, long
syntax, normalized paths); a source that does not exist is an error naming it, before anything is sent.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mypaas.cli.deploy import dockerignore, ignored
from mypaas.domain import AppSpec, ProjectFiles
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import Policy, ProjectSource, read_project

# the files are collected whatever the platform allows: its refusals come from the server
_ANYTHING = Policy(allow_host_mounts=True, allow_privileged=True, allow_docker_socket=True)


def project_files_of(body: Mapping[str, Any]) -> list[tuple[str, ProjectFiles]]:
    """(service, project files) for each relative bind mount of the project a deploy ``body`` sends,
    read as the server reads it; none when it does not read (the server then names its errors)."""
    source = ProjectSource(
        tuple(body["compose_files"]),
        body.get("files", {}),
        shell=body.get("variables", {}),
        env_files=tuple(body["env_file"]) if body.get("env_file") else None,
        profiles=tuple(body["profiles"]) if body.get("profiles") else None,
    )
    try:
        spec = read_project(source, policy=_ANYTHING).spec
    except InvalidSpec:
        return []
    return mounted_files(spec)


def mounted_files(spec: AppSpec) -> list[tuple[str, ProjectFiles]]:
    return [(name, pf) for name, svc in spec.services.items() for pf in svc.project_files]


def project_file_parts(project: Path, mounts: list[tuple[str, ProjectFiles]]) -> dict[str, bytes]:
    """The upload parts (part name -> tar.gz) of the mounted sources, relative to ``project``; every
    source is checked before any is read."""
    for service, pf in mounts:
        path = project / pf.source
        if not path.exists() and not pf.create:
            raise InvalidSpec(
                f"services.{service}.volumes: {pf.shown} not found (looked for {path})",
                field=f"services.{service}.volumes",
            )
    patterns = dockerignore(project)
    sources = dict.fromkeys(pf.source for _, pf in mounts)
    return {ProjectFiles(source=s, target="/").part: tar_source(project, s, patterns) for s in sources}


def tar_source(project: Path, source: str, patterns: list[tuple[str, bool]]) -> bytes:
    """``project/source`` as a gzipped tar rooted at ``.``: a file, a folder, or (missing) an empty folder."""
    path = project / source
    inside = _inside(project, path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        if not path.exists():
            info = tarfile.TarInfo(".")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            tar.dereference = True  # the source itself is followed, as a bind mount follows it
            _add(tar, path, ".")
            tar.dereference = False
        if path.is_dir():
            for rel in _walk(path, inside, patterns):
                _add(tar, path / rel, rel)
    return buffer.getvalue()


def _inside(project: Path, path: Path) -> str | None:
    """The path relative to the project, '/'-separated (None when it lies outside the project)."""
    try:
        rel = Path(os.path.normpath(path)).relative_to(os.path.normpath(project))
    except ValueError:
        return None
    return rel.as_posix()


def _walk(folder: Path, prefix: str | None, patterns: list[tuple[str, bool]]) -> list[str]:
    """The folder's entries (relative to it) that ``.dockerignore`` keeps, parents before children."""
    out: list[str] = []

    def skip(rel: str) -> bool:
        if prefix is None:  # outside the project: only .git is left out
            return rel == ".git" or rel.startswith(".git/")
        return ignored(f"{prefix}/{rel}" if prefix != "." else rel, patterns)

    for root, dirs, files in os.walk(folder, onerror=_walk_error):
        here = Path(root).relative_to(folder).as_posix()
        start = "" if here == "." else here + "/"
        dirs[:] = [d for d in sorted(dirs) if not skip(start + d)]
        out.extend(start + d for d in dirs)
        out.extend(start + f for f in sorted(files) if not skip(start + f))
    return out


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    """One entry: a file, a folder or a symlink as it is (sockets and fifos are left out)."""
    try:
        info = tar.gettarinfo(str(path), arcname=name)
    except OSError as exc:
        raise InvalidSpec(f"cannot read {path}: {exc.strerror or exc}", field="volumes") from exc
    if info is None or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
        return
    if info.islnk():  # a second name of a file sent already: send the file again, as it is
        info = _as_file(path, name, info)
    info.uname = info.gname = ""
    if info.isreg():
        try:
            with path.open("rb") as handle:
                tar.addfile(info, handle)
        except OSError as exc:
            raise InvalidSpec(f"cannot read {path}: {exc.strerror or exc}", field="volumes") from exc
    else:
        tar.addfile(info)


def _as_file(path: Path, name: str, link: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    stat = path.stat()
    info.type, info.size, info.mode, info.mtime = tarfile.REGTYPE, stat.st_size, link.mode, link.mtime
    info.uid, info.gid = link.uid, link.gid
    return info


def _walk_error(exc: OSError) -> None:
    raise InvalidSpec(f"cannot read {exc.filename}: {exc.strerror}", field="volumes") from exc
