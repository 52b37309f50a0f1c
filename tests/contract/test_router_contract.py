"""One contract every router driver passes, the fake included (DESIGN.md): the same calls give the same
results and the same errors. What a request through the router gets is the real router's alone: that
stays in tests/integration/test_router_caddy.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mypaas.errors import BackendError
from mypaas.router.base import Router
from mypaas.router.config import SERVER_NAME, Route
from mypaas.router.fake import FakeRouter, FakeRouterProcess
from tests.kit import free_port

Served = dict[str, tuple[str, ...]]  # host name -> the upstreams a request for it goes to


@dataclass
class Rig:
    """A driver over a router that does not run yet; ``served`` reads what the router process serves
    (not what the driver remembers); ``another`` makes a second driver object over the same router
    process, as a manager that restarted does."""

    router: Router
    served: Callable[[], Served]
    another: Callable[[], Router]


def fake_rig() -> Rig:
    process = FakeRouterProcess()

    def served() -> Served:
        return {host: route.upstreams for route in process.routes for host in route.hosts}

    return Rig(FakeRouter(process=process), served, lambda: FakeRouter(process=process))


def caddy_served(routes: list[dict[str, Any]]) -> Served:
    """The host -> upstreams map of the routes Caddy runs (its 404 catch-all matches no host)."""
    found: Served = {}
    for route in routes:
        handler = route["handle"][0]
        upstreams = tuple(u["dial"] for u in handler.get("upstreams", ()))
        for match in route.get("match", ()):
            found |= dict.fromkeys(match.get("host", ()), upstreams)
    return found


def haproxy_served(ask: Callable[[str], str], hosts_map: Path) -> Served:
    """The host -> upstreams map HAProxy's current worker runs: its host map, then each backend's
    servers that are not in maintenance (``show servers state``: admin state 0)."""
    found: Served = {}
    for line in ask(f"@1 show map {hosts_map}").splitlines():
        if line.startswith("0x"):
            _, host, backend = line.split()
            servers = []
            for row in ask(f"@1 show servers state {backend}").splitlines()[2:]:
                cols = row.split()
                if len(cols) > 18 and cols[6] == "0":
                    servers.append(f"{cols[4]}:{cols[18]}")
            found[host] = tuple(sorted(servers))
    return found


@pytest.fixture
def haproxy_rig(tmp_path: Path) -> Iterator[Rig]:
    from mypaas.router.haproxy import HAProxyRouter

    listen_port = free_port()
    folder = tmp_path / "haproxy"
    made: list[HAProxyRouter] = []

    def make() -> HAProxyRouter:
        made.append(HAProxyRouter(listen_port=listen_port, folder=folder, log_path=tmp_path / "haproxy.log"))
        return made[-1]

    first = make()
    try:
        yield Rig(first, lambda: haproxy_served(first._ask, first.files.hosts_map), make)
    finally:
        first.stop()
        for router in made:
            router.close()


@pytest.fixture(
    params=[
        "fake",
        pytest.param("caddy", marks=pytest.mark.integration),
        pytest.param("haproxy", marks=pytest.mark.integration),
    ]
)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "fake":
        yield fake_rig()
        return
    if request.param == "haproxy":
        yield request.getfixturevalue("haproxy_rig")
        return
    from mypaas.router.caddy import CaddyRouter

    admin, listen_port = f"127.0.0.1:{free_port()}", free_port()
    made: list[CaddyRouter] = []

    def make() -> CaddyRouter:
        name = f"caddy{len(made)}"
        made.append(
            CaddyRouter(
                admin=admin,
                listen_port=listen_port,
                config_dir=tmp_path / name,
                log_path=tmp_path / f"{name}.log",
            )
        )
        return made[-1]

    http = httpx.Client(base_url=f"http://{admin}", trust_env=False, timeout=5.0)

    def served() -> Served:
        response = http.get(f"/config/apps/http/servers/{SERVER_NAME}/routes")
        return caddy_served(response.raise_for_status().json())

    first = make()
    try:
        yield Rig(first, served, make)
    finally:
        first.stop()  # the tests start Caddy through this one: it reaps its child
        make().stop()  # and whatever still answers on the admin address
        for router in made:
            router.close()
        http.close()


SHOP = Route(
    app="shop", hosts=("shop.localhost", "www.shop.example"), upstreams=("10.0.0.2:80", "10.0.0.1:80")
)
BLOG = Route(app="blog", hosts=("blog.localhost",), upstreams=())  # no healthy instance: still routed
SHOP_SERVED = {h: ("10.0.0.1:80", "10.0.0.2:80") for h in SHOP.hosts}


def test_a_router_not_started_is_not_healthy_and_refuses_routes(rig: Rig) -> None:
    assert rig.router.healthy() is False
    with pytest.raises(BackendError):
        rig.router.apply([SHOP])
    rig.router.stop()  # stopping what does not run is fine
    assert rig.router.healthy() is False


def test_ensure_running_starts_a_router_that_serves_no_app(rig: Rig) -> None:
    rig.router.ensure_running()

    assert rig.router.healthy() is True
    assert rig.served() == {}


def test_apply_pushes_only_when_the_routes_change(rig: Rig) -> None:
    rig.router.ensure_running()

    assert rig.router.apply([SHOP, BLOG]) is True
    assert rig.router.apply([SHOP, BLOG]) is False
    same = Route(app="shop", hosts=("WWW.shop.example", "shop.localhost"), upstreams=SHOP.upstreams[::-1] * 2)
    assert rig.router.apply([BLOG, same]) is False  # order, case and repeats do not make a new config
    assert rig.router.apply([SHOP]) is True
    assert rig.router.apply([]) is True
    assert rig.router.apply([]) is False


def test_new_routes_replace_the_old_ones(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP, BLOG])
    assert rig.served() == {**SHOP_SERVED, "blog.localhost": ()}

    moved = Route(app="shop", hosts=("shop.localhost",), upstreams=("10.0.0.3:80",))
    assert rig.router.apply([moved]) is True

    assert rig.served() == {"shop.localhost": ("10.0.0.3:80",)}


def test_a_route_without_host_names_serves_nothing(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])

    ghost = Route(app="ghost", hosts=(), upstreams=("10.0.0.9:80",))
    assert rig.router.apply([SHOP, ghost]) is False

    assert rig.served() == SHOP_SERVED


def test_ensure_running_adopts_the_running_router_and_the_next_apply_pushes_again(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])

    rig.router.ensure_running()
    assert rig.served() == SHOP_SERVED  # adopted, not restarted: its routes are still served
    assert rig.router.apply([SHOP]) is True

    restarted_manager = rig.another()
    restarted_manager.ensure_running()
    assert rig.served() == SHOP_SERVED
    assert restarted_manager.apply([SHOP]) is True
    assert restarted_manager.apply([SHOP]) is False


def test_stop_then_the_router_is_down_and_stopping_again_is_fine(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])

    rig.router.stop()

    assert rig.router.healthy() is False
    rig.router.stop()
    assert rig.router.healthy() is False
    with pytest.raises(BackendError):
        rig.router.apply([SHOP])


def test_ensure_running_after_stop_starts_it_again_with_no_app(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])
    rig.router.stop()

    rig.router.ensure_running()

    assert rig.router.healthy() is True
    assert rig.served() == {}
    assert rig.router.apply([SHOP]) is True
    assert rig.served() == SHOP_SERVED


def test_a_router_stopped_through_another_driver_is_started_again(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])
    other = rig.another()

    other.stop()  # `mypaas down` from another process

    assert rig.router.healthy() is False
    rig.router.ensure_running()
    assert rig.router.apply([SHOP]) is True
    assert rig.served() == SHOP_SERVED


def test_close_leaves_the_router_running(rig: Rig) -> None:
    rig.router.ensure_running()
    rig.router.apply([SHOP])
    other = rig.another()
    other.ensure_running()

    other.close()

    assert rig.router.healthy() is True
    assert rig.served() == SHOP_SERVED
