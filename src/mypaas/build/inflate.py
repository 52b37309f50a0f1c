"""The decompression half of archive checking: finds an archive's compression by content and inflates it
in bounded steps, refusing a decompression bomb or an over-large archive while the bytes flow."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import Protocol

from mypaas.errors import InvalidSpec

FIELD = "archive"
KiB, MiB, GiB = 1024, 1024**2, 1024**3
STEP = 256 * KiB  # most bytes one decompression call may produce: memory stays flat, even for bombs

COMPRESSIONS = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
UNSUPPORTED = ((b"\x28\xb5\x2f\xfd", "zstd"), (b"PK\x03\x04", "zip"), (b"7z\xbc\xaf\x27\x1c", "7z"))


class Refused(Exception):
    """An entry is refused; the walk turns it into an InvalidSpec naming the entry."""

    def __init__(self, reason: str, entry: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


class Corrupt(Exception):
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


class Meter:
    """Counts bytes in and out; refuses a decompression bomb or an over-large archive as it flows."""

    def __init__(self, max_bytes: int, max_ratio: int, ratio_after: int) -> None:
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self.ratio_after = ratio_after
        self.compressed = 0
        self.inflated = 0

    def out(self, n: int) -> None:
        self.inflated += n
        if self.inflated > self.max_bytes + MiB:
            raise Refused(f"expands past the {size_text(self.max_bytes)} limit for a whole archive")
        if self.inflated > self.ratio_after and self.inflated > self.max_ratio * max(1, self.compressed):
            raise Refused(
                f"expands more than {self.max_ratio} times ({size_text(self.compressed)} compressed gave "
                f"{size_text(self.inflated)}): refused as a decompression bomb"
            )


def inflate(chunks: Iterator[bytes], kind: str, meter: Meter) -> Iterator[bytes]:
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
                raise Corrupt(f"bad {kind} data near byte {meter.compressed:,}: {exc}") from exc
            data = b""
            if out:
                meter.out(len(out))
                yield out
            if d.eof:
                data, d = d.unused_data, None
    if d is not None and not d.eof:
        raise Corrupt(f"the {kind} data ends early (truncated after {meter.compressed:,} bytes)")


def size_text(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"
