"""The image-making routes on the fake backend: a streamed archive import, and base image requests."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend

IMPORT = "/api/v1/images/import"


def archive(*names: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    return gzip.compress(buf.getvalue())


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def test_import_a_streamed_archive(api: TestClient, backend: FakeBackend) -> None:
    r = api.post(
        IMPORT, params={"ref": "mine/root:1", "change": ["LABEL a=b"]}, content=chunked(archive("bin/sh"))
    )
    assert r.status_code == 200, r.text
    assert r.json()["ref"] == "mine/root:1" and r.json()["id"].startswith("sha256:")
    assert "mine/root:1" in backend.images


@pytest.mark.parametrize(
    ("params", "body", "field", "text"),
    [
        ({"ref": "mine/root:1"}, archive("ok", "/etc/shadow"), "archive", "archive entry '/etc/shadow'"),
        ({"ref": "mine/root:1"}, b"not an archive" * 100, "archive", "not a tar archive"),
        ({"ref": "Bad Ref"}, archive("ok"), "ref", "invalid image reference"),
        ({"ref": "a:1", "change": ["RUN rm -rf /"]}, archive("ok"), "change", "invalid change"),
    ],
)
def test_refused_imports(
    api: TestClient, backend: FakeBackend, params: dict[str, object], body: bytes, field: str, text: str
) -> None:
    r = api.post(IMPORT, params=params, content=chunked(body))
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and text in r.json()["error"]
    assert not backend.images


def test_import_needs_a_token(api: TestClient) -> None:
    r = api.post(IMPORT, params={"ref": "a:1"}, content=archive("ok"), headers={"Authorization": "Bearer no"})
    assert r.status_code == 401


def test_base_image_requests(api: TestClient) -> None:
    for image in ("fedora:40", "debian:potato", "debian"):
        r = api.post("/api/v1/images/base", json={"image": image})
        assert r.status_code == 400 and r.json()["field"] == "image", r.text


def test_base_image_if_missing_keeps_an_image_there(api: TestClient, backend: FakeBackend) -> None:
    assert Path("/usr/share/debootstrap/scripts/bookworm").exists(), (
        "debootstrap is missing (make test installs it)"
    )
    backend.add_image("mypaas/debian:bookworm")
    r = api.post("/api/v1/images/base", json={"image": "debian:bookworm", "if_missing": True})
    assert r.status_code == 202 and r.json()["status"] == "succeeded", r.text
    assert "is there" in r.json()["message"]
