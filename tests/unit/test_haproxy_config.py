"""The HAProxy router's pure parts: its config, host map and redirects from the routes, the slots an
upstream change fills through the runtime API, its counters and its ring of request durations, and
the Caddy TLS front's config."""

from __future__ import annotations

from pathlib import Path

from mypaas.router.config import Route
from mypaas.router.haproxy_config import (
    Files,
    assign,
    current_worker,
    parse_events,
    parse_stat,
    render,
    runtime_commands,
    runtime_ready,
    slot_count,
    worker_pid,
)
from mypaas.router.https import Https, UserCert
from mypaas.router.tls_front import render_front

FILES = Files(Path("/srv/mypaas/router"))
SHOP = Route("shop", ("Shop.localhost", "www.shop.example"), ("10.0.0.2:80", "10.0.0.1:80"))
BLOG = Route("blog", ("blog.localhost",), ())


def backend(config: str, name: str) -> list[str]:
    """The lines of one backend section."""
    lines = config.splitlines()
    start = lines.index(f"backend {name}")
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start + 1 : end]


def test_each_app_gets_a_backend_chosen_by_host_with_spare_slots() -> None:
    out = render([SHOP, BLOG], listen_port=8080, files=FILES)

    assert out.hosts_map == "blog.localhost app_blog\nshop.localhost app_shop\nwww.shop.example app_shop\n"
    assert backend(out.config, "app_shop") == [
        "  server s1 10.0.0.1:80",
        "  server s2 10.0.0.2:80",
        "  server s3 0.0.0.0:1 disabled",
        "  server s4 0.0.0.0:1 disabled",
    ]
    assert out.slots["shop"] == ("10.0.0.1:80", "10.0.0.2:80", None, None)
    assert "  bind :8080" in out.config
    assert "  use_backend %[var(txn.host),map_str(/srv/mypaas/router/hosts.map,mypaas_none)]" in out.config
    assert "  retry-on conn-failure" in out.config and "  option redispatch 1" in out.config
    assert '"no app at this address\\n"' in "\n".join(backend(out.config, "mypaas_none"))


def test_an_app_without_upstreams_answers_why() -> None:
    out = render([BLOG, Route("shut", ("shut.localhost",), (), stopped=True)], listen_port=80, files=FILES)

    assert 'string "no healthy instance of blog\\n"' in backend(out.config, "app_blog")[0]
    assert 'string "app shut is stopped (mypaas start shut)\\n"' in backend(out.config, "app_shut")[0]
    with_one = render([Route("blog", ("blog.localhost",), ("10.0.0.5:80",))], listen_port=80, files=FILES)
    assert not any("return" in line for line in backend(with_one.config, "app_blog"))
    assert with_one.shape != render([BLOG], listen_port=80, files=FILES).shape  # none <-> some: reload


def test_the_same_routes_in_another_order_render_the_same() -> None:
    again = Route(
        "shop", ("www.shop.example", "shop.localhost"), ("10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80")
    )

    assert render([BLOG, again], listen_port=80, files=FILES) == render(
        [SHOP, BLOG], listen_port=80, files=FILES
    )


def test_an_upstream_change_keeps_the_shape_and_becomes_runtime_commands() -> None:
    before = render([SHOP], listen_port=80, files=FILES)
    moved = Route("shop", SHOP.hosts, ("10.0.0.2:80", "10.0.0.3:80"))

    after = render([moved], listen_port=80, files=FILES, slots=before.slots)

    assert after.shape == before.shape
    assert after.slots["shop"] == ("10.0.0.3:80", "10.0.0.2:80", None, None)  # 10.0.0.2 stays in s2
    assert runtime_commands("shop", before.slots["shop"], after.slots["shop"]) == [
        "@1 set server app_shop/s1 addr 10.0.0.3 port 80",
        "@1 set server app_shop/s1 state ready",
    ]
    drained = render(
        [Route("shop", SHOP.hosts, ("10.0.0.2:80",))], listen_port=80, files=FILES, slots=after.slots
    )
    assert runtime_commands("shop", after.slots["shop"], drained.slots["shop"]) == [
        "@1 set server app_shop/s1 state maint"
    ]


def test_more_upstreams_than_slots_need_more_slots_and_a_reload() -> None:
    before = render([SHOP], listen_port=80, files=FILES)
    five = Route("shop", SHOP.hosts, tuple(f"10.0.0.{i}:80" for i in range(1, 6)))

    after = render([five], listen_port=80, files=FILES, slots=before.slots)

    assert after.shape != before.shape and len(after.slots["shop"]) == 8
    assert slot_count(0) == 4 and slot_count(4) == 4 and slot_count(9) == 16
    assert assign((None, None), ["a", "b", "c"]) is None
    assert assign(("a", "x"), ["b", "a"]) == ("a", "b")


def test_only_ip_upstreams_change_at_run_time() -> None:
    assert runtime_ready("10.0.0.1:80") and runtime_ready("[fd00::1]:8080")
    assert not runtime_ready("web.internal:80")


def test_https_passes_the_port_through_to_caddy_and_redirects_trusted_hosts() -> None:
    out = render([SHOP], listen_port=80, files=FILES, https_port=8443, redirect_hosts=["WWW.shop.example"])

    assert out.redirects == "www.shop.example\n"
    assert "  bind :8443" in out.config
    assert backend(out.config, "mypaas_caddy_tls") == [
        "  mode tcp",
        "  server caddy /srv/mypaas/router/caddy-tls.sock",
    ]
    assert backend(out.config, "mypaas_acme") == ["  server caddy /srv/mypaas/router/caddy-http.sock"]
    lines = out.config.splitlines()
    redirect = next(line for line in lines if "redirect" in line)
    assert "location https://%[var(txn.host)]:8443%[capture.req.uri]" in redirect
    assert "if !acme { var(txn.host) -m str -f /srv/mypaas/router/redirects.lst }" in redirect
    assert lines.index(redirect) < lines.index("  use_backend mypaas_acme if acme")
    assert "  bind /srv/mypaas/router/https-in.sock mode 600" in lines
    on_443 = render([SHOP], listen_port=80, files=FILES, https_port=443, redirect_hosts=["www.shop.example"])
    assert "location https://%[var(txn.host)]%[capture.req.uri]" in on_443.config


def test_plain_http_has_no_tls_frontend_nor_acme_path() -> None:
    out = render([SHOP], listen_port=80, files=FILES, redirect_hosts=["www.shop.example"])

    assert "mypaas_tls" not in out.config and "acme" not in out.config and out.redirects == ""


STAT = """# pxname,svname,qcur,req_tot,hrsp_5xx,ttime,
mypaas,FRONTEND,0,40,0,,
app_shop,s1,0,,1,3,
app_shop,BACKEND,0,12,2,3,
app_blog,BACKEND,0,0,0,0,
mypaas_none,BACKEND,0,5,0,0,
"""


def test_per_app_counters_come_from_the_backend_rows() -> None:
    counted = parse_stat("Name: HAProxy\nPid: 42\n\n" + STAT, epoch=42)

    assert set(counted) == {"shop", "blog"}
    assert (counted["shop"].requests, counted["shop"].errors, counted["shop"].mean_ms) == (12, 2, 3.0)
    assert counted["blog"].mean_ms is None and counted["shop"].epoch == 42
    assert worker_pid("Name: HAProxy\nPid: 42\nUptime: 1\n") == 42


def test_both_http_frontends_log_each_requests_duration_into_the_ring() -> None:
    out = render([SHOP], listen_port=80, https_port=443, files=FILES)

    assert "ring mypaas_requests" in out.config
    frontends = out.config.split("frontend ")[1:]
    logging = [f.split()[0] for f in frontends if "log ring@mypaas_requests" in f]
    assert logging == ["mypaas", "mypaas_https_in"]  # not the TLS passthrough (tcp)
    assert all("set-var(txn.t0) date(0,us)" in f for f in frontends if "log ring@" in f)


RING = "7 app_shop 1500\n8 mypaas_none 90\n9 app_shop 2500\n10 app_blog 100\n11 app_shop -\n\n"


def test_the_ring_gives_the_durations_logged_since_the_last_read() -> None:
    assert parse_events(RING, None) == ({"shop": [1.5, 2.5], "blog": [0.1]}, 11)
    assert parse_events(RING, 8) == ({"shop": [2.5], "blog": [0.1]}, 11)
    assert parse_events(RING, 11) == ({}, 11)  # nothing new
    # the last one read was overwritten (a busy interval) or came from another worker: all it holds
    assert parse_events(RING, 3) == ({"shop": [1.5, 2.5], "blog": [0.1]}, 11)
    assert parse_events("\n", 5) == ({}, 5)


def test_the_current_worker_is_read_from_show_proc() -> None:
    proc = (
        "#<PID>          <type>          <reloads>       <uptime>        <version>\n"
        "27143           master          1 [failed: 0]   0d00h00m10s     2.6.12\n"
        "# workers\n"
        "27150           worker          0               0d00h00m01s     2.6.12\n"
        "# old workers\n"
        "27144           worker          1               0d00h00m10s     2.6.12\n"
    )
    assert current_worker(proc) == 27150
    assert current_worker("# workers\n# programs\n") is None


def test_the_tls_front_proxies_every_routed_host_to_haproxy() -> None:
    https = Https(port=443, base_domain="localhost")
    own = UserCert("www.shop.example", "CERT", "KEY")

    config = render_front(
        [SHOP, BLOG], admin="unix//x/a.sock", https=https, http_port=80, files=FILES, certs=[own]
    )

    servers = config["apps"]["http"]["servers"]
    tls_server = servers["mypaas-tls"]
    assert tls_server["listen"] == ["unix//srv/mypaas/router/caddy-tls.sock"]
    assert tls_server["routes"][0]["match"] == [
        {"host": ["blog.localhost", "shop.localhost", "www.shop.example"]}
    ]
    assert tls_server["routes"][0]["handle"][0]["upstreams"] == [
        {"dial": "unix//srv/mypaas/router/https-in.sock"}
    ]
    assert tls_server["automatic_https"]["skip_certificates"] == ["www.shop.example"]
    assert servers["mypaas-acme"]["listen"] == ["unix//srv/mypaas/router/caddy-http.sock"]
    assert (config["apps"]["http"]["http_port"], config["apps"]["http"]["https_port"]) == (80, 443)
    assert config["apps"]["tls"]["certificates"]["load_pem"][0]["tags"] == ["www.shop.example"]
