"""Images from root filesystem archives: the archive is checked while it streams into the engine's import,
which completes (and tags the image) only once the whole archive passed."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from mypaas.build.archive import CheckedTar, Limits
from mypaas.composer.base import Backend, ImageInfo
from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    from mypaas.settings import Settings

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_HOST}(?:\.{_HOST})*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)"
_REF = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
)
_HEX64 = re.compile(r"[a-f0-9]{64}")
MAX_NAME = 255

# What `docker import --change` accepts: Dockerfile instructions that only change the image's config.
CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR")


def check_ref(ref: str, field: str = "ref") -> str:
    """A docker reference NAME[:TAG] (no digest), returned with its tag (``latest`` when none)."""
    match = _REF.fullmatch(ref or "")
    hint = "expected NAME:TAG, e.g. myapp/base:1.0 (lowercase name, optional registry host)"
    if match is None:
        raise InvalidSpec(f"invalid image reference {ref!r}: {hint}", field=field)
    domain, path, tag = match["domain"], match["path"], match["tag"]
    is_host = domain and ("." in domain or ":" in domain or domain == "localhost")
    if domain and not is_host and domain != domain.lower():  # a path component: those are lowercase
        raise InvalidSpec(f"invalid image reference {ref!r}: {hint}", field=field)
    name = f"{domain}/{path}" if domain else path
    if len(name) > MAX_NAME:
        raise InvalidSpec(f"image name {name!r} is longer than {MAX_NAME} characters", field=field)
    if _HEX64.fullmatch(path):
        raise InvalidSpec(
            f"invalid image reference {ref!r}: a name cannot look like an image id", field=field
        )
    return f"{name}:{tag or 'latest'}"


def check_changes(changes: Sequence[str]) -> list[str]:
    """Dockerfile-style config changes (``CMD ["/bin/sh"]``, ``ENV A=b``, ``LABEL x=y`` ...)."""
    out = []
    for change in changes:
        words = change.strip().split(None, 1)
        if "\n" in change or len(words) < 2 or words[0].upper() not in CHANGE_INSTRUCTIONS:
            raise InvalidSpec(
                f"invalid change {change!r}: use one of {', '.join(CHANGE_INSTRUCTIONS)} with its arguments",
                field="change",
            )
        out.append(f"{words[0].upper()} {words[1]}")
    return out


def archive_limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.archive_max_bytes,
        max_file_bytes=settings.archive_max_file_bytes,
        max_entries=settings.archive_max_entries,
        max_ratio=settings.archive_max_ratio,
    )


def import_rootfs(
    backend: Backend,
    chunks: Iterable[bytes],
    *,
    ref: str,
    changes: Sequence[str] = (),
    limits: Limits | None = None,
    warn: Callable[[str], None] | None = None,
) -> ImageInfo:
    """Import a root filesystem archive (tar, or gzip/bzip2/xz compressed) streamed in ``chunks``.

    The engine receives each entry only once it was checked, and the end of the archive only once all
    of it passed; a refused or broken archive aborts the import, leaving nothing in the engine. What was
    left out (the device nodes of a ``tar -cp /``, as the runtime gives a container its own /dev) is
    said in one line each to ``warn``.
    """
    ref = check_ref(ref)
    config = check_changes(changes)
    pipe = _Pipe()
    outcome: list[ImageInfo | BaseException] = []

    def upload() -> None:
        try:
            outcome.append(backend.import_image(pipe.pieces(), ref=ref, changes=config))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append(exc)
        finally:
            pipe.close()

    # The engine reads in its own thread, so that checking the next pieces overlaps with sending these.
    sender = threading.Thread(target=upload, name=f"import {ref}", daemon=True)
    sender.start()
    checked = CheckedTar(chunks, replace(limits or Limits(), root_filesystem=True))
    try:
        for piece in checked:
            if not pipe.put(piece):
                break  # the engine stopped reading: its error is in ``outcome``
        pipe.put(_END)
    except BaseException:
        pipe.put(_ABORT)  # the upload ends without its last bytes: the engine discards it
        sender.join()
        raise
    sender.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    for line in checked.warnings:
        (warn or _unheard)(line)
    return result


def _unheard(_line: str) -> None:
    return None


class _Aborted(Exception):
    """Raised into the engine's upload when the archive was refused: the request is cut short."""


_END, _ABORT = b"", None


class _Pipe:
    """A small bounded queue of pieces between the checking thread and the engine's upload."""

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()

    def put(self, piece: bytes | None) -> bool:
        """Queue a piece (``_END`` after the last, ``_ABORT`` to cut the upload); False once closed."""
        while not self._closed.is_set():
            try:
                self._queue.put(piece, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._closed.set()

    def pieces(self) -> Iterator[bytes]:
        while True:
            piece = self._queue.get()
            if piece is _ABORT:
                raise _Aborted("the archive was refused")
            if piece == _END:
                return
            yield piece
