"""The CLI's plain JSON calls over the standard library (cli/wire.py), against a real loopback server:
what is sent, keep-alive, a connection the server closed while idle, and each failure's one line."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mypaas.cli.client import ApiClient, ApiUnreachable
from mypaas.cli.wire import Wire, WireError, query
from mypaas.errors import BackendError, NotFound


class Server:
    """A loopback HTTP/1.1 server that records what it got and answers what the test set."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.answer: tuple[int, str, bytes] = (200, "application/json", b'{"ok": true}')
        self.close_after = False
        self.delay = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding") == "chunked":
                    while size := int(self.rfile.readline().strip(), 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                outer.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "peer": self.client_address[1],
                    }
                )
                if outer.delay.is_set():
                    threading.Event().wait(1.0)
                status, ctype, content = outer.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                if outer.close_after:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def test_a_json_call_sends_what_httpx_sent_and_keeps_the_connection(server: Server) -> None:
    client = ApiClient(url=server.url + "/", token="tok")
    try:
        assert client._wire is not None  # a plain http:// URL: the standard library's client
        assert client._dict("POST", "/api/v1/x", json={"a": "é"}, params={"wait": 1.5, "on": True}) == {
            "ok": True
        }
        assert client._dict("GET", "/api/v1/y", params={"app": ["a", "b"], "none": None}) == {"ok": True}
    finally:
        client.close()
    first, second = server.seen
    assert first["method"] == "POST" and first["path"] == "/api/v1/x?wait=1.5&on=true"
    assert json.loads(first["body"]) == {"a": "é"}
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["Authorization"] == "Bearer tok"
    assert first["headers"]["User-Agent"].startswith("mypaas-cli/")
    assert second["path"] == "/api/v1/y?app=a&app=b&none="
    assert first["peer"] == second["peer"]  # one keep-alive connection


def test_the_query_is_written_as_httpx_writes_it() -> None:
    params = {"wait": 10.0, "log_offset": 0, "flag": False, "on": True, "app": ["x y", "z/1"], "n": None}
    assert query(params) == str(httpx.QueryParams(params))


def test_a_connection_the_server_closed_while_idle_is_replaced(server: Server) -> None:
    server.close_after = True
    wire = Wire(server.url, {}, 5.0, ssl_context())
    try:
        assert wire.request("GET", "/a").json() == {"ok": True}
        server.close_after = False
        idle = wire._conn.sock if wire._conn is not None else None
        assert idle is not None
        select.select([idle], [], [], 10)  # until the server's close has reached this side
        assert wire.request("GET", "/b").status_code == 200
    finally:
        wire.close()
    assert server.seen[0]["peer"] != server.seen[1]["peer"]


def test_an_error_answer_says_the_api_s_own_words_or_the_status(server: Server) -> None:
    client = ApiClient(url=server.url, token="tok")
    try:
        server.answer = (404, "application/json", b'{"error": "app x not found", "field": "app"}')
        with pytest.raises(NotFound, match="app x not found"):
            client.app("x")
        server.answer = (502, "text/html", b"<html> bad\n gateway </html>")
        with pytest.raises(BackendError, match=r"HTTP 502 from GET /api/v1/apps: <html> bad gateway </html>"):
            client.apps()
    finally:
        client.close()


def test_no_answer_is_one_clear_line() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    client = ApiClient(url=f"http://127.0.0.1:{closed}", token="tok")
    with pytest.raises(ApiUnreachable, match=r"cannot reach the MyPaas API at http://127\.0\.0\.1:"):
        client.apps()


def test_an_answer_too_slow_is_a_timeout(server: Server) -> None:
    server.delay.set()
    wire = Wire(server.url, {}, 0.2, ssl_context())
    with pytest.raises(WireError) as caught:
        wire.request("GET", "/slow")
    assert caught.value.kind == "timeout"


def test_a_raw_upload_is_sent_as_it_is_read_sized_or_chunked(server: Server) -> None:
    """`mypaas image import`'s body: the archive's pieces as the generator gives them, with its size when
    known (else chunked), over the same connection as the JSON calls, and no httpx loaded for it."""
    read: list[int] = []

    def pieces() -> Iterator[bytes]:
        for n in range(3):
            read.append(n)
            yield bytes([65 + n]) * 70_000

    client = ApiClient(url=server.url, token="tok")
    try:
        assert client.import_image("web:1", pieces(), ["CMD x"], size=210_000) == {"ok": True}
        assert client.import_image("web:2", pieces()) == {"ok": True}
        assert "_http" not in client.__dict__
    finally:
        client.close()
    sized, chunked = server.seen
    assert sized["path"] == "/api/v1/images/import?ref=web%3A1&change=CMD+x"
    assert sized["headers"]["Content-Length"] == "210000" and "Transfer-Encoding" not in sized["headers"]
    assert sized["body"] == b"A" * 70_000 + b"B" * 70_000 + b"C" * 70_000 == chunked["body"]
    assert chunked["headers"]["Transfer-Encoding"] == "chunked"
    assert sized["headers"]["Content-Type"] == "application/octet-stream"
    assert read == [0, 1, 2, 0, 1, 2] and sized["peer"] == chunked["peer"]


def test_uploads_streams_and_odd_urls_stay_with_httpx(server: Server) -> None:
    assert not Wire.serves("ftp://x") and not Wire.serves("http://127.0.0.1:abc")
    assert not Wire.serves("http://u:p@127.0.0.1:1") and Wire.serves("http://[::1]:8470/base")
    client = ApiClient(url=server.url, token="tok")
    try:
        assert "_http" not in client.__dict__
        client._dict("POST", "/up", files={"a": ("a.tar.gz", b"x", "application/gzip")})
        assert "_http" in client.__dict__  # made for the upload
    finally:
        client.close()
    assert server.seen[0]["headers"]["Content-Type"].startswith("multipart/form-data")


def ssl_context() -> Any:
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
