"""The router against a real Caddy 2.6: routing by Host, round robin, 404/503 answers, retries, adoption."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from mypaas import process
from mypaas.errors import BackendError
from mypaas.router.caddy import MIGRATE_REQ, CaddyRouter, hand_over_queued_connections
from mypaas.router.config import Route
from tests.kit import free_port

pytestmark = pytest.mark.integration  # caddy comes from scripts/install.sh (make test)


class Backend:
    """A tiny HTTP server on a free loopback port that answers every GET with its own name."""

    def __init__(self, name: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.name = name
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()  # from now on, connections are refused
            self.running = False


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [Backend("one"), Backend("two")]
    try:
        yield started
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[CaddyRouter]:
    caddy = CaddyRouter(
        admin=f"127.0.0.1:{free_port()}",
        listen_port=free_port(),
        config_dir=tmp_path / "caddy",
        log_path=tmp_path / "caddy.log",
    )
    try:
        caddy.ensure_running()
        yield caddy
    finally:
        caddy.stop()
        caddy.close()
        if caddy.log_path.exists():  # shown by pytest when a test fails
            print(caddy.log_path.read_text()[-4000:])


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        yield http


def get(client: httpx.Client, router: CaddyRouter, host: str) -> httpx.Response:
    # Python does not resolve *.localhost: connect to loopback and name the app in the Host header.
    return client.get(f"http://127.0.0.1:{router.listen_port}/", headers={"Host": host})


def shop(*backends: Backend) -> Route:
    return Route(
        app="shop",
        hosts=("shop.localhost", "www.shop.example"),
        upstreams=tuple(b.address for b in backends),
    )


def test_round_robin_spreads_requests_over_both_instances(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    assert router.apply([shop(*backends)])

    answers = Counter(get(client, router, "shop.localhost").text for _ in range(10))

    assert answers == {"one": 5, "two": 5}


def test_custom_domain_and_host_case_are_routed(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    router.apply([shop(backends[0])])

    for host in ("www.shop.example", "SHOP.Localhost", f"shop.localhost:{router.listen_port}"):
        response = get(client, router, host)
        assert (response.status_code, response.text) == (200, "one"), host


def test_unknown_host_gets_404_with_a_body(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    router.apply([shop(*backends)])

    response = get(client, router, "nothing.localhost")

    assert response.status_code == 404
    assert response.text.strip() == "no app at this address"


def test_app_without_healthy_instance_gets_503(router: CaddyRouter, client: httpx.Client) -> None:
    router.apply([Route(app="shop", hosts=("shop.localhost",), upstreams=())])

    response = get(client, router, "shop.localhost")

    assert response.status_code == 503
    assert response.text.strip() == "no healthy instance of shop"


def test_a_stopped_app_says_it_is_stopped(router: CaddyRouter, client: httpx.Client) -> None:
    router.apply([Route(app="shop", hosts=("shop.localhost",), upstreams=(), stopped=True)])

    response = get(client, router, "shop.localhost")

    assert response.status_code == 503
    assert response.text.strip() == "app shop is stopped (mypaas start shop)"


def test_requests_still_succeed_when_an_instance_stops(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    router.apply([shop(*backends)])
    assert {get(client, router, "shop.localhost").text for _ in range(4)} == {"one", "two"}

    backends[1].stop()  # as in a rolling deploy, before the router hears of it
    responses = [get(client, router, "shop.localhost") for _ in range(20)]

    assert [(r.status_code, r.text) for r in responses] == [(200, "one")] * 20


def test_route_pushes_under_a_request_loop_reset_no_connection(
    router: CaddyRouter, backends: list[Backend]
) -> None:
    """Each push makes Caddy 2.6 listen on a new SO_REUSEPORT socket and close the old one; the kernel must
    hand the connections queued on the old one over (tcp_migrate_req) rather than reset them."""
    MIGRATE_REQ.write_text("0\n")  # as on a machine where nobody turned it on yet
    router.ensure_running()  # adopts the running Caddy, and turns the switch on
    assert MIGRATE_REQ.read_text().strip() == "1"
    stop = threading.Event()
    ok: list[int] = []
    failed: list[str] = []

    def loop() -> None:
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", router.listen_port, timeout=5)
            try:  # a fresh connection each time, as most clients of a PaaS app open them
                conn.request("GET", "/", headers={"Host": "shop.localhost"})
                response = conn.getresponse()
                response.read()
                ok.append(response.status)
            except OSError as exc:
                failed.append(repr(exc))
            finally:
                conn.close()

    threads = [threading.Thread(target=loop) for _ in range(2)]
    router.apply([shop(*backends)])
    for thread in threads:
        thread.start()
    try:
        for i in range(120):  # without the switch: ~60 resets here (189 in 300 pushes measured)
            router.apply([shop(*(backends if i % 2 else backends[:1]))])
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Without the switch ~60 of these connections are reset. With it, none in local runs, but the kernel's
    # hand-over still has a narrow window: one reset in a few thousand connections was seen once, under a
    # full CI run's load. The bound keeps the test telling the switch's absence apart without flaking.
    assert len(failed) <= 2, failed
    assert len(ok) >= 100 and set(ok) == {200}


def test_hand_over_switch_is_set_once_and_its_absence_is_survived(tmp_path: Path) -> None:
    switch = tmp_path / "tcp_migrate_req"
    switch.write_text("0\n")
    assert hand_over_queued_connections(switch) is True
    assert switch.read_text() == "1\n"
    assert hand_over_queued_connections(switch) is True
    assert hand_over_queued_connections(tmp_path / "missing") is False  # an old kernel: logged, not fatal


def test_apply_pushes_only_when_the_config_changes(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    assert router.apply([shop(*backends)]) is True
    assert router.apply([shop(*reversed(backends))]) is False
    assert router.apply([shop(backends[0])]) is True

    config = router.last_config()
    assert config is not None
    served = client.get(f"http://{router.admin}/config/").json()  # what Caddy really runs
    assert served == config


def test_ensure_running_again_adopts_the_running_caddy(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client, tmp_path: Path
) -> None:
    pid = router.pid_path.read_text()
    router.apply([shop(*backends)])

    router.ensure_running()
    other = CaddyRouter(
        admin=router.admin,
        listen_port=router.listen_port,
        config_dir=tmp_path / "other",
        log_path=tmp_path / "other.log",
    )
    try:
        other.ensure_running()
        assert not (tmp_path / "other" / "caddy.pid").exists()  # nothing was started
        assert router.pid_path.read_text() == pid
        assert get(client, router, "shop.localhost").status_code == 200  # routes survive adoption
        assert router.apply([shop(*backends)]) is True  # an adopted Caddy gets a fresh push
    finally:
        other.close()


def test_taken_listen_port_is_reported_and_caddy_keeps_serving(
    router: CaddyRouter, backends: list[Backend], client: httpx.Client, tmp_path: Path
) -> None:
    router.apply([shop(*backends)])
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clash = CaddyRouter(
            admin=router.admin,
            listen_port=port,
            config_dir=tmp_path / "clash",
            log_path=tmp_path / "clash.log",
        )
        try:
            for _ in range(2):  # a failed push is retried by the next apply, not skipped as already done
                with pytest.raises(
                    BackendError, match=f"router: cannot listen on :{port}: address already in use"
                ):
                    clash.apply([])
            assert clash.last_config() is None
        finally:
            clash.close()

    assert get(client, router, "shop.localhost").status_code == 200  # Caddy rolled back


def test_start_fails_clearly_when_the_listen_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        caddy = CaddyRouter(
            admin=f"127.0.0.1:{free_port()}",
            listen_port=port,
            config_dir=tmp_path / "caddy",
            log_path=tmp_path / "caddy.log",
        )
        try:
            with pytest.raises(BackendError, match="address already in use") as error:
                caddy.ensure_running()
            assert "last lines of" in error.value.message
            assert not caddy.pid_path.exists()
        finally:
            caddy.stop()
            caddy.close()


def test_stop_stops_caddy_and_is_idempotent(router: CaddyRouter, client: httpx.Client) -> None:
    assert router.healthy()

    router.stop()

    assert not router.healthy()
    assert not router.pid_path.exists()
    with pytest.raises(httpx.ConnectError):
        get(client, router, "shop.localhost")
    router.stop()
    with pytest.raises(BackendError, match="unreachable"):
        router.apply([])


def test_stop_falls_back_to_the_pid_file(router: CaddyRouter, tmp_path: Path) -> None:
    pid = int(router.pid_path.read_text())
    # Same state directory, but an admin address where nothing answers: only the pid file can stop Caddy.
    blind = CaddyRouter(
        admin=f"127.0.0.1:{free_port()}",
        listen_port=router.listen_port,
        config_dir=router.config_dir,
        log_path=tmp_path / "blind.log",
    )
    try:
        blind.stop()
    finally:
        blind.close()

    router.stop()  # reaps the child; the admin API no longer answers
    assert not router.healthy()
    assert not Path(f"/proc/{pid}").exists()


def test_caddy_keeps_its_state_under_config_dir(router: CaddyRouter, backends: list[Backend]) -> None:
    router.apply([shop(*backends)])

    assert (router.config_dir / "caddy.json").exists()
    assert (router.config_dir / "caddy" / "autosave.json").exists()


def listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (from /proc: its socket inodes in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def socket_router(tmp_path: Path) -> Iterator[CaddyRouter]:
    config_dir = tmp_path / "caddy"
    caddy = CaddyRouter(
        admin=f"unix/{config_dir / 'caddy-admin.sock'}",
        listen_port=free_port(),
        config_dir=config_dir,
        log_path=tmp_path / "caddy.log",
    )
    try:
        yield caddy
    finally:
        caddy.stop()
        caddy.close()
        if caddy.log_path.exists():
            print(caddy.log_path.read_text()[-4000:])


def test_the_admin_api_listens_on_an_owner_only_unix_socket(
    socket_router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    socket_router.ensure_running()

    assert socket_router.apply([shop(*backends)]) is True  # routes still reload through the socket
    assert get(client, socket_router, "shop.localhost").status_code == 200
    sock = socket_router.config_dir / "caddy-admin.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    pid = int(socket_router.pid_path.read_text())
    assert listening_tcp_ports(pid) == {socket_router.listen_port}  # no admin port on the network
    assert socket_router.apply([shop(backends[0])]) is True
    assert get(client, socket_router, "www.shop.example").text == "one"


def test_an_old_caddy_with_a_tcp_admin_api_is_replaced(
    socket_router: CaddyRouter, backends: list[Backend], client: httpx.Client
) -> None:
    old_admin = f"127.0.0.1:{free_port()}"
    old = CaddyRouter(
        admin=old_admin,
        listen_port=socket_router.listen_port,
        config_dir=socket_router.config_dir,  # same state folder and pid file: the same platform
        log_path=socket_router.log_path,
    )
    old_pid = 0
    try:
        old.ensure_running()
        old_pid = int(old.pid_path.read_text())

        socket_router.ensure_running()  # the upgraded manager

        assert not Path(f"/proc/{old_pid}").exists() or not old.healthy()
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://{old_admin}/config/")
        assert socket_router.apply([shop(*backends)]) is True
        assert get(client, socket_router, "shop.localhost").status_code == 200
    finally:
        old.close()
        if old_pid and process.is_program(old_pid, "caddy"):  # the test failed: leave no Caddy behind
            os.kill(old_pid, signal.SIGKILL)
