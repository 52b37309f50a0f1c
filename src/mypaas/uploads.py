"""A deploy's uploaded parts (build contexts, project files) kept on disk, not in memory.

The API streams each part to a file under ``$MYPAAS_HOME/uploads`` (the folder 0700, each file 0600,
a unique name) and carries an :class:`Upload` (path, size, digest) through the deploy and the build;
whatever reads a part reads it in pieces (``chunks``) or as a file (``open``: the engine's build gets
the file itself). The files are removed when the request fails or the build that used them is done
(``discard``), and the folder is emptied when the manager starts (``Uploads.clear``).

Build code takes a :data:`Blob`: an ``Upload`` or, for what MyPaas makes itself (a builder image's
Dockerfile, a small derived context), plain bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PIECE = 1024 * 1024  # what is read or written at once


@dataclass(frozen=True)
class Upload:
    """One uploaded part on disk: its file, its size in bytes and its sha256 (``sha256:<hex>``)."""

    path: Path
    size: int
    digest: str

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def chunks(self, size: int = PIECE) -> Iterator[bytes]:
        """The part's bytes in pieces of at most ``size`` (the file closed once read)."""
        with self.open() as handle:
            while piece := handle.read(size):
                yield piece

    def head(self, size: int) -> bytes:
        """The part's first ``size`` bytes."""
        with self.open() as handle:
            return handle.read(size)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


Blob = bytes | Upload  # a build context or a project files part: on disk, or small and in memory


def chunks_of(blob: Blob, size: int = PIECE) -> Iterator[bytes]:
    """``blob`` in pieces of at most ``size`` bytes."""
    if isinstance(blob, Upload):
        yield from blob.chunks(size)
        return
    view = memoryview(blob)
    for at in range(0, len(view), size):
        yield bytes(view[at : at + size])


def open_blob(blob: Blob) -> BinaryIO:
    """A binary file object reading ``blob`` (the caller closes it)."""
    return blob.open() if isinstance(blob, Upload) else io.BytesIO(blob)


def head_of(blob: Blob, size: int) -> bytes:
    return blob.head(size) if isinstance(blob, Upload) else blob[:size]


def discard(parts: Mapping[str, Blob] | Iterable[Blob]) -> None:
    """Remove the files of the uploads among ``parts`` (bytes are left alone; removing twice is fine)."""
    for blob in parts.values() if isinstance(parts, Mapping) else parts:
        if isinstance(blob, Upload):
            blob.remove()


class Uploads:
    """The folder uploads go to: owner-only, files with unique names."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _ready(self) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        return self.folder

    def new_path(self, label: str = "part") -> Path:
        """A fresh unique path in the folder (nothing made there yet)."""
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40]
        return self._ready() / f"{safe}-{secrets.token_hex(12)}"

    def writer(self, label: str = "part") -> UploadWriter:
        """A new file to write a part to, piece by piece; ``finish`` gives its Upload."""
        return UploadWriter(self.new_path(label))

    def clear(self) -> int:
        """Remove every file left in the folder (a manager that stopped mid-build); how many."""
        if not self.folder.is_dir():
            return 0
        removed = 0
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                path.unlink()
                removed += 1
        return removed

    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir()) if self.folder.is_dir() else []


class UploadWriter:
    """A part being written: opened 0600 and exclusive (``O_EXCL``), summed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        self._file = os.fdopen(fd, "wb")
        self._sha = hashlib.sha256()
        self._size = 0

    def write(self, piece: bytes) -> None:
        self._file.write(piece)
        self._sha.update(piece)
        self._size += len(piece)

    def finish(self) -> Upload:
        self._file.close()
        return Upload(self.path, self._size, "sha256:" + self._sha.hexdigest())

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def flush(self) -> None:  # a file object to gzip.GzipFile and tarfile
        self._file.flush()
