"""Build contexts (a deploy's uploaded folders, gzipped tars) read the way image imports are: through
archive.py's ``CheckedTar``, as a stream, with limits on entries and sizes and the same path checks.

A context is an upload on disk (read in pieces) or bytes (see mypaas/uploads.py). A context past
``LIMITS`` (a tar bomb: millions of empty entries, a decompression bomb, a path that escapes the folder)
is refused with one ``InvalidSpec`` naming it, before the engine sees it; reading one keeps memory flat
(tarfile's stream mode, its member list cleared as it goes).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping

from mypaas.build.archive import CheckedTar, GiB, Limits, MiB
from mypaas.domain import AppSpec
from mypaas.errors import InvalidSpec
from mypaas.uploads import Blob, chunks_of

LIMITS = Limits(max_bytes=4 * GiB, max_file_bytes=2 * GiB, max_entries=100_000)
PIECE = 1 * MiB


def pieces(data: Blob, size: int = PIECE) -> Iterator[bytes]:
    """``data`` in pieces of at most ``size`` bytes (the checker reads a stream; an upload is read from
    its file)."""
    return chunks_of(data, size)


class _Stream:
    """A read-only file object over an iterator of byte pieces, for tarfile's stream mode."""

    def __init__(self, source: Iterator[bytes]) -> None:
        self._source = source
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            piece = next(self._source, b"")
            if not piece:
                break
            self._buf += piece
        n = len(self._buf) if size < 0 else size
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def walk(
    context: Blob, what: str, field: str, limits: Limits = LIMITS
) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Each entry of a gzipped tar context once checked, with the tar to extract it from (while it is the
    current entry). A refused context raises InvalidSpec saying ``what`` it is, for ``field``."""
    try:
        stream = _Stream(iter(CheckedTar(pieces(context), limits)))
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                tar.members.clear()  # stream mode keeps every member otherwise
                yield member, tar
    except InvalidSpec as exc:
        raise InvalidSpec(f"{what}: {exc.message}", field=field) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidSpec(f"{what} is not a readable tar.gz: {exc}", field=field) from exc


def check_context(context: Blob, name: str, limits: Limits = LIMITS) -> None:
    """Refuse a context past ``limits`` or with an unsafe entry (read through once, nothing kept)."""
    try:
        for _ in CheckedTar(pieces(context), limits):
            pass
    except InvalidSpec as exc:
        raise InvalidSpec(f"build context {name!r}: {exc.message}", field=name) from None


def check_contexts(spec: AppSpec, contexts: Mapping[str, Blob]) -> None:
    """Check every build context the spec's services build from (when it was uploaded)."""
    used = {svc.build.context for svc in spec.services.values() if svc.build is not None}
    for name in sorted(used):
        if name in contexts:
            check_context(contexts[name], name)
