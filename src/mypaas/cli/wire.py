"""The CLI's plain JSON requests over the standard library's HTTP client: importing httpx and making its
client cost a command ~45 ms of CPU here (~2/5 of a `mypaas deploy --image`), more than the request.
Uploads, streams, a test's mock transport and the system's CA bundle stay with httpx (cli/client.py)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit


class WireError(Exception):
    """The request did not get an answer; ``kind``: "connect", "timeout", "certificate" or "other"."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


class Reply:
    """An answer, with the parts of httpx's Response the client reads."""

    def __init__(self, method: str, path: str, status_code: int, content: bytes) -> None:
        self.method, self.path, self.status_code, self.content = method, path, status_code, content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def query_value(value: Any) -> str:
    """A query parameter's value as httpx writes it: true/false, "" for None, else str()."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def query(params: dict[str, Any]) -> str:
    """``params`` as a query string, a list as the key repeated (as httpx does)."""
    pairs = [
        (key, query_value(item))
        for key, value in params.items()
        for item in (value if isinstance(value, list | tuple) else [value])
    ]
    return urlencode(pairs)


class Wire:
    """One keep-alive connection to the API at ``url`` (http://, or https:// checked with ``tls``)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float, tls: ssl.SSLContext) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._base = parts.path.rstrip("/")
        self._headers = {**headers, "Accept": "*/*", "Accept-Encoding": "identity"}
        self._timeout = timeout
        self._tls = tls
        self._conn: http.client.HTTPConnection | None = None

    @staticmethod
    def serves(url: str) -> bool:
        """Whether ``url`` is one this client takes (else httpx says what is wrong with it)."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a port that is no number
        except ValueError:
            return False
        plain = not parts.query and parts.username is None  # httpx sends user:password@ as basic auth
        return parts.scheme in ("http", "https") and bool(parts.hostname) and plain

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        content: Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; ``content`` is a body sent as it is read (with the Content-Length of ``headers``
        if there is one, else chunked). ``timeout`` bounds each read and write; a connection is made
        within the client's own timeout whatever it is."""
        target = self._base + path + (f"?{query(params)}" if params else "")
        sent = {**self._headers, **(headers or {})}
        body: bytes | Iterable[bytes] | None = None
        if content is not None:
            body = content
        elif json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
            sent["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            sent["Content-Length"] = "0"
        conn = self._connection(timeout)
        if conn.sock is None:
            wait = conn.timeout
            conn.timeout = min(self._timeout, wait) if isinstance(wait, int | float) else self._timeout
            try:
                conn.connect()
            except OSError as exc:
                self.close()
                raise _failure(exc, connecting=True) from exc
            if conn.sock is not None:
                conn.sock.settimeout(wait)
        chunked = content is not None and "Content-Length" not in sent
        try:
            conn.request(method, target, body=body, headers=sent, encode_chunked=chunked)
            answer = conn.getresponse()
            got = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise _failure(exc) from exc
        if answer.will_close:
            self.close()
        return Reply(method, path, answer.status, got)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        wait = self._timeout if timeout is None else timeout
        if self._conn is not None and self._conn.sock is not None and _readable(self._conn.sock):
            self.close()  # the server closed it while idle (or sent what nobody asked): a new one
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=wait, context=self._tls
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=wait)
        self._conn.timeout = wait
        if self._conn.sock is not None:
            self._conn.sock.settimeout(wait)
        return self._conn


def quiet_httpx() -> None:
    """Before httpx is imported (when a call needs it: an upload, a stream, a test's mock transport)."""
    if "httpx" not in sys.modules:
        # `import httpx` also imports httpx's own command line (click, rich, pygments: ~30 ms) unless
        # that import fails, a case httpx handles. The CLI never uses it; nor the brotli and zstd
        # decoders httpx looks for (the API never compresses so): without them httpx does not offer
        # those encodings. Where one is imported already, it stays.
        for unused in ("httpx._main", "brotli", "brotlicffi", "zstandard"):
            sys.modules.setdefault(unused, None)  # type: ignore[arg-type]


def failure_kind(exc: Exception) -> str:
    """An httpx error that got no answer, as a WireError's kind."""
    quiet_httpx()
    import httpx

    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "certificate"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "other"


def _readable(sock: socket.socket) -> bool:
    """An idle keep-alive socket with something to read: the server closed it (as httpcore checks)."""
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


def _failure(exc: Exception, *, connecting: bool = False) -> WireError:
    """What went wrong, as the client words it (cli/client.py ``_transport_error``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return WireError("certificate", f"CERTIFICATE_VERIFY_FAILED: {exc}")
    if connecting:
        return WireError("connect", str(exc))
    if isinstance(exc, TimeoutError):
        return WireError("timeout", str(exc) or "timed out")
    return WireError("other", str(exc) or type(exc).__name__)
