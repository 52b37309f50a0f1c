"""Unit tests of the router's HTTPS config (router/https.py through config.render) and its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mypaas.router.config import Route, render
from mypaas.router.https import Https, UserCert, is_private
from mypaas.settings import Settings

ADMIN = "unix//srv/mypaas/router/caddy-admin.sock"
HTTPS = Https(port=8443, base_domain="localhost", acme_ca="https://acme.test/dir", acme_ca_root="/ca.pem")
SHOP = Route(app="shop", hosts=("shop.localhost", "www.shop.example.com"), upstreams=("10.0.0.2:80",))


def servers(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = config["apps"]["http"]["servers"]
    return result


def test_without_https_the_config_is_plain_http_as_before() -> None:
    config = render([SHOP], listen_port=80, admin=ADMIN)

    assert list(servers(config)) == ["mypaas"]
    assert "tls" not in config["apps"]


def test_https_serves_every_route_on_its_own_port_with_tls() -> None:
    config = render([SHOP], listen_port=8080, admin=ADMIN, https=HTTPS)

    http, tls = servers(config)["mypaas"], servers(config)["mypaas-tls"]
    assert config["apps"]["http"]["http_port"] == 8080 and config["apps"]["http"]["https_port"] == 8443
    assert tls["listen"] == [":8443"] and tls["tls_connection_policies"] == [{}]
    assert tls["automatic_https"] == {"disable_redirects": True}
    assert tls["routes"][0]["match"] == [{"host": ["shop.localhost", "www.shop.example.com"]}]
    assert tls["routes"][0]["handle"][0]["handler"] == "reverse_proxy"
    assert http["routes"][0]["handle"][0]["handler"] == "reverse_proxy"  # no trusted certificate yet
    assert config["apps"]["pki"] == {"certificate_authorities": {"local": {"install_trust": False}}}


def test_base_domain_hosts_use_the_internal_ca_and_custom_domains_the_acme_ca() -> None:
    config = render([SHOP], listen_port=80, admin=ADMIN, https=HTTPS)

    assert config["apps"]["tls"]["automation"]["policies"] == [
        {"subjects": ["shop.localhost"], "issuers": [{"module": "internal"}]},
        {
            "subjects": ["www.shop.example.com"],
            "issuers": [
                {"module": "acme", "ca": "https://acme.test/dir", "trusted_roots_pem_files": ["/ca.pem"]}
            ],
        },
    ]


def test_a_public_base_domain_uses_the_acme_ca_too() -> None:
    https = Https(port=443, base_domain="apps.example.org", acme_email="ops@example.org")
    route = Route(app="shop", hosts=("shop.apps.example.org",), upstreams=())

    config = render([route], listen_port=80, admin=ADMIN, https=https)

    [policy] = config["apps"]["tls"]["automation"]["policies"]
    assert policy == {
        "subjects": ["shop.apps.example.org"],
        "issuers": [{"module": "acme", "email": "ops@example.org"}],  # Let's Encrypt: Caddy's default CA
    }


def test_hosts_with_a_trusted_certificate_redirect_http_to_https() -> None:
    config = render([SHOP], listen_port=80, admin=ADMIN, https=HTTPS, certified={"www.shop.example.com"})

    redirect, app, _ = servers(config)["mypaas"]["routes"]
    assert redirect["match"] == [{"host": ["www.shop.example.com"]}]
    assert redirect["handle"] == [
        {
            "handler": "static_response",
            "status_code": 308,
            "headers": {"Location": ["https://{http.request.host}:8443{http.request.uri}"]},
        }
    ]
    assert app["match"] == [{"host": ["shop.localhost"]}]  # the internal CA's host keeps plain HTTP
    assert app["handle"][0]["handler"] == "reverse_proxy"


def test_an_app_that_keeps_plain_http_is_not_redirected() -> None:
    plain = Route(app="shop", hosts=SHOP.hosts, upstreams=SHOP.upstreams, plain_http=True)

    config = render([plain], listen_port=80, admin=ADMIN, https=HTTPS, certified={"www.shop.example.com"})

    app, _ = servers(config)["mypaas"]["routes"]
    assert app["match"] == [{"host": ["shop.localhost", "www.shop.example.com"]}]


def test_user_certificates_are_loaded_and_not_asked_of_the_acme_ca() -> None:
    own = UserCert(domain="www.shop.example.com", cert_pem="CERT", key_pem="KEY")

    config = render([SHOP], listen_port=80, admin=ADMIN, https=HTTPS, certs=[own])

    tls = config["apps"]["tls"]
    assert tls["certificates"] == {
        "load_pem": [{"certificate": "CERT", "key": "KEY", "tags": ["www.shop.example.com"]}]
    }
    assert [p["subjects"] for p in tls["automation"]["policies"]] == [["shop.localhost"]]


@pytest.mark.parametrize(
    ("name", "private"),
    [
        ("localhost", True),
        ("shop.localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("app.test", True),
        ("x.internal", True),
        ("example.com", False),
        ("shop.example.org", False),
        ("testing.com", False),
    ],
)
def test_names_without_public_dns(name: str, private: bool) -> None:
    assert is_private(name) is private


def test_the_admin_api_is_a_unix_socket_in_the_router_folder_by_default(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)

    assert settings.router_admin_address == f"unix/{tmp_path}/router/caddy-admin.sock"
    assert Settings(home=tmp_path, router_admin="127.0.0.1:2019").router_admin_address == "127.0.0.1:2019"
    assert settings.router_https_port == 443
