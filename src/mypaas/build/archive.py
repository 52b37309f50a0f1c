"""Checks a root filesystem archive as a stream: finds its compression by content, decompresses it, and
refuses unsafe or oversized entries before re-emitting each accepted one as a clean tar for the engine."""

from __future__ import annotations

import bz2
import lzma
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from tarfile import HeaderError, TarFile
from typing import Protocol

from mypaas.errors import InvalidSpec

FIELD = "archive"
KiB, MiB, GiB = 1024, 1024**2, 1024**3
STEP = 256 * KiB  # most bytes one decompression call may produce: memory stays flat, even for bombs
READ = 1 * MiB  # file data is read and passed on in pieces of at most this
OUT = 256 * KiB  # small pieces (headers, small files) are joined up to this before being passed on
HEADER_BUDGET = 4 * MiB  # most bytes an entry's headers (pax records, long names) may take
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = bytes(2 * BLOCK)

COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
UNSUPPORTED = ((b"\x28\xb5\x2f\xfd", "zstd"), (b"PK\x03\x04", "zip"), (b"7z\xbc\xaf\x27\x1c", "7z"))
KEPT_PAX = ("SCHILY.xattr.security.capability", "SCHILY.xattr.user.", "LIBARCHIVE.xattr.user.")


@dataclass(frozen=True)
class Limits:
    """What an archive may hold; past any of these it is refused."""

    max_bytes: int = 20 * GiB  # uncompressed, all entries together
    max_file_bytes: int = 8 * GiB
    max_entries: int = 1_000_000
    max_ratio: int = 200  # uncompressed : compressed
    ratio_after: int = 8 * MiB  # the ratio is checked once this much came out


class _Refused(Exception):
    """An entry is refused; the walk turns it into an InvalidSpec naming the entry."""

    def __init__(self, reason: str, entry: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


class _Corrupt(Exception):
    """The bytes are not a well-formed archive (bad compressed data, a bad header, truncation)."""


def refuse(reason: str) -> InvalidSpec:
    return InvalidSpec(f"archive: {reason}", field=FIELD)


def detect(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz`` or ``tar``, from the first bytes (at least 262 for a plain tar)."""
    for magic, kind in COMPRESSIONS:
        if head.startswith(magic):
            return kind
    if head[257:262] == b"ustar":
        return "tar"
    for magic, kind in UNSUPPORTED:
        if head.startswith(magic):
            raise refuse(f"{kind} is not supported: give a tar archive, plain or gzip/bzip2/xz compressed")
    if not head:
        raise refuse("the upload is empty")
    raise refuse("not a tar archive (expected a plain tar, or one compressed with gzip, bzip2 or xz)")


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Gzip:
    """zlib's gzip reader with the interface of bz2's and lzma's decompressors."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def unused_data(self) -> bytes:
        return self._z.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._z.decompress(self._tail + data if self._tail else data, max_length)
        self._tail = self._z.unconsumed_tail
        self.needs_input = not self._tail and len(out) < max_length
        return out


def _decompressor(kind: str) -> _Decompressor:
    if kind == "gzip":
        return _Gzip()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


class _Meter:
    """Counts bytes in and out; refuses a decompression bomb or an over-large archive as it flows."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.compressed = 0
        self.inflated = 0

    def out(self, n: int) -> None:
        self.inflated += n
        lim = self.limits
        if self.inflated > lim.max_bytes + MiB:
            raise _Refused(f"expands past the {_size(lim.max_bytes)} limit for a whole archive")
        if self.inflated > lim.ratio_after and self.inflated > lim.max_ratio * max(1, self.compressed):
            raise _Refused(
                f"expands more than {lim.max_ratio} times ({_size(self.compressed)} compressed gave "
                f"{_size(self.inflated)}): refused as a decompression bomb"
            )


def _inflate(chunks: Iterator[bytes], kind: str, meter: _Meter) -> Iterator[bytes]:
    """The decompressed stream, in pieces of at most STEP bytes (concatenated streams are read on)."""
    if kind == "tar":
        for chunk in chunks:
            meter.compressed += len(chunk)
            meter.out(len(chunk))
            yield chunk
        return
    d: _Decompressor | None = _decompressor(kind)
    for chunk in chunks:
        meter.compressed += len(chunk)
        data = chunk
        while True:
            if d is None:  # between streams: zero padding, or the start of another stream
                data = data.lstrip(b"\0")
                if not data:
                    break
                d = _decompressor(kind)
            if not data and d.needs_input:
                break
            try:
                out = d.decompress(data, STEP)
            except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                raise _Corrupt(f"bad {kind} data near byte {meter.compressed:,}: {exc}") from exc
            data = b""
            if out:
                meter.out(len(out))
                yield out
            if d.eof:
                data, d = d.unused_data, None
    if d is not None and not d.eof:
        raise _Corrupt(f"the {kind} data ends early (truncated after {meter.compressed:,} bytes)")


class _Source:
    """The file object tarfile reads from: the inflated stream, with a byte budget for headers."""

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

    def seek(self, pos: int) -> int:
        raise OSError("not seekable")

    def read(self, size: int = -1) -> bytes:
        if self._at >= len(self._piece):
            self._piece, self._at = next(self._pieces, b""), 0
            if not self._piece:
                return b""
        n = len(self._piece) - self._at if size < 0 else size
        out = self._piece[self._at : self._at + n]
        self._at += len(out)
        self._pos += len(out)
        if self.budget is not None:
            self.budget -= len(out)
            if self.budget < 0:
                raise _Refused(f"an entry's headers take more than {_size(HEADER_BUDGET)}")
        return out


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
    members: list[tarfile.TarInfo]  # set by TarFile; in stream mode it grows with every entry read
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

    def __iter__(self) -> Iterator[bytes]:
        meter = _Meter(self.limits)
        try:
            yield from gathered(self._walk(meter))
        except _Refused as exc:
            entry = exc.entry if exc.entry is not None else self.current
            if not entry:  # between entries: name the last good one
                raise refuse(f"{self._where()}: {exc.reason}" if self.last else exc.reason) from None
            raise InvalidSpec(f"archive entry {entry!r}: {exc.reason}", field=FIELD) from None
        except _Corrupt as exc:
            raise refuse(f"corrupt {self._where()}: {exc}") from None
        except tarfile.TarError as exc:
            raise refuse(f"corrupt {self._where()}: {exc}") from None

    def _where(self) -> str:
        return f"after entry {self.last!r}" if self.last else "at its start"

    def _walk(self, meter: _Meter) -> Iterator[bytes]:
        head, chunks = _peek(iter(self._chunks), 512)
        self.kind = detect(head)
        inner, pieces = _peek(_inflate(chunks, self.kind, meter), 512)
        if inner[257:262] != b"ustar":
            raise refuse(f"the {self.kind} data does not hold a tar archive")
        src = _Source(pieces)
        src.budget = HEADER_BUDGET
        tar = _Walk.open(None, "r|", src, encoding="utf-8", errors="surrogateescape")
        stream = tar.fileobj
        assert stream is not None
        while True:
            src.budget, self.current = HEADER_BUDGET, ""
            member = tar.next()
            if member is None:
                break
            tar.members.clear()  # stream mode keeps every member otherwise: memory would grow
            src.budget = None
            self.current = member.name
            yield self._check(member)
            yield from self._data(member, stream, tar.offset)
            self.last = member.name
        src.budget = None
        self._check_end(tar, stream)
        yield END_OF_ARCHIVE

    def _data(self, member: tarfile.TarInfo, stream: _Readable, end: int) -> Iterator[bytes]:
        """Pass on a regular file's data; skip to the next header."""
        if not member.isreg():
            return
        left = member.size
        while left > 0:
            got = stream.read(min(READ, left))
            if not got:
                raise _Refused("the archive ends inside this file's data (truncated?)", member.name)
            left -= len(got)
            yield got
        pad = -member.size % BLOCK
        if pad:
            yield bytes(pad)
        while (pos := stream.tell()) < end:
            if not stream.read(min(READ, end - pos)):
                raise _Refused("the archive ends inside this file's data (truncated?)", member.name)

    def _check(self, m: tarfile.TarInfo) -> bytes:
        """Refuse an unsafe entry; return its header, re-encoded from what was checked."""
        name = m.name
        lim = self.limits
        self.entries += 1
        if self.entries > lim.max_entries:
            raise _Refused(f"more than {lim.max_entries:,} entries", name)
        path = _path(name)
        if path.rpartition("/")[2].startswith(".wh."):
            raise _Refused("whiteout entries (.wh.*) have no place in a root filesystem", name)
        if m.ischr() or m.isblk():
            raise _Refused("device nodes are not allowed", name)
        if m.isfifo():
            raise _Refused("fifos are not allowed", name)
        if m.issparse():
            raise _Refused("sparse files are not supported (make the archive without --sparse)", name)
        if m.issym():
            _check_symlink(name, path, m.linkname)
        elif m.islnk():
            m.linkname = self._check_hardlink(name, m.linkname)
        elif m.isreg():
            self._check_size(name, m.size)
            m.type = tarfile.REGTYPE
        elif not m.isdir():
            raise _Refused(f"entry type {m.type!r} is not supported", name)
        if not m.isdir():
            self._seen.add(hash(path))
        return _encode(m, path)

    def _check_size(self, name: str, size: int) -> None:
        lim = self.limits
        if size > lim.max_file_bytes:
            raise _Refused(f"{_size(size)} is over the {_size(lim.max_file_bytes)} limit for one file", name)
        self.size += size
        if self.size > lim.max_bytes:
            raise _Refused(f"the archive's files exceed the {_size(lim.max_bytes)} limit", name)

    def _check_hardlink(self, name: str, target: str) -> str:
        try:
            resolved = _path(target.lstrip("/"))
        except _Refused as exc:
            raise _Refused(f"hardlink target {target!r}: {exc.reason}", name) from None
        if hash(resolved) not in self._seen:
            raise _Refused(f"hardlink to {target!r}, which is not an earlier entry of the archive", name)
        return resolved

    def _check_end(self, tar: _Walk, stream: _Readable) -> None:
        """After the last entry: the end-of-archive marker, then nothing but zeros."""
        stop = type(tar.stop).__name__  # tarfile's private HeaderError kinds
        if stop in ("EmptyHeaderError", "TruncatedHeaderError"):
            raise _Corrupt("the archive ends without its end-of-archive marker (truncated?)")
        if stop != "EOFHeaderError":
            raise _Corrupt(f"bad header at byte {tar.offset:,} of the tar: {tar.stop}")
        while piece := stream.read(READ):
            if piece.count(0) != len(piece):
                raise _Corrupt(f"data after the end-of-archive marker (near byte {stream.tell():,})")


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...

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
        raise _Refused("an entry without a name", name)
    if name.startswith("/"):
        raise _Refused("absolute paths are not allowed", name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Refused("'..' in the path would escape the root", name)
    return "/".join(parts)


def _check_symlink(name: str, path: str, target: str) -> None:
    """A relative target resolves from the link's folder and must stay inside the root; an absolute
    target is read from the root of the image (as the engine and the kernel in a container do)."""
    if not target:
        raise _Refused("a symlink with an empty target", name)
    if target.startswith("/"):
        return
    where = path.split("/")[:-1] if path else []
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not where:
                raise _Refused(f"symlink to {target!r} points outside the root", name)
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
        raise _Refused(f"cannot be re-encoded: {exc}", m.name) from exc


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


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"
