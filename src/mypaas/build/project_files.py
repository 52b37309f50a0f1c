"""The compose project's own files (relative bind mounts) as part of a release.

The CLI uploads each source a service mounts (``./nginx.conf``, ``./html``) as a gzipped tar part named
``files:SOURCE`` (see ``ProjectFiles.part``). Here each upload is checked (build/archive.py's rules: no
absolute paths, no '..', no devices, bounded sizes) and summed up as a digest of its names, kinds, modes,
owners and contents. A service with project files then runs a derived image: ``FROM`` its pinned image
plus one layer with the files at their targets, built on the manager's engine and pinned by id in the
release. So a rollback brings the old files back, Swarm hosts pull the image like any release's, and
writes go to each instance's own copy. An unchanged set of files (same digests, same base image) finds
the image it made before, by a tag named after them, and costs nothing.

A folder replaces what the image has at its target, as a bind mount hides it: in the layer's tar a
placeholder file comes first at the target, which the engine's extraction puts in place of the image's
folder, then the folder itself (the layer records the folder as opaque). Mounts go in order of depth,
so a file mounted inside a mounted folder lands on top of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mypaas.build.archive import CheckedTar, Limits
from mypaas.composer.base import Backend
from mypaas.domain import PROJECT_FILES_PART, AppSpec, ProjectFiles
from mypaas.errors import InvalidSpec, NotFound
from mypaas.uploads import Blob, chunks_of

MiB = 1024**2
MAX_BYTES = 256 * MiB  # all project files of a deploy together, uncompressed
MAX_ENTRIES = 100_000
FORMAT = 1  # of the derived image; a change here makes every derived image anew
_Entry = tuple[tarfile.TarInfo, bytes]


@dataclass(frozen=True)
class FileSet:
    """One uploaded source: the source itself (a file or a folder) and, for a folder, what it holds."""

    root: _Entry
    entries: tuple[_Entry, ...]
    digest: str
    size: int

    @property
    def count(self) -> int:
        return 1 + len(self.entries)


@dataclass(frozen=True)
class Prepared:
    """A deploy's project files, read: the spec with their digests, and each service's layer (a tar)."""

    spec: AppSpec
    layers: dict[str, bytes]


def read_project_files(spec: AppSpec, uploads: Mapping[str, Blob]) -> Prepared:
    """Check the uploads every service's project files need; raise ``InvalidSpec`` naming what is wrong."""
    sets: dict[str, FileSet] = {}
    budget = MAX_BYTES
    services = dict(spec.services)
    layers: dict[str, bytes] = {}
    for name, svc in spec.services.items():
        mounts: list[ProjectFiles] = []
        for pf in svc.project_files:
            if pf.source not in sets:
                data = uploads.get(pf.part)
                if data is None:
                    raise InvalidSpec(
                        f"services.{name}.volumes: the project files {pf.shown} were not uploaded "
                        "(the mypaas CLI uploads them with the deploy)",
                        field=f"services.{name}.volumes",
                    )
                sets[pf.source] = read_file_set(pf.source, data, budget)
                budget -= sets[pf.source].size
            fs = sets[pf.source]
            mounts.append(pf.model_copy(update={"digest": fs.digest, "count": fs.count, "size": fs.size}))
        if mounts:
            services[name] = svc.model_copy(update={"project_files": mounts})
            layers[name] = layer_tar([(pf, sets[pf.source]) for pf in mounts])
    return Prepared(spec.model_copy(update={"services": services}), layers)


def read_file_set(source: str, data: Blob, budget: int = MAX_BYTES) -> FileSet:
    """One upload (a gzipped tar whose entry ``.`` is the source itself), checked and summed up."""
    limits = Limits(max_bytes=max(budget, 0), max_file_bytes=MAX_BYTES, max_entries=MAX_ENTRIES)
    try:
        clean = b"".join(CheckedTar(chunks_of(data), limits))
    except InvalidSpec as exc:
        raise InvalidSpec(
            f"project files {_shown(source)}: {exc.message}", field=PROJECT_FILES_PART + source
        ) from exc
    root: _Entry | None = None
    entries: list[_Entry] = []
    with tarfile.open(fileobj=io.BytesIO(clean), mode="r:") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            entry = (info, handle.read() if handle else b"")
            if info.name == ".":
                root = entry
            elif root is not None and root[0].isreg():
                raise InvalidSpec(
                    f"project files {_shown(source)}: a file upload holds more than the file",
                    field=PROJECT_FILES_PART + source,
                )
            else:
                entries.append(entry)
    if root is None:  # a folder sent without its own entry
        info = tarfile.TarInfo(".")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        root = (info, b"")
    if not (root[0].isreg() or root[0].isdir()):
        raise InvalidSpec(
            f"project files {_shown(source)}: must be a file or a folder", field=PROJECT_FILES_PART + source
        )
    return FileSet(root, tuple(entries), _digest([root, *entries]), sum(len(d) for _, d in [root, *entries]))


def _digest(entries: list[_Entry]) -> str:
    """What identifies a set of files: names, kinds, modes, owners, link targets and contents (not
    the modification times: a fresh checkout of the same files is the same set)."""
    lines = []
    for info, data in entries:
        what = info.linkname if info.issym() or info.islnk() else hashlib.sha256(data).hexdigest()
        kind = info.type.decode()
        lines.append(f"{info.name}\0{kind}\0{info.mode:o}\0{info.uid}\0{info.gid}\0{what}")
    return "sha256:" + hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def layer_tar(mounts: list[tuple[ProjectFiles, FileSet]]) -> bytes:
    """The files of a service's mounts at their targets, shallower targets first (a plain tar)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for pf, fs in sorted(mounts, key=lambda m: m[0].target.count("/")):
            base = pf.target.lstrip("/")
            info, data = fs.root
            if info.isdir():
                placeholder = tarfile.TarInfo(base)  # replaces the image's folder at the target
                placeholder.mode = 0o600
                tar.addfile(placeholder)
            tar.addfile(_moved(info, base, pf.read_only, base), io.BytesIO(data))
            for info, data in fs.entries:
                tar.addfile(_moved(info, f"{base}/{info.name}", pf.read_only, base), io.BytesIO(data))
    return buffer.getvalue()


def _moved(info: tarfile.TarInfo, name: str, read_only: bool, base: str) -> tarfile.TarInfo:
    out = tarfile.TarInfo(name)
    out.type, out.size, out.mtime = info.type, info.size, info.mtime
    out.uid, out.gid = info.uid, info.gid
    out.mode = info.mode & ~0o222 if read_only and not info.issym() else info.mode
    out.linkname = f"{base}/{info.linkname}" if info.islnk() else info.linkname
    return out


# --- the derived images ----------------------------------------------------------------------------------
def add_project_files(
    backend: Backend, app: str, spec: AppSpec, layers: Mapping[str, bytes], emit: Callable[[str], None]
) -> AppSpec:
    """Pin each service that has project files to its derived image (made now, or found from before)."""
    services = dict(spec.services)
    for name, svc in spec.services.items():
        if not svc.project_files:
            continue
        if not svc.image_id:
            raise InvalidSpec(f"service {name}: no image pinned to add its project files to", field=name)
        tag = f"mypaas-{app}/{name}:files-{derived_key(svc.image_id, svc.project_files)}"
        count = sum(pf.count for pf in svc.project_files)
        size = sum(pf.size for pf in svc.project_files)
        try:
            info = backend.image(tag)
            emit(f"--- project files of {name} unchanged ({count} entries, {_kib(size)}): {info.id[:19]}")
        except NotFound:
            emit(f"--- adding the project files of {name}: {count} entries, {_kib(size)}")
            info = backend.build_image(derived_context(svc.image_id, layers[name]), tag=tag, on_line=emit)
            emit(f"--- {name} with its project files: {info.id[:19]}")
        services[name] = svc.model_copy(update={"image_id": info.id})
    return spec.model_copy(update={"services": services})


def derived_key(base_image: str, mounts: list[ProjectFiles]) -> str:
    """The derived image's identity: its base image, and each mount's target, mode and files."""
    body = [FORMAT, base_image, [[pf.target, pf.read_only, pf.digest] for pf in mounts]]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:32]


def _shown(source: str) -> str:
    return ProjectFiles(source=source, target="/").shown


def derived_context(base_image: str, layer: bytes) -> bytes:
    """The build context of a derived image: ``FROM`` the base by id, the layer's tar ``ADD``ed at /
    (the builder extracts a local tar archive in place, keeping its owners and modes)."""
    dockerfile = f"FROM {base_image}\nADD files.tar /\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name, data in (("Dockerfile", dockerfile), ("files.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size >= 1024 else f"{size} bytes"
