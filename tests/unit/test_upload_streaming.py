"""A deploy's uploaded parts are streamed to files under $MYPAAS_HOME/uploads (0700, files 0600), read
from there by the build, and removed once the build is done, when it fails, when the request fails, and
when the manager starts: a 200 MB upload keeps the manager's memory flat (tracemalloc's peak)."""

from __future__ import annotations

import io
import json
import random
import stat
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.base import ImageInfo
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.states import OperationStatus
from mypaas.uploads import Blob, Upload, Uploads

MiB = 1024 * 1024
BOUNDARY = "mypaas-test-boundary-8c1f0e5d2b"


class RecordingBuilds(FakeBackend):
    """A fake engine that notes what each build got: an upload's file mode and its folder's."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def build_image(self, context: Blob, **kw: Any) -> ImageInfo:
        if isinstance(context, Upload):
            self.seen.append(
                (stat.S_IMODE(context.path.stat().st_mode), stat.S_IMODE(context.path.parent.stat().st_mode))
            )
        return super().build_image(context, **kw)


@pytest.fixture
def backend() -> FakeBackend:
    return RecordingBuilds()


def member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def big_context(size: int, dockerfile: bytes) -> Iterator[bytes]:
    """A gzipped tar of a Dockerfile and one ``size``-byte file of random bytes, stored (level 0: the
    upload is as large as the data), made piece by piece."""
    block = random.Random(7).randbytes(MiB).replace(b"F", b"G")  # no "FAIL" by chance
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    info = tarfile.TarInfo("blob.bin")
    info.size = size
    yield z.compress(member("Dockerfile", dockerfile) + info.tobuf(tarfile.USTAR_FORMAT))
    for _ in range(size // MiB):
        yield z.compress(block)
    yield z.compress(bytes(1024))
    yield z.flush()


def multipart(request: dict[str, Any], parts: dict[str, Iterator[bytes]]) -> Iterator[bytes]:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{json.dumps(request)}\r\n'
    yield head.encode()
    for name, pieces in parts.items():
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.tar.gz"\r\n'
            "Content-Type: application/gzip\r\n\r\n"
        ).encode()
        yield from pieces
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def post_streamed(platform: Platform, path: str, body: Iterator[bytes]) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to the API app as it comes (no Content-Length), as an ASGI client would."""
    sent: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        piece = next(body, None)
        return {"type": "http.request", "body": piece or b"", "more_body": piece is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")

    headers = {
        "authorization": f"Bearer {platform.admin_token}",
        "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        "transfer-encoding": "chunked",
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    anyio.run(create_app(platform), scope, receive, send)
    return sent["status"], json.loads(sent["body"])


def built(platform: Platform, op_id: str) -> OperationStatus:
    """Wait (on the operations' change counter) until the build of ``op_id`` ended; its status."""
    ops = platform.operations
    while True:
        seen = ops.changes.version
        status = ops.get(op_id).status
        if status != OperationStatus.BUILDING:
            return status
        ops.changes.wait(seen, 30)


def leftovers(platform: Platform) -> list[Path]:
    return platform.uploads.files()


def test_a_200mb_upload_is_streamed_to_disk_and_memory_stays_flat(
    platform: Platform, backend: RecordingBuilds
) -> None:
    size = 200 * MiB
    body = multipart({"dockerfile": "Dockerfile"}, {"app": big_context(size, b"FROM scratch\n")})
    tracemalloc.start()
    try:
        status, answer = post_streamed(platform, "/api/v1/apps/big/deploys", body)
        assert status == 202, answer
        assert built(platform, answer["id"]) == OperationStatus.RUNNING, platform.operations.get(
            answer["id"]
        ).log
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak {peak // MiB} MiB while a {size // MiB} MB upload was deployed"
    assert backend.built_bytes > size  # the engine got the whole context, from the file
    assert backend.seen == [(0o600, 0o700)]
    assert leftovers(platform) == []


def test_the_upload_is_removed_after_a_failed_build(platform: Platform, backend: RecordingBuilds) -> None:
    body = multipart({"dockerfile": "Dockerfile"}, {"app": big_context(2 * MiB, b"FROM scratch\nRUN FAIL\n")})
    status, answer = post_streamed(platform, "/api/v1/apps/big/deploys", body)
    assert status == 202, answer
    assert built(platform, answer["id"]) == OperationStatus.FAILED
    assert len(backend.seen) == 1
    assert leftovers(platform) == []


def small_context(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_source_build_reads_the_upload_and_leaves_no_file(
    platform: Platform, backend: RecordingBuilds, api: TestClient
) -> None:
    files = {"app": ("app.tar.gz", small_context({"index.html": b"<h1>hi</h1>"}), "application/gzip")}
    r = api.post("/api/v1/apps/site/deploys", data={"request": json.dumps({"source": True})}, files=files)
    assert r.status_code == 202, r.text
    assert built(platform, r.json()["id"]) == OperationStatus.RUNNING
    assert backend.seen == [(0o600, 0o700)]  # the context with its generated Dockerfile, a file too
    assert leftovers(platform) == []


def test_a_refused_request_leaves_no_file(platform: Platform, api: TestClient) -> None:
    files = {"app": ("app.tar.gz", small_context({"Dockerfile": b"FROM scratch\n"}), "application/gzip")}
    r = api.post("/api/v1/apps/shop/deploys", data={"request": "{not json"}, files=files)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "body"
    r = api.post("/api/v1/apps/shop/deploys", data={"request": json.dumps({"image": "nope:1"})}, files=files)
    assert r.status_code >= 400, r.text
    r = api.post("/api/v1/apps/shop/deploys", files=files)
    assert r.json() == {
        "error": "multipart deploy needs a 'request' part with the JSON body",
        "field": "request",
    }
    bomb = {"app": ("app.tar.gz", b"not a tar at all", "application/gzip")}
    r = api.post(
        "/api/v1/apps/shop/deploys", data={"request": json.dumps({"dockerfile": "Dockerfile"})}, files=bomb
    )
    assert r.status_code == 400, r.text
    assert leftovers(platform) == []


def test_a_dry_run_and_a_cut_body_leave_no_file(platform: Platform, api: TestClient) -> None:
    files = {"app": ("app.tar.gz", small_context({"Dockerfile": b"FROM scratch\n"}), "application/gzip")}
    request = json.dumps({"dockerfile": "Dockerfile"})
    r = api.post("/api/v1/apps/shop/deploys?dry_run=true", data={"request": request}, files=files)
    assert r.status_code == 200, r.text
    cut = b"".join(multipart({"dockerfile": "Dockerfile"}, {"app": iter([b"x" * 5000])}))[:-200]
    status, answer = post_streamed(platform, "/api/v1/apps/shop/deploys", iter([cut]))
    assert (status, answer["field"]) == (400, "body"), answer
    assert leftovers(platform) == []


def test_a_starting_manager_clears_what_a_stopped_one_left(platform: Platform) -> None:
    writer = platform.uploads.writer("app")
    writer.write(b"half an upload")
    left = writer.finish()
    assert stat.S_IMODE(left.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(platform.uploads.folder.stat().st_mode) == 0o700
    platform.start()
    try:
        assert leftovers(platform) == []
    finally:
        platform.stop()


def test_uploads_have_unique_names(tmp_path: Path) -> None:
    uploads = Uploads(tmp_path / "uploads")
    names = {uploads.writer("app").finish().path.name for _ in range(50)}
    assert len(names) == 50


@pytest.mark.parametrize("settings", [{"body_max_upload": 2 * MiB}], indirect=True)
def test_an_upload_cut_at_its_cap_leaves_no_file(platform: Platform) -> None:
    body = multipart({"dockerfile": "Dockerfile"}, {"app": big_context(8 * MiB, b"FROM scratch\n")})
    status, answer = post_streamed(platform, "/api/v1/apps/big/deploys", body)
    assert (status, answer["field"]) == (413, "body"), answer
    assert leftovers(platform) == []


def test_form_fields_are_capped_together(
    platform: Platform, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mypaas.api.multipart

    monkeypatch.setattr(mypaas.api.multipart, "MAX_FIELD_BYTES", 2 * MiB)
    data = {"request": json.dumps({"image": "web:1", "description": "x" * MiB}), "other": "y" * (MiB + 10)}
    files = {"app": ("app.tar.gz", small_context({"Dockerfile": b"FROM scratch\n"}), "application/gzip")}
    r = api.post("/api/v1/apps/shop/deploys", data=data, files=files)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "error": "multipart deploy: the form fields take at most 2 MiB together",
        "field": "other",
    }
    assert leftovers(platform) == []
