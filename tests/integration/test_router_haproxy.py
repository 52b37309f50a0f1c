"""The HAProxy router (setting ``router: haproxy``) against a real HAProxy 2.6 and the Caddy in front of
it for TLS: routing by Host, 404/503 answers, upstream changes through the runtime API under a kept-alive
connection, retries when an instance stops, reloads under a request loop, HTTPS passed through to Caddy
(its internal CA, a user's own certificate and its redirect), per-app counters; then a whole platform
with it: a rolling deploy under a request loop loses no request and the app's figures count them."""

from __future__ import annotations

import contextlib
import http.client
import secrets
import shutil
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mypaas.router.config import Route
from mypaas.router.haproxy import HAProxyRouter
from mypaas.router.haproxy_config import Files
from mypaas.router.https import Https, UserCert
from mypaas.router.tls_front import CaddyTlsFront
from tests import kit
from tests.certmaker import OwnCA
from tests.integration.test_https import https_get
from tests.integration.test_router_caddy import Backend

pytestmark = pytest.mark.integration  # haproxy and caddy come from scripts/install.sh

OWN_DOMAIN = "www.shop.example"
LOG_LINES = 60  # of each router log, printed when a test fails


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [Backend("one"), Backend("two")]
    try:
        yield started
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture
def own() -> OwnCA:
    return OwnCA.make("HAProxy Slice CA")


@pytest.fixture
def router(own: OwnCA) -> Iterator[HAProxyRouter]:
    folder = Path(tempfile.mkdtemp(prefix="mypaas-hx-"))  # short: unix socket paths stay < 108
    cert, key = own.issue([OWN_DOMAIN])
    files = Files(folder / "router")
    front = CaddyTlsFront(
        files=files,
        http_port=kit.free_port(),
        https=Https(port=kit.free_port(), base_domain="localhost"),
        admin=f"unix/{folder / 'router' / 'caddy-admin.sock'}",
        config_dir=files.folder,
        log_path=folder / "caddy.log",
        user_certs=lambda: [UserCert(OWN_DOMAIN, cert, key)],
    )
    haproxy = HAProxyRouter(
        listen_port=front.listen_port, folder=files.folder, log_path=folder / "haproxy.log", front=front
    )
    try:
        haproxy.ensure_running()
        yield haproxy
    finally:
        haproxy.stop()
        haproxy.close()
        for log in ("haproxy.log", "caddy.log"):  # pytest shows them when a test fails
            with contextlib.suppress(OSError):
                lines = (folder / log).read_text().splitlines()
                print(f"--- last {LOG_LINES} lines of {log}", *lines[-LOG_LINES:], sep="\n")
        with contextlib.suppress(OSError):
            print("--- haproxy.cfg", (files.folder / "haproxy.cfg").read_text(), sep="\n")
        shutil.rmtree(folder, ignore_errors=True)


def get(
    router: HAProxyRouter, host: str, path: str = "/", conn: http.client.HTTPConnection | None = None
) -> tuple[int, str]:
    client = conn or http.client.HTTPConnection("127.0.0.1", router.listen_port, timeout=5)
    try:
        client.request("GET", path, headers={"Host": host})
        response = client.getresponse()
        return response.status, response.read().decode()
    finally:
        if conn is None:
            client.close()


def shop(*backends: Backend) -> Route:
    return Route(
        app="shop", hosts=("shop.localhost", OWN_DOMAIN), upstreams=tuple(b.address for b in backends)
    )


def worker(router: HAProxyRouter) -> int | None:
    return router._worker_pid()


def test_routes_runtime_changes_retries_reloads_and_counters(
    router: HAProxyRouter, backends: list[Backend]
) -> None:
    assert router.apply([shop(*backends), Route("blog", ("blog.localhost",), ())]) is True
    assert router.apply([shop(*backends), Route("blog", ("blog.localhost",), ())]) is False

    assert Counter(get(router, "shop.localhost")[1] for _ in range(10)) == {"one": 5, "two": 5}
    assert get(router, f"SHOP.Localhost:{router.listen_port}")[0] == 200
    assert get(router, "nothing.localhost") == (404, "no app at this address\n")
    assert get(router, "blog.localhost") == (503, "no healthy instance of blog\n")

    # an upstream change goes through the runtime API: no reload, the kept-alive connection stays
    kept = http.client.HTTPConnection("127.0.0.1", router.listen_port, timeout=5)
    assert get(router, "shop.localhost", conn=kept)[0] == 200
    sock, pid = kept.sock, worker(router)
    assert router.apply([shop(backends[1]), Route("blog", ("blog.localhost",), ())]) is True
    assert [get(router, "shop.localhost", conn=kept) for _ in range(3)] == [(200, "two")] * 3
    assert kept.sock is sock and worker(router) == pid
    kept.close()

    # an instance that stops before the router hears of it: its requests are retried on the other
    router.apply([shop(*backends), Route("blog", ("blog.localhost",), ())])
    backends[1].stop()
    assert [get(router, "shop.localhost") for _ in range(20)] == [(200, "one")] * 20

    counted = router.request_counters()
    assert counted is not None and counted["shop"].requests == 35 and counted["blog"].errors == 1
    # each request's duration is logged into HAProxy's ring (retried ones once), read once
    shop_ms = counted["shop"].durations_ms
    assert len(shop_ms) == 35 and all(ms > 0 for ms in shop_ms) and len(counted["blog"].durations_ms) == 1
    assert get(router, "shop.localhost")[0] == 200
    again = router.request_counters()
    assert again is not None and len(again["shop"].durations_ms) == 1 and again["blog"].durations_ms == ()

    # apps coming and going reload HAProxy: the listening socket is handed over, no request fails
    stop, ok, failed = threading.Event(), [], []

    def loop() -> None:
        while not stop.is_set():
            try:
                status, _ = get(router, "shop.localhost")
                (ok if status == 200 else failed).append(status)
            except OSError as exc:
                failed.append(repr(exc))

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for i in range(8):
            extra = [Route(f"app{i}", (f"app{i}.localhost",), (backends[0].address,))]
            assert router.apply([shop(backends[0]), *extra]) is True
            kit.wait_until(lambda n=i: get(router, f"app{n}.localhost")[0] == 200, timeout=5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failed == [] and len(ok) > 20


def test_https_is_passed_through_to_caddy_and_trusted_hosts_redirect(
    router: HAProxyRouter, backends: list[Backend], own: OwnCA
) -> None:
    assert router.front is not None
    router.apply([shop(backends[0])])
    root = router.front.storage_dir / "pki" / "authorities" / "local" / "root.crt"
    https_port = router.front.tls.port

    def internal() -> httpx.Response | None:
        with contextlib.suppress(httpx.HTTPError, ssl.SSLError, OSError):
            answer = https_get(https_port, "shop.localhost", root.read_text())
            return answer if answer.status_code == 200 else None
        return None

    assert kit.wait_until(internal, timeout=60).text == "one"  # the internal CA issues on first use
    assert https_get(https_port, OWN_DOMAIN, own.pem).text == "one"  # the user's own certificate
    assert get(router, "shop.localhost") == (200, "one")  # the base domain's hosts: HTTP too

    plain = httpx.get(
        f"http://127.0.0.1:{router.listen_port}/a?b=1", headers={"Host": OWN_DOMAIN}, trust_env=False
    )
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://{OWN_DOMAIN}:{https_port}/a?b=1"
    # HTTPS requests are routed, counted and timed by HAProxy too
    counted = router.request_counters()
    assert counted is not None and counted["shop"].requests >= 3
    assert len(counted["shop"].durations_ms) == counted["shop"].requests


def test_a_rolling_deploy_under_load_loses_no_request_and_is_counted(images: dict[str, str]) -> None:
    with kit.running_platform(router="haproxy") as p:
        app = f"hx-{secrets.token_hex(3)}"
        p.cli("deploy", app, "--image", images["v1"], check=True)
        p.cli("scale", app, "web=2", check=True)
        p.wait_ready(app, 2)
        p.wait_for(app, body="version one")
        stop, bodies, failed = threading.Event(), Counter[str](), []

        def loop() -> None:
            while not stop.is_set():
                status, body = p.get(app, timeout=5)
                if status == 200:
                    bodies[body.strip()] += 1
                else:
                    failed.append(f"{status} {body[:80]}")

        thread = threading.Thread(target=loop)
        thread.start()
        try:
            p.cli("deploy", app, "--image", images["v2"], check=True)
            kit.wait_until(lambda: bodies["version two"] > 20, timeout=30)
        finally:
            stop.set()
            thread.join()
        assert failed == [] and bodies["version one"] > 0, (failed, bodies)

        def counted() -> int:
            points = p.cli("metrics", app, "--since", "1h", "--json", check=True).json()["requests"]
            return sum(x["requests"] for x in points)

        # reloads (the deploy's new app) lose what the old worker counted since the last read, not more
        kit.wait_until(lambda: counted() >= bodies["version two"], timeout=20)
        assert f'mypaas_app_requests_total{{app="{app}"}}' in p.raw("GET", "/metrics").text
