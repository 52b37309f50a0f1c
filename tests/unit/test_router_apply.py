"""CaddyRouter.apply on every reconcile pass: the config is rendered only when what it is made of changed
(the routes, the hosts with a trusted certificate, the users' own certificates), and pushed only when it
differs from the one pushed; the TLS front (a CaddyRouter subclass) pushes its own config. Caddy's admin
API is played by a small HTTP server on a unix socket."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from mypaas.errors import BackendError
from mypaas.router import caddy, config
from mypaas.router.caddy import CaddyRouter
from mypaas.router.config import Route
from mypaas.router.haproxy_config import Files
from mypaas.router.https import Https, UserCert
from mypaas.router.tls_front import CaddyTlsFront

SHOP = Route("shop", ("shop.localhost", "www.shop.example.com"), ("10.0.0.2:80",))
BLOG = Route("blog", ("blog.localhost",), ())


class AdminApi(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Caddy's admin API as far as ``apply`` uses it: ``POST /load`` (recorded; ``fail`` answers 400)."""

    daemon_threads = True

    def __init__(self, path: Path) -> None:
        self.loads: list[dict[str, Any]] = []
        self.fail = False
        self.slow = 0.0  # seconds each load takes
        super().__init__(str(path), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: AdminApi

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.slow)
        if self.server.fail:
            self._answer(400, b'{"error": "loading config: bad"}')
            return
        self.server.loads.append(json.loads(body))
        self._answer(200, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[AdminApi]:
    server = AdminApi(tmp_path / "admin.sock")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many routes each render of a config was given."""
    counted: list[int] = []
    real = config.render

    def counting(routes: Any, **kw: Any) -> dict[str, Any]:
        counted.append(len(routes))
        return real(routes, **kw)

    monkeypatch.setattr(caddy, "render", counting)
    return counted


def router(tmp_path: Path, certs: list[UserCert]) -> CaddyRouter:
    return CaddyRouter(
        admin=f"unix/{tmp_path}/admin.sock",
        listen_port=8080,
        config_dir=tmp_path / "router",
        log_path=tmp_path / "caddy.log",
        https=Https(port=8443, base_domain="localhost"),
        user_certs=lambda: list(certs),
    )


def test_an_idle_pass_renders_nothing(tmp_path: Path, admin: AdminApi, renders: list[int]) -> None:
    r = router(tmp_path, [])
    assert r.apply([SHOP, BLOG]) is True
    assert r.apply([Route("shop", SHOP.hosts, SHOP.upstreams), BLOG]) is False  # equal routes, new objects

    assert renders == [2]
    assert len(admin.loads) == 1
    r.close()


def test_new_routes_render_and_push_and_the_same_config_in_another_order_is_not_pushed(
    tmp_path: Path, admin: AdminApi, renders: list[int]
) -> None:
    r = router(tmp_path, [])
    r.apply([SHOP])
    assert r.apply([SHOP, BLOG]) is True
    assert r.apply([BLOG, SHOP]) is False  # rendered (other inputs), the same config: not pushed
    assert r.apply([BLOG, SHOP]) is False  # and now known as it is

    assert renders == [1, 2, 2]
    assert [len(load["apps"]["http"]["servers"]["mypaas"]["routes"]) for load in admin.loads] == [2, 3]
    r.close()


def test_a_certificate_found_or_added_is_a_change(
    tmp_path: Path, admin: AdminApi, renders: list[int]
) -> None:
    certs: list[UserCert] = []
    r = router(tmp_path, certs)
    r.apply([SHOP])
    issued = r.storage_dir / "certificates" / "acme-v02" / "www.shop.example.com"
    issued.mkdir(parents=True)
    (issued / "www.shop.example.com.crt").write_text("PEM")

    assert r.apply([SHOP]) is True  # Caddy stored a trusted certificate: HTTP now redirects
    redirect = admin.loads[-1]["apps"]["http"]["servers"]["mypaas"]["routes"][0]
    assert redirect["handle"][0]["status_code"] == 308
    certs.append(UserCert("www.shop.example.com", "CERT", "KEY"))
    assert r.apply([SHOP]) is True  # the user's own certificate is loaded
    assert admin.loads[-1]["apps"]["tls"]["certificates"]["load_pem"][0]["tags"] == ["www.shop.example.com"]
    assert r.apply([SHOP]) is False
    assert renders == [1, 1, 1]
    r.close()


def test_a_refused_push_is_tried_again(tmp_path: Path, admin: AdminApi) -> None:
    r = router(tmp_path, [])
    admin.fail = True
    with pytest.raises(BackendError, match="Caddy rejected the config: loading config: bad"):
        r.apply([SHOP])
    admin.fail = False

    assert r.apply([SHOP]) is True
    assert len(admin.loads) == 1
    r.close()


def test_a_load_may_take_longer_the_more_routes_it_holds(
    tmp_path: Path, admin: AdminApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(caddy, "LOAD_TIMEOUT_S", 0.2)
    monkeypatch.setattr(caddy, "LOAD_TIMEOUT_PER_ROUTE_S", 0.5)
    admin.slow = 0.6  # Caddy issuing the new hosts' certificates
    r = router(tmp_path, [])
    with pytest.raises(BackendError, match="unreachable"):
        r.apply([])  # no route: 0.2 s is all a load may take

    assert r.apply([SHOP, BLOG]) is True  # two routes: 1.2 s
    r.close()


def test_the_tls_front_pushes_its_own_config_not_the_routers(tmp_path: Path, admin: AdminApi) -> None:
    """CaddyTlsFront (HAProxy's TLS terminator) goes through CaddyRouter.apply: what it pushes must be
    render_front's config (Caddy on unix sockets only), never the router's (which takes HAProxy's ports)."""
    files = Files(tmp_path / "router")
    front = CaddyTlsFront(
        files=files,
        http_port=8080,
        https=Https(port=8443, base_domain="localhost"),
        admin=f"unix/{tmp_path}/admin.sock",
        config_dir=files.folder,
        log_path=tmp_path / "caddy.log",
    )

    assert front.apply([SHOP]) is True
    assert front.apply([SHOP]) is False

    servers = admin.loads[-1]["apps"]["http"]["servers"]
    assert set(servers) == {"mypaas-acme", "mypaas-tls"}
    assert {a for s in servers.values() for a in s["listen"]} == {
        f"unix/{files.caddy_http}",
        f"unix/{files.caddy_tls}",
    }
    assert servers == front.render([SHOP])["apps"]["http"]["servers"]
    front.close()
