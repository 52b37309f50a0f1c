"""What a backup holds and where each part comes from: a consistent copy of the state store (SQLite's
online backup, taken while the platform runs), the data folder's keys, tokens, certificates and settings,
and optionally the registry's data and the apps' named volumes (read through the engine)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mypaas.errors import BackendError

# the data folder's entries a backup holds, besides the state store and the secrets key (which may
# live elsewhere: setting secrets_key_file). A restore replaces each of them whole: one the archive
# lacks is removed, so two platforms' files are never mixed.
HOME_ITEMS = (
    "settings.yml",
    "admin-token",
    "registry-pull-token",
    "tls",  # the platform CA and the server certificate
    "ssh",  # the hosts' SSH keys and known hosts
    "router/caddy",  # certificates the router obtained (ACME)
    "registry/token.key",  # the registry's token signing key and certificate
    "registry/token.crt",
    "registry/http-secret",
)
KEY_ITEM = "secrets.key"  # the platform key's name in the archive, wherever the machine keeps it
REGISTRY_DATA = "registry/data"
_SKIPPED_DIRS = frozenset({"_uploads"})  # Distribution's unfinished uploads
_PIECE = 1 << 20


def snapshot_db(db_path: Path, into: Path) -> Path:
    """A consistent copy of the state store in the folder ``into`` (SQLite's online backup: one read
    transaction, while the manager goes on writing)."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="backup-", suffix=".db", dir=into)
    os.close(fd)
    try:
        src = sqlite3.connect(str(db_path), timeout=30)
        try:
            dst = sqlite3.connect(name)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        Path(name).unlink(missing_ok=True)
        raise BackendError(f"copying the state store: {exc}") from exc
    return Path(name)


def db_pieces(db_path: Path, tmp: Path) -> Iterator[bytes]:
    """The state store's copy in pieces: taken when the part is reached, removed once read."""
    yield from file_pieces(snapshot_db(db_path, tmp), remove=True)


def file_pieces(path: Path, remove: bool = False) -> Iterator[bytes]:
    """The file's bytes in pieces (then the file removed, with ``remove``)."""
    try:
        with open(path, "rb") as f:
            while piece := f.read(_PIECE):
                yield piece
    finally:
        if remove:
            path.unlink(missing_ok=True)


def home_entries(home: Path, key_path: Path) -> list[tuple[Path, str]]:
    """(path on this machine, name in the archive) of the data folder's items that exist."""
    found = [(home / item, item) for item in HOME_ITEMS if (home / item).exists()]
    if key_path.exists():
        found.append((key_path, KEY_ITEM))
    return found


def tree_size(entries: list[tuple[Path, str]]) -> int:
    total = 0
    for path, _ in entries:
        for file in _files(path):
            with contextlib.suppress(OSError):
                total += file.lstat().st_size
    return total


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(folder) / name


def tar_pieces(entries: list[tuple[Path, str]]) -> Iterator[bytes]:
    """A tar of ``entries`` (files and folders, recursively; sockets and pid files left out), written
    as it is read: a file that changes meanwhile is cut or padded to the size its header gave."""
    for root, arcname in entries:
        for path in [root, *_walk(root)] if root.is_dir() else [root]:
            name = arcname if path == root else f"{arcname}/{path.relative_to(root).as_posix()}"
            yield from _entry(path, name)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        base = Path(folder)
        for name in dirs:
            yield base / name
        for name in sorted(files):
            if not name.endswith(".pid"):
                yield base / name


def _entry(path: Path, name: str) -> Iterator[bytes]:
    try:
        st = path.lstat()
    except OSError:
        return  # gone meanwhile
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    elif stat.S_ISREG(st.st_mode):
        yield from _file_entry(path, info, st.st_size)


def _file_entry(path: Path, info: tarfile.TarInfo, size: int) -> Iterator[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - read in pieces below
    except OSError:
        return
    with f:
        info.size = size
        yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        left = size
        while left > 0:
            piece = f.read(min(_PIECE, left)) or b"\0" * min(_PIECE, left)
            left -= len(piece)
            yield piece
    yield b"\0" * (-size % tarfile.BLOCKSIZE)
