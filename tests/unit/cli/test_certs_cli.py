"""Issue 13, slice G: `mypaas certs add|ls|rm` through the CLI against the real API (fake backend and
router underneath): the certificate is checked (one error line naming cert, key or domain), its key
stored encrypted and never shown back, the router loads it (no ACME for that domain, HTTP redirects),
and it goes with its app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import CertRow
from mypaas.router.caddy import CaddyRouter
from mypaas.router.config import Route
from mypaas.router.https import Https
from tests.certmaker import OwnCA
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle

DOMAIN = "www.example.com"


@pytest.fixture
def own_ca() -> OwnCA:
    return OwnCA.make("Shop Own CA")


@pytest.fixture
def hello(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    assert api.post("/api/v1/apps/hello/domains", json={"domain": DOMAIN}).status_code == 201
    return "hello"


def files(tmp_path: Path, cert: str, key: str) -> tuple[str, str]:
    (tmp_path / "cert.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def add(app: str, domain: str, paths: tuple[str, str]) -> tuple[int, str]:
    result = cli("certs", "add", app, domain, "--cert", paths[0], "--key", paths[1])
    return result.exit_code, result.stdout


def test_certs_add_ls_rm(server: Server, hello: str, own_ca: OwnCA, tmp_path: Path) -> None:
    cert, key = own_ca.issue([DOMAIN])
    expires = own_ca.expiry()

    assert add(hello, DOMAIN, files(tmp_path, cert, key)) == (
        0,
        f"hello: {DOMAIN} served with your certificate (issuer Shop Own CA, expires {expires})\n",
    )

    listed = cli("certs", "ls")
    assert listed.stdout.splitlines() == [
        "APP    DOMAIN           ISSUER       EXPIRES",
        f"hello  {DOMAIN}  Shop Own CA  {expires}",
    ]
    assert cli("certs", "hello").stdout == listed.stdout
    [entry] = json.loads(cli("certs", "ls", "hello", "--json").stdout)
    assert set(entry) == {"app", "domain", "issuer", "not_after", "expires"}  # never the key

    removed = cli("certs", "rm", "hello", DOMAIN)
    assert (removed.exit_code, removed.stdout) == (0, f"hello: your certificate for {DOMAIN} removed\n")
    assert cli("certs", "ls", "hello").stdout == "no certificates of your own for hello\n"


def test_the_key_is_stored_encrypted(
    server: Server, hello: str, own_ca: OwnCA, tmp_path: Path, platform: Platform
) -> None:
    cert, key = own_ca.issue([DOMAIN])
    assert add(hello, DOMAIN, files(tmp_path, cert, key))[0] == 0

    with platform.sessions() as s:
        [row] = s.scalars(select(CertRow)).all()
        stored = (row.key, row.cert_pem)
    assert "PRIVATE KEY" not in stored[0] and key.splitlines()[1] not in stored[0]
    assert stored[1] == cert
    assert [(c.domain, c.key_pem) for c in platform.certs.served()] == [(DOMAIN, key)]


def test_bad_certificates_are_one_error_line(
    server: Server, hello: str, own_ca: OwnCA, tmp_path: Path
) -> None:
    cert, _ = own_ca.issue([DOMAIN])
    _, other_key = own_ca.issue([DOMAIN])
    wrong_name, wrong_key = own_ca.issue(["other.org"])

    def error(*args: str) -> str:
        return one_error_line(cli("certs", "add", *args))

    mismatch = files(tmp_path, cert, other_key)
    assert error(hello, DOMAIN, "--cert", mismatch[0], "--key", mismatch[1]) == (
        "error: the key does not match the certificate"
    )
    other = files(tmp_path, wrong_name, wrong_key)
    assert error(hello, DOMAIN, "--cert", other[0], "--key", other[1]) == (
        f"error: the certificate does not cover {DOMAIN} (it is for other.org)"
    )
    garbage = files(tmp_path, "hello", other_key)
    assert error(hello, DOMAIN, "--cert", garbage[0], "--key", garbage[1]) == (
        "error: the certificate is not a PEM certificate (BEGIN CERTIFICATE)"
    )
    right = files(tmp_path, wrong_name, wrong_key)
    assert error(hello, "other.org", "--cert", right[0], "--key", right[1]) == (
        "error: other.org is not a domain of hello (first: mypaas domains add hello other.org)"
    )
    assert error(hello, DOMAIN, "--cert", str(tmp_path / "none.pem"), "--key", right[1]) == (
        f"error: cert: cannot read {tmp_path / 'none.pem'}: No such file or directory"
    )
    assert one_error_line(cli("certs", "rm", hello, DOMAIN)) == (
        f"error: app hello has no certificate of its own for {DOMAIN}"
    )


def test_the_api_names_the_field(server: Server, api: TestClient, hello: str, own_ca: OwnCA) -> None:
    cert, _ = own_ca.issue([DOMAIN])
    _, other_key = own_ca.issue([DOMAIN])

    answer = api.post("/api/v1/apps/hello/certs", json={"domain": DOMAIN, "cert": cert, "key": other_key})
    assert (answer.status_code, answer.json()["field"]) == (400, "key")
    answer = api.post("/api/v1/apps/hello/certs", json={"domain": DOMAIN, "cert": cert})
    assert answer.status_code == 400 and "key" in answer.text


def test_the_router_loads_it_and_asks_no_acme_ca(
    server: Server, hello: str, own_ca: OwnCA, tmp_path: Path, platform: Platform
) -> None:
    cert, key = own_ca.issue([DOMAIN])
    assert add(hello, DOMAIN, files(tmp_path, cert, key))[0] == 0
    caddy = CaddyRouter(
        admin="127.0.0.1:1",
        listen_port=8080,
        config_dir=tmp_path / "router",
        log_path=tmp_path / "caddy.log",
        https=Https(port=8443, base_domain="localhost"),
        user_certs=platform.certs.served,
    )
    routes = [Route("hello", ("hello.localhost", DOMAIN, "shop.example.org"), ("10.0.0.2:80",))]

    config = caddy.render(routes)
    caddy.close()

    tls = config["apps"]["tls"]
    assert tls["certificates"]["load_pem"] == [{"certificate": cert, "key": key, "tags": [DOMAIN]}]
    acme = [p for p in tls["automation"]["policies"] if p["issuers"][0]["module"] == "acme"]
    assert [p["subjects"] for p in acme] == [["shop.example.org"]]  # not the domain with its own cert
    server_tls = config["apps"]["http"]["servers"]["mypaas-tls"]
    assert server_tls["automatic_https"]["skip_certificates"] == [DOMAIN]
    redirect, app_route = config["apps"]["http"]["servers"]["mypaas"]["routes"][:2]
    assert redirect["match"] == [{"host": [DOMAIN]}]
    assert redirect["handle"][0]["status_code"] == 308
    assert DOMAIN not in app_route["match"][0]["host"]


def test_the_certificate_goes_with_its_app(
    server: Server, hello: str, own_ca: OwnCA, tmp_path: Path, manager: Platform
) -> None:
    cert, key = own_ca.issue([DOMAIN])
    assert add(hello, DOMAIN, files(tmp_path, cert, key))[0] == 0

    removed = cli("rm", "hello", "--yes")

    assert removed.exit_code == 0, removed.output
    assert manager.certs.served() == []
    assert cli("certs", "ls").stdout == "no certificates of your own\n"


def test_the_certificate_goes_with_its_domain(
    server: Server, hello: str, own_ca: OwnCA, tmp_path: Path, platform: Platform
) -> None:
    cert, key = own_ca.issue([DOMAIN])
    assert add(hello, DOMAIN, files(tmp_path, cert, key))[0] == 0

    assert cli("domains", "rm", "hello", DOMAIN).exit_code == 0

    assert platform.certs.served() == []
    assert cli("certs", "ls", "hello").stdout == "no certificates of your own for hello\n"
