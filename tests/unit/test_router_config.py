"""Unit tests of the router's pure config rendering (no Caddy needed)."""

from __future__ import annotations

from typing import Any

from mypaas.router.config import Route, config_hash, render

ADMIN = "127.0.0.1:2019"


def server(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = config["apps"]["http"]["servers"]["mypaas"]
    return result


def routes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = server(config)["routes"]
    return result


def test_no_routes_gives_admin_server_and_catch_all_only() -> None:
    config = render([], listen_port=8080, admin=ADMIN)

    assert config["admin"] == {"listen": ADMIN}
    assert server(config)["listen"] == [":8080"]
    assert server(config)["automatic_https"] == {"disable": True}
    assert routes_of(config) == [
        {
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": 404,
                    "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
                    "body": "no app at this address\n",
                }
            ],
            "terminal": True,
        }
    ]


def test_one_app_is_proxied_round_robin_with_retries_and_passive_checks() -> None:
    route = Route(app="shop", hosts=("shop.localhost",), upstreams=("10.0.0.2:80", "10.0.0.1:80"))

    first, catch_all = routes_of(render([route], listen_port=80, admin=ADMIN))

    assert first["match"] == [{"host": ["shop.localhost"]}]
    assert first["terminal"] is True
    (proxy,) = first["handle"]
    assert proxy["handler"] == "reverse_proxy"
    assert proxy["upstreams"] == [{"dial": "10.0.0.1:80"}, {"dial": "10.0.0.2:80"}]
    assert proxy["load_balancing"] == {
        "selection_policy": {"policy": "round_robin"},
        "try_duration": "2s",
        "try_interval": "100ms",
    }
    assert proxy["health_checks"] == {"passive": {"fail_duration": "2s", "max_fails": 1}}
    assert catch_all["handle"][0]["status_code"] == 404
    assert "match" not in catch_all


def test_many_apps_are_sorted_by_name_and_catch_all_comes_last() -> None:
    routes = [
        Route(app="web", hosts=("web.localhost",), upstreams=("10.0.0.3:80",)),
        Route(app="api", hosts=("api.localhost",), upstreams=("10.0.0.4:8000",)),
        Route(app="blog", hosts=("blog.localhost",), upstreams=("10.0.0.5:80",)),
    ]

    rendered = routes_of(render(routes, listen_port=80, admin=ADMIN))

    assert [r["match"][0]["host"] for r in rendered[:-1]] == [
        ["api.localhost"],
        ["blog.localhost"],
        ["web.localhost"],
    ]
    assert "match" not in rendered[-1]
    assert rendered[-1]["handle"][0]["body"] == "no app at this address\n"
    assert all(r["terminal"] is True for r in rendered)


def test_hosts_are_sorted_lower_cased_and_deduplicated() -> None:
    route = Route(app="shop", hosts=("www.Example.com", "shop.localhost", "WWW.example.com"), upstreams=())

    (first, _) = routes_of(render([route], listen_port=80, admin=ADMIN))

    assert first["match"] == [{"host": ["shop.localhost", "www.example.com"]}]


def test_app_without_upstream_answers_503_instead_of_proxying_to_nothing() -> None:
    route = Route(app="shop", hosts=("shop.localhost",), upstreams=())

    (first, _) = routes_of(render([route], listen_port=80, admin=ADMIN))

    assert first["match"] == [{"host": ["shop.localhost"]}]
    assert first["handle"] == [
        {
            "handler": "static_response",
            "status_code": 503,
            "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
            "body": "no healthy instance of shop\n",
        }
    ]
    assert first["terminal"] is True


def test_a_stopped_app_answers_503_saying_it_is_stopped() -> None:
    stopped = Route(app="shop", hosts=("shop.localhost",), upstreams=(), stopped=True)
    draining = Route(app="shop", hosts=("shop.localhost",), upstreams=("10.0.0.1:80",), stopped=True)

    (first, _) = routes_of(render([stopped], listen_port=80, admin=ADMIN))
    (still, _) = routes_of(render([draining], listen_port=80, admin=ADMIN))

    assert (first["handle"][0]["status_code"], first["handle"][0]["body"]) == (
        503,
        "app shop is stopped (mypaas start shop)\n",
    )
    assert still["handle"][0]["handler"] == "reverse_proxy"  # its last instances serve until they go


def test_app_without_host_gets_no_route() -> None:
    route = Route(app="worker", hosts=(), upstreams=("10.0.0.1:80",))

    assert len(routes_of(render([route], listen_port=80, admin=ADMIN))) == 1


def test_hash_is_stable_and_ignores_input_order() -> None:
    a = Route(app="a", hosts=("a.localhost", "a.example.com"), upstreams=("10.0.0.1:80", "10.0.0.2:80"))
    b = Route(app="b", hosts=("b.localhost",), upstreams=())
    a_shuffled = Route(
        app="a", hosts=("a.example.com", "a.localhost"), upstreams=("10.0.0.2:80", "10.0.0.1:80")
    )

    first = config_hash(render([a, b], listen_port=80, admin=ADMIN))

    assert first == config_hash(render([a, b], listen_port=80, admin=ADMIN))
    assert first == config_hash(render([b, a_shuffled], listen_port=80, admin=ADMIN))
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_hash_changes_when_upstreams_or_ports_change() -> None:
    before = Route(app="a", hosts=("a.localhost",), upstreams=("10.0.0.1:80", "10.0.0.2:80"))
    after = Route(app="a", hosts=("a.localhost",), upstreams=("10.0.0.1:80",))
    drained = Route(app="a", hosts=("a.localhost",), upstreams=())

    hashes = {
        config_hash(render([before], listen_port=80, admin=ADMIN)),
        config_hash(render([after], listen_port=80, admin=ADMIN)),
        config_hash(render([drained], listen_port=80, admin=ADMIN)),
        config_hash(render([before], listen_port=8080, admin=ADMIN)),
    }

    assert len(hashes) == 4
