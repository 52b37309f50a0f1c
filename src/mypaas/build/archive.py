"""Checks a root filesystem archive as a stream: finds its compression by content, decompresses it, and
refuses unsafe or oversized entries before re-emitting each accepted one as a clean tar for the engine."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from tarfile import HeaderError, TarFile
from typing import Protocol

from mypaas.build.inflate import (
    FIELD,
    Corrupt,
    GiB,
    KiB,
    Meter,
    MiB,
    Refused,
    detect,
    inflate,
    refuse,
    size_text,
)
from mypaas.errors import InvalidSpec

__all__ = ["END_OF_ARCHIVE", "READ", "CheckedTar", "GiB", "Limits", "MiB", "Refused", "gathered", "refuse"]

READ = 1 * MiB  # file data is read and passed on in pieces of at most this
OUT = 256 * KiB  # small pieces (headers, small files) are joined up to this before being passed on
HEADER_BUDGET = 4 * MiB  # most bytes an entry's headers (pax records, long names) may take
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = bytes(2 * BLOCK)
KEPT_PAX = ("SCHILY.xattr.security.capability", "SCHILY.xattr.user.", "LIBARCHIVE.xattr.user.")
SHOWN = 3  # device nodes named in the warning about skipping them


@dataclass(frozen=True)
class Limits:
    """What an archive may hold; past any of these it is refused."""

    max_bytes: int = 20 * GiB  # uncompressed, all entries together
    max_file_bytes: int = 8 * GiB
    max_entries: int = 1_000_000
    max_ratio: int = 200  # uncompressed : compressed
    ratio_after: int = 8 * MiB  # the ratio is checked once this much came out
    # A root filesystem (``tar -cp /``) holds /dev's device nodes and maybe fifos: the device nodes are
    # left out (the runtime mounts its own /dev), fifos kept, as ``docker import`` keeps them. Project
    # files and build contexts have no use for either and refuse both.
    root_filesystem: bool = False


class _Source:
    """The file object tarfile reads from: the inflated stream, read forward only, with a byte budget for
    headers. ``read`` answers all it is asked (tarfile wants whole blocks); ``read_some`` answers at most
    that, from the piece at hand, and a whole piece as it is (file data is passed on without copies)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._piece = b""
        self._at = 0
        self._pos = 0
        self.budget: int | None = None

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> int:
        raise OSError("read-only")

    def seek(self, pos: int, whence: int = 0) -> int:
        """Forward only: tarfile skips to the next header this way; the bytes skipped are dropped."""
        if whence != 0 or pos < self._pos:
            raise OSError("not seekable backwards")
        while self._pos < pos and self.read_some(min(READ, pos - self._pos)):
            pass
        return self._pos

    def read_some(self, size: int) -> bytes:
        if self._at >= len(self._piece):
            self._piece, self._at = next((p for p in self._pieces if p), b""), 0
            if not self._piece:
                return b""
        if self._at == 0 and size >= len(self._piece):
            out = self._piece
        else:
            out = self._piece[self._at : self._at + size]
        self._at += len(out)
        self._pos += len(out)
        if self.budget is not None:
            self.budget -= len(out)
            if self.budget < 0:
                raise Refused(f"an entry's headers take more than {size_text(HEADER_BUDGET)}")
        return out

    def read(self, size: int = -1) -> bytes:
        parts, got = [], 0
        while size < 0 or got < size:
            part = self.read_some(READ if size < 0 else size - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _Header(tarfile.TarInfo):
    """Remembers on the walk why tarfile stopped reading headers (the end, or a broken header)."""

    @classmethod
    def fromtarfile(cls, tarfile: TarFile) -> _Header:
        try:
            return super().fromtarfile(tarfile)
        except HeaderError as exc:
            if isinstance(tarfile, _Walk):
                tarfile.stop = exc
            raise


class _Walk(TarFile):
    tarinfo = _Header
    members: list[tarfile.TarInfo]  # set by TarFile; it grows with every entry read
    stop: HeaderError | None = None


class CheckedTar:
    """Iterating over it yields the archive as a plain tar, each entry re-emitted only once checked.

    The last bytes (the end-of-archive marker) come only after the whole archive passed, so a consumer
    that stops short of them (the engine's import) never completes a refused archive.
    """

    def __init__(self, chunks: Iterable[bytes], limits: Limits | None = None) -> None:
        self._chunks = chunks
        self.limits = limits or Limits()
        self.kind = ""
        self.entries = 0
        self.size = 0
        self.last = ""  # the last entry passed on whole
        self.current = ""  # the entry being read
        self._seen: set[int] = set()  # hashes of the paths of earlier non-directory entries
        self._devices: set[int] = set()  # the same for the device nodes left out
        self.devices_skipped: list[str] = []  # the first few device nodes left out, by path

    @property
    def warnings(self) -> list[str]:
        """What the archive held that was left out (one line each), for the user to read."""
        if not self._devices:
            return []
        n = len(self._devices)
        shown = ", ".join(self.devices_skipped) + (", …" if n > len(self.devices_skipped) else "")
        nodes = "device node" if n == 1 else "device nodes"
        return [f"skipped {n} {nodes} ({shown}): the runtime provides /dev"]

    def __iter__(self) -> Iterator[bytes]:
        meter = Meter(self.limits.max_bytes, self.limits.max_ratio, self.limits.ratio_after)
        try:
            yield from gathered(self._walk(meter))
        except Refused as exc:
            entry = exc.entry if exc.entry is not None else self.current
            if not entry:  # between entries: name the last good one
                raise refuse(f"{self._where()}: {exc.reason}" if self.last else exc.reason) from None
            raise InvalidSpec(f"archive entry {entry!r}: {exc.reason}", field=FIELD) from None
        except Corrupt as exc:
            raise refuse(f"corrupt {self._where()}: {exc}") from None
        except tarfile.TarError as exc:
            raise refuse(f"corrupt {self._where()}: {exc}") from None

    def _where(self) -> str:
        return f"after entry {self.last!r}" if self.last else "at its start"

    def _walk(self, meter: Meter) -> Iterator[bytes]:
        head, chunks = _peek(iter(self._chunks), 512)
        self.kind = detect(head)
        inner, pieces = _peek(inflate(chunks, self.kind, meter), 512)
        if inner[257:262] != b"ustar":
            raise refuse(f"the {self.kind} data does not hold a tar archive")
        src = _Source(pieces)
        src.budget = HEADER_BUDGET
        # tarfile reads the headers (the first one now) from ``src``; the walk reads the data itself
        tar = _Walk(fileobj=src, mode="r", encoding="utf-8", errors="surrogateescape")
        while True:
            src.budget, self.current = HEADER_BUDGET, ""
            member = tar.next()
            if member is None:
                break
            tar.members.clear()  # TarFile keeps every member otherwise: memory would grow
            src.budget = None
            self.current = member.name
            yield self._check(member)
            yield from self._data(member, src, tar.offset)
            self.last = member.name
        src.budget = None
        self._check_end(tar, src)
        yield END_OF_ARCHIVE

    def _data(self, member: tarfile.TarInfo, stream: _Readable, end: int) -> Iterator[bytes]:
        """Pass on a regular file's data; skip to the next header."""
        if not member.isreg():
            return
        left = member.size
        while left > 0:
            got = stream.read_some(min(READ, left))
            if not got:
                raise Refused("the archive ends inside this file's data (truncated?)", member.name)
            left -= len(got)
            yield got
        pad = -member.size % BLOCK
        if pad:
            yield bytes(pad)
        while (pos := stream.tell()) < end:
            if not stream.read_some(min(READ, end - pos)):
                raise Refused("the archive ends inside this file's data (truncated?)", member.name)

    def _check(self, m: tarfile.TarInfo) -> bytes:
        """Refuse an unsafe entry; return its header, re-encoded from what was checked."""
        name = m.name
        lim = self.limits
        self.entries += 1
        if self.entries > lim.max_entries:
            raise Refused(f"more than {lim.max_entries:,} entries", name)
        path = _path(name)
        if path.rpartition("/")[2].startswith(".wh."):
            raise Refused("whiteout entries (.wh.*) have no place in a root filesystem", name)
        if m.ischr() or m.isblk() or self._links_to_device(m):
            return self._skip_device(name, path)
        if m.isfifo() and not lim.root_filesystem:
            raise Refused("fifos are not allowed", name)
        if m.issparse():
            raise Refused("sparse files are not supported (make the archive without --sparse)", name)
        if m.issym():
            _check_symlink(name, path, m.linkname)
        elif m.islnk():
            m.linkname = self._check_hardlink(name, m.linkname)
        elif m.isreg():
            self._check_size(name, m.size)
            m.type = tarfile.REGTYPE
        elif not m.isdir() and not m.isfifo():
            raise Refused(f"entry type {m.type!r} is not supported", name)
        if not m.isdir():
            self._seen.add(hash(path))
        return _encode(m, path)

    def _skip_device(self, name: str, path: str) -> bytes:
        """Leave a device node out of a root filesystem (nothing is passed on); refuse it elsewhere."""
        if not self.limits.root_filesystem:
            raise Refused("device nodes are not allowed", name)
        if len(self.devices_skipped) < SHOWN:
            self.devices_skipped.append(path)
        self._devices.add(hash(path))
        return b""

    def _links_to_device(self, m: tarfile.TarInfo) -> bool:
        """A hardlink to a device node left out is left out too (it has nothing to link to)."""
        if not m.islnk() or not self._devices:
            return False
        try:
            return hash(_path(m.linkname.lstrip("/"))) in self._devices
        except Refused:
            return False  # _check_hardlink names what is wrong with it

    def _check_size(self, name: str, size: int) -> None:
        lim = self.limits
        if size > lim.max_file_bytes:
            raise Refused(
                f"{size_text(size)} is over the {size_text(lim.max_file_bytes)} limit for one file", name
            )
        self.size += size
        if self.size > lim.max_bytes:
            raise Refused(f"the archive's files exceed the {size_text(lim.max_bytes)} limit", name)

    def _check_hardlink(self, name: str, target: str) -> str:
        try:
            resolved = _path(target.lstrip("/"))
        except Refused as exc:
            raise Refused(f"hardlink target {target!r}: {exc.reason}", name) from None
        if hash(resolved) not in self._seen:
            raise Refused(f"hardlink to {target!r}, which is not an earlier entry of the archive", name)
        return resolved

    def _check_end(self, tar: _Walk, stream: _Readable) -> None:
        """After the last entry: the end-of-archive marker, then nothing but zeros."""
        stop = type(tar.stop).__name__  # tarfile's private HeaderError kinds
        if stop in ("EmptyHeaderError", "TruncatedHeaderError"):
            raise Corrupt("the archive ends without its end-of-archive marker (truncated?)")
        if stop != "EOFHeaderError":
            raise Corrupt(f"bad header at byte {tar.offset:,} of the tar: {tar.stop}")
        while piece := stream.read_some(READ):
            if piece.count(0) != len(piece):
                raise Corrupt(f"data after the end-of-archive marker (near byte {stream.tell():,})")


class _Readable(Protocol):
    def read_some(self, size: int, /) -> bytes: ...

    def tell(self) -> int: ...


def gathered(pieces: Iterable[bytes], size: int = OUT) -> Iterator[bytes]:
    """The same bytes with small pieces joined up to ``size`` (fewer, larger writes downstream)."""
    parts: list[bytes] = []
    held = 0
    for piece in pieces:
        if len(piece) >= size:
            if parts:
                yield b"".join(parts)
                parts, held = [], 0
            yield piece
            continue
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def _path(name: str) -> str:
    """The entry's path relative to the root ("" for the root); refuse absolute paths and '..'."""
    if not name:
        raise Refused("an entry without a name", name)
    if name.startswith("/"):
        raise Refused("absolute paths are not allowed", name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise Refused("'..' in the path would escape the root", name)
    return "/".join(parts)


def _check_symlink(name: str, path: str, target: str) -> None:
    """A relative target resolves from the link's folder and must stay inside the root; an absolute
    target is read from the root of the image (as the engine and the kernel in a container do)."""
    if not target:
        raise Refused("a symlink with an empty target", name)
    if target.startswith("/"):
        return
    where = path.split("/")[:-1] if path else []
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not where:
                raise Refused(f"symlink to {target!r} points outside the root", name)
            where.pop()
        else:
            where.append(part)


def _encode(m: tarfile.TarInfo, path: str) -> bytes:
    """The entry's header as the engine will read it: the checked path, and only harmless pax records."""
    m.name = path or "."
    m.mtime = int(m.mtime)
    m.pax_headers = {k: v for k, v in m.pax_headers.items() if k.startswith(KEPT_PAX)}
    try:
        return m.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    except (ValueError, UnicodeError) as exc:
        raise Refused(f"cannot be re-encoded: {exc}", m.name) from exc


def _peek(it: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``n`` bytes (fewer if the stream is shorter), and the whole stream still to read."""
    seen: list[bytes] = []
    size = 0
    while size < n:
        piece = next(it, None)
        if piece is None:
            break
        if piece:
            seen.append(piece)
            size += len(piece)
    return b"".join(seen)[:n], chain(seen, it)
