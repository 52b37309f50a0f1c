"""Request bodies at the door (api/limits.py): the token is checked before a byte of the body is read, and
each kind of route has a size cap, refused on Content-Length at once and while a chunked body streams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform

MiB = 1024 * 1024


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


class Upload:
    """An ASGI client sending ``size`` bytes in 1 MiB messages, counting what the app read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.read = 0
        self.status = 0
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        chunk = min(self.left, MiB)
        self.left -= chunk
        self.read += chunk
        return {"type": "http.request", "body": b"x" * chunk, "more_body": self.left > 0}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def post(platform: Platform, path: str, upload: Upload, headers: dict[str, str]) -> dict[str, Any]:
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
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    app = create_app(platform)
    anyio.run(app, scope, upload.receive, upload.send)
    answer: dict[str, Any] = json.loads(upload.body)
    return answer


HUNDRED_MB = str(100 * MiB)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/apps/shop/deploys",
        "/api/v1/apps/shop/config",
        "/api/v1/images/import?ref=x:1",
        "/api/v1/hosts",
    ],
)
def test_an_anonymous_100mb_body_gets_401_before_a_byte_is_read(platform: Platform, path: str) -> None:
    upload = Upload(100 * MiB)
    answer = post(platform, path, upload, {"Content-Type": "application/json", "Content-Length": HUNDRED_MB})
    assert upload.status == 401
    assert answer["field"] == "authorization"
    assert upload.read == 0


def test_a_revoked_or_unknown_token_is_refused_before_the_body(platform: Platform) -> None:
    upload = Upload(100 * MiB)
    headers = {"Authorization": "Bearer not-a-token", "Content-Type": "multipart/form-data; boundary=x"}
    answer = post(platform, "/api/v1/apps/shop/deploys", upload, headers)
    assert (upload.status, answer["error"], upload.read) == (401, "invalid token", 0)


def test_a_declared_length_past_the_cap_gets_413_before_a_byte_is_read(platform: Platform) -> None:
    upload = Upload(100 * MiB)
    headers = {"Authorization": f"Bearer {platform.admin_token}", "Content-Length": HUNDRED_MB}
    answer = post(
        platform, "/api/v1/apps/shop/deploys", upload, {**headers, "Content-Type": "application/json"}
    )
    assert (upload.status, upload.read) == (413, 0)
    assert answer == {
        "error": "the request body is larger than this route takes: at most 64 MiB (setting body_max_deploy)",
        "field": "body",
    }


def chunks(size: int) -> Iterator[bytes]:
    for _ in range(size // MiB):
        yield b" " * MiB


def test_a_chunked_body_past_the_cap_gets_413_as_it_streams(api: TestClient) -> None:
    r = api.patch(
        "/api/v1/apps/shop/config", content=chunks(3 * MiB), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"].endswith("at most 1 MiB (setting body_max_json)")


@pytest.mark.parametrize("settings", [{"body_max_upload": 2 * MiB}], indirect=True)
def test_a_chunked_upload_past_its_cap_gets_413(api: TestClient) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    r = api.post("/api/v1/apps/shop/deploys", content=chunks(4 * MiB), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json() == {
        "error": "the request body is larger than this route takes: at most 2 MiB (setting body_max_upload)",
        "field": "body",
    }


def test_bodies_within_their_caps_are_unaffected(api: TestClient) -> None:
    # under the compose file limit (1 MiB), over the JSON cap once escaped in JSON: the deploy cap holds
    compose = "services:\n  web:\n    image: web:1\n" + "# padding\n" * 100_000
    r = api.post("/api/v1/apps/shop/deploys", json={"compose": compose, "description": "x"})
    assert r.status_code == 202, r.text
    r = api.patch("/api/v1/apps/shop/config", json={"set": {"A": "1"}})
    assert r.status_code == 202, r.text
    assert api.get("/api/v1/health", headers={"Authorization": ""}).status_code == 200


def test_a_deploy_of_a_thousand_parts_is_refused_past_the_part_limit(api: TestClient) -> None:
    files = [(f"files:f{i}", (f"f{i}.tar.gz", b"x" * 1024, "application/gzip")) for i in range(1000)]
    r = api.post("/api/v1/apps/shop/deploys", data={"request": '{"image": "web:1"}'}, files=files)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "error": "multipart deploy: Too many files. Maximum number of files is 64.",
        "field": "body",
    }
