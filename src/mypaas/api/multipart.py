"""A multipart deploy read as it streams: each file part written to its own file under
``$MYPAAS_HOME/uploads`` (see mypaas/uploads.py) as its bytes arrive, never held whole in memory.

Form fields (the JSON ``request``) are small and kept in memory, capped; file parts become ``Upload``s.
At most ``max_files`` file parts and ``max_fields`` fields; a bad body raises ``InvalidSpec`` (400) with
every file written so far removed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import python_multipart
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from mypaas.errors import InvalidSpec
from mypaas.uploads import Upload, Uploads, UploadWriter, discard

MAX_FIELD_BYTES = 64 * 1024 * 1024  # the form fields together (the deploy's JSON request; compose files)


class _Parts:
    """The parser's callbacks: what the current part is, and what was read so far."""

    def __init__(self, uploads: Uploads, max_files: int, max_fields: int) -> None:
        self.uploads = uploads
        self.max_files, self.max_fields = max_files, max_fields
        self.fields: dict[str, str] = {}
        self.files: list[tuple[str, Upload]] = []
        # file bytes parsed, not yet written (written off the event loop); None: the file's end
        self.pending: list[tuple[str, UploadWriter, bytes | None]] = []
        self.writer: UploadWriter | None = None
        self._header, self._value, self._disposition = b"", b"", b""
        self._name, self._data, self._is_file = "", bytearray(), False
        self._field_bytes = 0  # of every field so far
        self._writers: list[UploadWriter] = []

    def on_part_begin(self) -> None:
        self._disposition, self._data, self.writer = b"", bytearray(), None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if self._header.lower() == b"content-disposition":
            self._disposition = self._value
        self._header, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidSpec("multipart deploy: a part without a name", field="body")
        self._name = options[b"name"].decode("utf-8", "replace")
        self._is_file = b"filename" in options
        if self._is_file:
            if len(self._writers) >= self.max_files:
                too_many = f"Too many files. Maximum number of files is {self.max_files}."
                raise InvalidSpec(f"multipart deploy: {too_many}", field="body")
            self.writer = self.uploads.writer("part")
            self._writers.append(self.writer)
        elif len(self.fields) >= self.max_fields:
            too_many = f"Too many fields. Maximum number of fields is {self.max_fields}."
            raise InvalidSpec(f"multipart deploy: {too_many}", field="body")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.writer is not None:
            self.pending.append((self._name, self.writer, bytes(data[start:end])))
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELD_BYTES:
            too_large = f"the form fields take at most {MAX_FIELD_BYTES // 2**20} MiB together"
            raise InvalidSpec(f"multipart deploy: {too_large}", field=self._name)
        self._data += data[start:end]

    def on_part_end(self) -> None:
        if self.writer is not None:
            self.pending.append((self._name, self.writer, None))
        else:
            self.fields[self._name] = self._data.decode("utf-8", "replace")

    def flush(self) -> None:
        """Write the pending pieces to their files, in order (runs in a worker thread)."""
        pending, self.pending = self.pending, []
        for name, writer, piece in pending:
            if piece is None:
                self.files.append((name, writer.finish()))
            else:
                writer.write(piece)

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
        discard(upload for _, upload in self.files)


async def read_multipart(
    content_type: str, stream: AsyncIterator[bytes], uploads: Uploads, *, max_files: int, max_fields: int
) -> tuple[dict[str, str], list[tuple[str, Upload]]]:
    """The form fields and the file parts (name, Upload) of a multipart body, read as it streams."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidSpec("multipart deploy: no boundary in the Content-Type", field="body")
    parts = _Parts(uploads, max_files, max_fields)
    callbacks = {name: getattr(parts, name) for name in dir(parts) if name.startswith("on_")}
    try:
        parser = python_multipart.MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in stream:
            parser.write(chunk)
            if parts.pending:
                await run_in_threadpool(parts.flush)
        parser.finalize()
        await run_in_threadpool(parts.flush)
    except FormParserError as exc:
        parts.abort()
        raise InvalidSpec("multipart deploy: the body is not valid multipart data", field="body") from exc
    except BaseException:
        parts.abort()
        raise
    if len(parts.files) != len(parts._writers):
        parts.abort()
        raise InvalidSpec("multipart deploy: the body ended inside a part", field="body")
    return parts.fields, parts.files
