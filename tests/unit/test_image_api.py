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
    assert r.json()["warnings"] == []
    assert "mine/root:1" in backend.images


def test_an_import_names_the_device_nodes_it_left_out(api: TestClient, backend: FakeBackend) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        node = tarfile.TarInfo("dev/null")
        node.type = tarfile.CHRTYPE
        tar.addfile(node)
    r = api.post(IMPORT, params={"ref": "seed/base:1"}, content=gzip.compress(buf.getvalue()))
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == ["skipped 1 device node (dev/null): the runtime provides /dev"]
    assert "seed/base:1" in backend.images


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


# -- the registry's images and their engine copies, with the registry off --------------------------


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"refs": []}, "image", "name at least one image"),
        ({"refs": ["a/b:1"], "registry": False, "engine": False}, "image", "leave nothing to remove"),
        ({"refs": ["a/b"]}, "image", "is a repository: add --all"),
        ({"refs": "a/b:1"}, "refs", ""),
        ({"refs": ["a/b:1"], "every": True}, "every", ""),
    ],
)
def test_bad_removals_name_the_field(api: TestClient, body: dict[str, object], field: str, text: str) -> None:
    r = api.post("/api/v1/images/remove", json=body)
    assert r.status_code == 400 and r.json()["field"] == field and text in r.json()["error"], r.text


def test_without_the_registry_rm_removes_the_engine_copy(api: TestClient, backend: FakeBackend) -> None:
    backend.add_image("mine/web:1")
    r = api.delete("/api/v1/images/mine/web:1")
    assert r.status_code == 200, r.text
    assert r.json()["registry"] == [] and r.json()["registry_enabled"] is False
    assert [e["ref"] for e in r.json()["engine"]] == ["mine/web:1"] and "mine/web:1" not in backend.images
    missing = api.delete("/api/v1/images/mine/web:1")
    assert missing.status_code == 404 and missing.json()["field"] == "image"
    listing = api.get("/api/v1/images")
    assert listing.status_code == 501 and listing.json()["field"] == "registry"
