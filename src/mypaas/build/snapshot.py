"""Packages a folder (a whole machine's root by default) as a tar stream, the way the seed does with
``tar --numeric-owner``: numeric owners, with the virtual, temporary and data folders left out, and the
machine's secrets (``SECRET_PATHS``: password hashes, SSH keys, registry logins...) unless included."""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mypaas.build.archive import END_OF_ARCHIVE, READ, gathered

EMPTIED = ("proc", "sys", "dev", "run", "tmp")  # kept as empty folders: they are mount points
DOCKER_DATA = Path("/var/lib/docker")
MAX_NOTES = 20
# left out unless --include names them (or a folder around them): an image is readable by every host
SECRET_PATHS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh/ssh_host_*",
    "/etc/ssl/private",
    "/etc/docker/key.json",
    "/root/.ssh",
    "/home/*/.ssh",
    "/root/.docker/config.json",
    "/home/*/.docker/config.json",
    "/root/.gnupg",
    "/home/*/.gnupg",
    "/root/.*_history",
    "/home/*/.*_history",
    "/var/lib/mypaas",
    "/root/.local/share/mypaas",
    "/home/*/.local/share/mypaas",
    "/root/.config/mypaas",
    "/home/*/.config/mypaas",
)


@dataclass
class Snapshot:
    """Iterating over it yields the tar of ``root``; ``skipped`` then says what was left out and why."""

    root: Path
    excludes: Sequence[str] = ()  # "/var/cache/apt" (a path in ROOT) or "*.pyc" (a name anywhere)
    leave_out: Sequence[Path] = ()  # folders left out whole, wherever they are under ROOT
    one_file_system: bool = False
    secrets: Sequence[str] = SECRET_PATHS  # patterns of paths in ROOT left out (with what is inside)
    includes: Sequence[str] = ()  # paths in ROOT taken even so ("/root/.ssh/authorized_keys")
    skipped: list[str] = field(default_factory=list)
    skipped_count: int = 0
    secrets_left_out: list[str] = field(default_factory=list)  # "/etc/shadow"..., as paths in ROOT
    files: int = 0
    _links: dict[tuple[int, int], str] = field(default_factory=dict)
    _out: set[str] = field(default_factory=set)
    _secret_dirs: set[str] = field(default_factory=set)  # secret folders kept for what is included inside

    def __iter__(self) -> Iterator[bytes]:
        root = self.root.resolve()
        top = os.lstat(root)
        self._out = {rel for rel in (_inside(root, p) for p in self.leave_out) if rel}
        yield from gathered(self._walk(root, top))

    def _walk(self, root: Path, top: os.stat_result) -> Iterator[bytes]:
        yield _header(".", top, tarfile.DIRTYPE)
        folders: list[tuple[str, str]] = [("", str(root))]
        while folders:
            rel, path = folders.pop()
            if rel in EMPTIED:
                continue
            try:
                with os.scandir(path) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                self._skip(rel or ".", exc.strerror or str(exc))
                continue
            inner: list[tuple[str, str]] = []
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if self._excluded(name, entry.name):
                    continue
                yield from self._entry(entry, name, top.st_dev, inner)
            folders.extend(reversed(inner))
        yield END_OF_ARCHIVE

    def _excluded(self, rel: str, name: str) -> bool:
        if rel in self._out or self._secret(rel):
            return True
        for pattern in self.excludes:
            if pattern.startswith("/"):
                if fnmatch.fnmatchcase("/" + rel, pattern.rstrip("/") or "/"):
                    return True
            elif fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(rel, pattern):
                return True
        return False

    def _secret(self, rel: str) -> bool:
        """Is ``rel`` a secret (or inside one) that no --include takes?"""
        path = "/" + rel
        inside = rel.rpartition("/")[0] in self._secret_dirs
        if not inside and not any(fnmatch.fnmatchcase(path, pattern) for pattern in self.secrets):
            return False
        if any(path == inc or path.startswith(inc + "/") for inc in self.includes):
            return False  # included, with everything inside
        if any(inc.startswith(path + "/") for inc in self.includes):
            self._secret_dirs.add(rel)  # kept for an included path inside; the rest of it stays out
            return False
        self.secrets_left_out.append(path)
        return True

    def _entry(
        self, entry: os.DirEntry[str], rel: str, device: int, inner: list[tuple[str, str]]
    ) -> Iterator[bytes]:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return  # gone while we read: it is not part of the snapshot
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            yield _header(rel, st, tarfile.DIRTYPE)
            if not self.one_file_system or st.st_dev == device:
                inner.append((rel, entry.path))
        elif stat.S_ISLNK(mode):
            try:
                target = os.readlink(entry.path)
            except FileNotFoundError:
                return
            yield _header(rel, st, tarfile.SYMTYPE, linkname=target)
        elif stat.S_ISREG(mode):
            yield from self._file(entry.path, rel, st)
        else:
            kind = "socket" if stat.S_ISSOCK(mode) else "fifo" if stat.S_ISFIFO(mode) else "device node"
            self._skip(rel, f"a {kind}")

    def _file(self, path: str, rel: str, st: os.stat_result) -> Iterator[bytes]:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            yield _header(rel, st, tarfile.LNKTYPE, linkname=self._links[key])
            return
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # a file that vanished is simply not there
                self._skip(rel, exc.strerror or str(exc))
            return
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):  # replaced meanwhile
                return
            yield _header(rel, st, tarfile.REGTYPE, size=st.st_size)
            left = st.st_size
            while left > 0:
                piece = f.read(min(READ, left))
                if not piece:  # it shrank while we read: pad with zeros to the size announced
                    piece = bytes(min(READ, left))
                left -= len(piece)
                yield piece
            if st.st_size % tarfile.BLOCKSIZE:
                yield bytes(-st.st_size % tarfile.BLOCKSIZE)
        self.files += 1
        if st.st_nlink > 1:
            self._links[key] = rel

    def _skip(self, rel: str, why: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_NOTES:
            self.skipped.append(f"/{rel}: {why}")


def _header(name: str, st: os.stat_result, kind: bytes, *, linkname: str = "", size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""  # numeric owners: the image's own /etc/passwd gives them names
    info.mtime = int(st.st_mtime)
    info.linkname = linkname
    info.size = size
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def _inside(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` ("" when it is not inside it, or is the root itself)."""
    try:
        rel = path.resolve().relative_to(root)
    except (ValueError, OSError):
        return ""
    return "" if str(rel) == "." else rel.as_posix()


def machine_snapshot(
    root: Path, *, excludes: Sequence[str], home: Path, one_file_system: bool, includes: Sequence[str] = ()
) -> Snapshot:
    """A snapshot that leaves out the MyPaas data folder and the Docker data folder too, and the secrets
    (``SECRET_PATHS``) but ``includes``."""
    return Snapshot(
        root,
        excludes=excludes,
        leave_out=(home, DOCKER_DATA),
        one_file_system=one_file_system,
        includes=[inc.rstrip("/") for inc in includes],
    )
