"""The REST API client of the CLI: one method per endpoint; API and connection errors become MyPaas errors."""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

from mypaas import __version__
from mypaas.cli import credentials
from mypaas.cli.cert_calls import CertCalls
from mypaas.cli.driver_calls import DriverCalls
from mypaas.cli.git_calls import GitCalls
from mypaas.cli.host_calls import HostCalls
from mypaas.cli.identity_calls import IdentityCalls
from mypaas.cli.image_calls import ImageCalls
from mypaas.cli.limits import NO_TOKEN, POLL_WAIT_S, TIMEOUT_S, UPLOAD_TIMEOUT_S, WAIT_TIMEOUT_S
from mypaas.cli.monitor_calls import MonitorCalls
from mypaas.cli.preview_calls import PreviewCalls
from mypaas.cli.release_calls import ReleaseCalls
from mypaas.cli.wire import Reply, Wire, WireError, failure_kind, quiet_httpx
from mypaas.errors import BackendError, InvalidSpec, MyPaasError, Unauthorized, error_for_status
from mypaas.states import OperationStatus

if TYPE_CHECKING:
    import httpx

    from mypaas.clientconf import ClientConf
    from mypaas.settings import Settings


class ApiUnreachable(BackendError):
    """Nothing answers at the API's address (the manager is down, or the URL is wrong)."""


@functools.cache
def settings() -> Settings:
    """The platform settings (env and settings.yml), loaded once and only when needed (it costs ~0.1 s)."""
    import yaml
    from pydantic import ValidationError

    from mypaas.settings import Settings

    where = "(MYPAAS_* variables, $MYPAAS_HOME/settings.yml)"
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        raise InvalidSpec(f"invalid MyPaas setting {name}: {first['msg']} {where}", field=name) from exc
    except (ValueError, OSError, yaml.YAMLError) as exc:
        text = " ".join(str(exc).split())
        raise InvalidSpec(f"cannot read the MyPaas settings {where}: {text}", field="settings") from exc


def client_conf() -> ClientConf:
    """Where the API is and where its token lives, without loading the full settings."""
    from mypaas.clientconf import client_conf as read

    try:
        return read()
    except (ValueError, OSError) as exc:
        text = " ".join(str(exc).split())
        raise InvalidSpec(f"cannot read the MyPaas settings: {text}", field="settings") from exc


def read_token() -> str | None:
    """MYPAAS_TOKEN, else the token `mypaas login` stored, else the admin token file written by `mypaas
    up`; None if none is readable."""
    token = os.environ.get("MYPAAS_TOKEN", "").strip()
    if token:
        return token
    login = credentials.stored()
    if login is not None:
        return login.token
    try:
        return client_conf().token_path.read_text().strip() or None
    except OSError:
        return None


def api_url() -> str:
    """MYPAAS_URL, else the URL of `mypaas login`'s credentials (when its token is the one used), else
    this machine's API."""
    url = os.environ.get("MYPAAS_URL", "").strip()
    if url:
        return url
    login = None if os.environ.get("MYPAAS_TOKEN", "").strip() else credentials.stored()
    return login.url if login is not None else client_conf().api_url


def connect() -> ApiClient:
    """The client the commands use (tests replace this function to inject a mock transport)."""
    return ApiClient()


def _tls_for(url: str, ca: str | None) -> ssl.SSLContext | bool:
    """Verify TLS against the CA pinned at login (cli/pinning.py); plain http:// loads no CA bundle."""
    from mypaas.cli.pinning import verify_for

    local = None if url.lower().startswith("http://") else client_conf().ca_path
    return verify_for(url, ca, local)


def _seg(value: str) -> str:
    return quote(value, safe="")


class ApiClient(
    IdentityCalls,
    CertCalls,
    DriverCalls,
    ImageCalls,
    MonitorCalls,
    HostCalls,
    PreviewCalls,
    GitCalls,
    ReleaseCalls,
):
    """A synchronous client of ``/api/v1``; every method raises a ``MyPaasError`` on failure."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        ca: str | None = None,
    ) -> None:
        self.url = (url or api_url()).rstrip("/")
        self.token = token if token is not None else read_token()
        self._headers = {"User-Agent": f"mypaas-cli/{__version__}"}
        if self.token:
            self._headers["Authorization"] = f"Bearer {self.token}"
        self._transport = transport
        self._verify: ssl.SSLContext | bool | None = None
        self._wire: Wire | None = None
        if transport is None and Wire.serves(self.url):
            self._verify = _tls_for(self.url, ca)
            if isinstance(self._verify, ssl.SSLContext):  # the system's CAs: httpx's bundle, as before
                self._wire = Wire(self.url, self._headers, TIMEOUT_S, self._verify)
        if self._wire is None:
            self._verify = _tls_for(self.url, ca) if self._verify is None else self._verify
            self._http  # noqa: B018 - made now: a URL it refuses is said at once

    @functools.cached_property
    def _http(self) -> httpx.Client:
        """The httpx client of uploads, streams and a test's transport (made on first use)."""
        quiet_httpx()
        import httpx

        try:
            return httpx.Client(
                base_url=self.url,
                headers=self._headers,
                timeout=TIMEOUT_S,
                trust_env=False,
                transport=self._transport,
                verify=_tls_for(self.url, None) if self._verify is None else self._verify,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise InvalidSpec(f"invalid API URL {self.url!r}: {exc}", field="MYPAAS_URL") from exc

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
        if "_http" in self.__dict__:
            self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response | Reply:
        timeout = kwargs.get("timeout")
        plain = kwargs.keys() <= {"json", "params", "timeout", "content", "headers"}
        plain = plain and isinstance(timeout, int | float | None)
        if self._wire is not None and plain:  # a JSON call or a raw upload: the standard library's client
            try:
                reply = self._wire.request(
                    method,
                    path,
                    json_body=kwargs.get("json"),
                    params=kwargs.get("params"),
                    timeout=timeout,
                    content=kwargs.get("content"),
                    headers=kwargs.get("headers"),
                )
            except WireError as exc:
                raise self._failed(exc.kind, str(exc)) from exc
            self._check(reply)
            return reply
        quiet_httpx()
        import httpx

        if "content" in kwargs and isinstance(timeout, int | float):  # an upload: connect within the usual
            kwargs["timeout"] = httpx.Timeout(TIMEOUT_S, read=timeout, write=timeout)
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        self._check(response)
        return response

    def _transport_error(self, exc: httpx.HTTPError) -> MyPaasError:
        quiet_httpx()
        import httpx

        if isinstance(exc, httpx.UnsupportedProtocol):
            return InvalidSpec(f"invalid API URL {self.url}: use http:// or https://", field="MYPAAS_URL")
        return self._failed(failure_kind(exc), str(exc))

    def _failed(self, kind: str, text: str) -> MyPaasError:
        """A request that got no answer (``kind`` as cli/wire.py's WireError says) as one clear error."""
        if kind == "certificate":
            from mypaas.cli.pinning import refused

            return BackendError(refused(self.url))
        if kind == "connect":
            return ApiUnreachable(
                f"cannot reach the MyPaas API at {self.url}: is the platform up? (`mypaas up`)"
            )
        if kind == "timeout":
            return BackendError(f"the MyPaas API at {self.url} did not answer in time")
        return BackendError(f"talking to the MyPaas API at {self.url} failed: {text}")

    def _check(self, response: httpx.Response | Reply) -> None:
        if response.is_success:
            return
        status = response.status_code
        message, field = self._error_of(response)
        if status == 401 and not self.token and field == "authorization":
            message = NO_TOKEN
        elif status == 401 and credentials.logged_in_with(self.token):
            message += " (log in again: mypaas login)"
        raise error_for_status(status)(message, field=field)

    @staticmethod
    def _error_of(response: httpx.Response | Reply) -> tuple[str, str | None]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            field = body.get("field")
            return body["error"], field if isinstance(field, str) else None
        text = " ".join(response.text.split())[:200]
        if isinstance(response, Reply):
            where = f"{response.method} {response.path}"
        else:
            where = f"{response.request.method} {response.request.url.path}"
        return f"HTTP {response.status_code} from {where}: {text}", None

    def _dict(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._request(method, path, **kwargs).json())

    def _list(self, path: str, **kwargs: Any) -> list[Any]:
        return cast(list[Any], self._request("GET", path, **kwargs).json())

    # -- platform -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/health")

    def status(self) -> dict[str, Any]:
        return self._dict("GET", "/api/v1/status")

    # -- apps -----------------------------------------------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        return self._list("/api/v1/apps")

    def app(self, name: str) -> dict[str, Any]:
        return self._dict("GET", f"/api/v1/apps/{_seg(name)}")

    def deploy(
        self,
        name: str,
        body: dict[str, Any],
        contexts: dict[str, bytes] | None = None,
        *,
        dry_run: bool = False,
        team: str | None = None,
    ) -> dict[str, Any]:
        """Start a deploy: JSON alone, or multipart with one gzipped tar part per build context. A dry run
        answers the spec, the warnings and the changes instead, making nothing. ``team``: the team a new
        app goes to (default: the caller's only team)."""
        path = f"/api/v1/apps/{_seg(name)}/deploys"
        params = {k: v for k, v in (("dry_run", "true" if dry_run else None), ("team", team)) if v}
        if params:
            path += "?" + urlencode(params)
        if not contexts:
            return self._dict("POST", path, json=body)
        if not self.token:
            raise Unauthorized(NO_TOKEN)  # fail before uploading the contexts
        import json

        files = {key: (f"{key}.tar.gz", data, "application/gzip") for key, data in contexts.items()}
        return self._dict(
            "POST", path, data={"request": json.dumps(body)}, files=files, timeout=UPLOAD_TIMEOUT_S
        )

    def instances(self, name: str) -> list[dict[str, Any]]:
        return self._list(f"/api/v1/apps/{_seg(name)}/instances")

    def logs(
        self,
        name: str,
        service: str | None = None,
        *,
        tail: int | None = None,
        follow: bool = False,
        probes: bool = False,
    ) -> Iterator[str]:
        """The app's log lines as they come; with ``follow`` the stream stays open until interrupted.
        Lines the health probes left are left out unless ``probes``."""
        params: dict[str, Any] = {"follow": follow, "probes": probes}
        if service:
            params["service"] = service
        if tail is not None:
            params["tail"] = tail
        quiet_httpx()
        import httpx

        timeout = httpx.Timeout(TIMEOUT_S, read=None if follow else TIMEOUT_S)
        path = f"/api/v1/apps/{_seg(name)}/logs"
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def backup(self, body: dict[str, Any]) -> Iterator[bytes]:
        """The platform's backup archive in pieces, as the manager makes it."""
        quiet_httpx()
        import httpx

        timeout = httpx.Timeout(TIMEOUT_S, read=600)
        try:
            with self._http.stream("POST", "/api/v1/backup", json=body, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    self._check(response)
                yield from response.iter_bytes(1 << 20)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def backup_schedule(self, body: dict[str, Any] | None = None, *, off: bool = False) -> dict[str, Any]:
        """The backup schedule; set to ``body``, or turned ``off``."""
        method = "DELETE" if off else "PUT" if body is not None else "GET"
        return self._dict(method, "/api/v1/backup/schedule", json=body)

    def scale(self, name: str, replicas: dict[str, int]) -> dict[str, Any]:
        return self._dict("PUT", f"/api/v1/apps/{_seg(name)}/scale", json={"replicas": replicas})

    def action(self, name: str, action: str) -> dict[str, Any]:
        """``stop``, ``start`` or ``restart`` the app."""
        return self._dict("POST", f"/api/v1/apps/{_seg(name)}/{_seg(action)}")

    def remove(
        self, name: str, *, volumes: bool = False, force: bool = False, keep_images: bool = False
    ) -> dict[str, Any]:
        flags = (("volumes", volumes), ("force", force), ("keep_images", keep_images))
        params = {k: "true" for k, on in flags if on}
        return self._dict("DELETE", f"/api/v1/apps/{_seg(name)}", params=params)

    def volumes(self, app: str | None = None) -> list[dict[str, Any]]:
        return self._list("/api/v1/volumes", params={"app": app} if app else {})

    def remove_volume(self, name: str) -> dict[str, Any]:
        return self._dict("DELETE", f"/api/v1/volumes/{_seg(name)}")

    # -- operations -----------------------------------------------------------------------------

    def operation(self, op_id: str, *, wait: float = 0, log_offset: int = 0) -> dict[str, Any]:
        params = {"wait": wait, "log_offset": log_offset}
        return self._dict("GET", f"/api/v1/operations/{_seg(op_id)}", params=params, timeout=TIMEOUT_S + wait)

    def wait_operation(
        self,
        op_id: str,
        on_log: Callable[[str], None],
        timeout: float = WAIT_TIMEOUT_S,
        *,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = POLL_WAIT_S,
    ) -> dict[str, Any]:
        """Long-poll the operation until it succeeded or failed, passing new log text to ``on_log``.

        ``on_poll`` sees the operation after each poll that left it unfinished; a poll returns early
        when the log grows, else after ``poll_s`` seconds. Returns the finished operation.
        """
        deadline = time.monotonic() + timeout
        offset = 0
        while True:
            wait = round(max(0.0, min(poll_s, deadline - time.monotonic())), 1)
            op = self.operation(op_id, wait=wait, log_offset=offset)
            if op.get("log"):
                on_log(op["log"])
            offset = max(offset, int(op.get("log_offset") or 0))
            if OperationStatus(op.get("status", "pending")).finished:
                return op
            if time.monotonic() >= deadline:
                raise BackendError(
                    f"operation {op_id} is still {op.get('status')} after {timeout:.0f}s", field="operation"
                )
            if on_poll is not None:
                on_poll(op)
