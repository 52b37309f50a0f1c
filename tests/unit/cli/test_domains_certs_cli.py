"""Issue 13, slice G: `mypaas domains ls APP` shows, per custom domain, the certificate serving it (the
user's own, an ACME CA's, the internal CA's, or none yet), its issuer, its expiry and the last error
Caddy logged getting one: read from a prepared Caddy storage folder and log, through the CLI and the
real API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.certmaker import OwnCA
from tests.unit.cli.support import Server, cli, deploy, settle

ACME_DIR = "acme-v02.api.letsencrypt.org-directory"
FAILED = (
    '{"level":"error","ts":1764900000.1,"logger":"tls.obtain","msg":"could not get certificate from '
    'issuer","identifier":"%s","issuer":"acme-v02.api.letsencrypt.org-directory","error":"HTTP 400 '
    'urn:ietf:params:acme:error:dns - DNS problem: NXDOMAIN looking up A for %s"}\n'
)
OBTAINED = '{"level":"info","ts":1764900001.0,"logger":"tls.obtain","msg":"certificate obtained successfully","identifier":"%s"}\n'  # noqa: E501


def store_cert(storage: Path, issuer: str, host: str, cert_pem: str) -> None:
    folder = storage / "certificates" / issuer / host
    folder.mkdir(parents=True)
    (folder / f"{host}.crt").write_text(cert_pem)


@pytest.fixture
def hello(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    for domain in ("www.example.com", "shop.example.com", "new.example.com", "own.example.com", "a.internal"):
        assert api.post("/api/v1/apps/hello/domains", json={"domain": domain}).status_code == 201
    return "hello"


def test_domains_ls_shows_each_certificate_and_the_last_error(
    server: Server, hello: str, platform: Platform, tmp_path: Path
) -> None:
    acme, internal, own = (
        OwnCA.make("R11"),
        OwnCA.make("Caddy Local Authority - ECC Intermediate"),
        OwnCA.make(),
    )
    storage = platform.settings.router_dir / "caddy"
    store_cert(storage, ACME_DIR, "www.example.com", acme.issue(["www.example.com"])[0])
    store_cert(storage, "local", "a.internal", internal.issue(["a.internal"], days=7)[0])
    platform.settings.log_dir.mkdir(parents=True, exist_ok=True)
    log = "plain line at start\n" + FAILED % ("shop.example.com", "shop.example.com")
    log += FAILED % ("www.example.com", "www.example.com") + OBTAINED % "www.example.com"
    (platform.settings.log_dir / "caddy.log").write_text(log)
    cert, key = own.issue(["own.example.com"])
    (tmp_path / "c.pem").write_text(cert)
    (tmp_path / "k.pem").write_text(key)
    assert (
        cli(
            "certs",
            "add",
            "hello",
            "own.example.com",
            "--cert",
            f"{tmp_path}/c.pem",
            "--key",
            f"{tmp_path}/k.pem",
        ).exit_code
        == 0
    )

    listed = cli("domains", "ls", "hello")

    assert listed.exit_code == 0, listed.output
    nxdomain = (
        "HTTP 400 urn:ietf:params:acme:error:dns - DNS problem: NXDOMAIN looking up A for shop.example.com"
    )
    assert listed.stdout.splitlines() == [
        "DOMAIN            CERTIFICATE  ISSUER                                    EXPIRES     ERROR",
        f"a.internal        internal     Caddy Local Authority - ECC Intermediate  {internal.expiry(7)}  -",
        "new.example.com   none         -                                         -           no certificate yet (the domain's DNS must point at the router, port 80 reachable)",  # noqa: E501
        f"own.example.com   user         Test Own CA                               {own.expiry()}  -",
        f"shop.example.com  none         -                                         -           {nxdomain}",
        f"www.example.com   acme         R11                                       {acme.expiry()}  -",
    ]
    rows = {row["domain"]: row for row in json.loads(cli("domains", "hello", "--json").stdout)}
    assert rows["www.example.com"] | {"not_after": 0} == {
        "domain": "www.example.com",
        "certificate": "acme",
        "issuer": "R11",
        "ca": ACME_DIR,
        "not_after": 0,
        "expires": acme.expiry(),
        "error": None,
    }
    assert rows["shop.example.com"]["error"] == nxdomain
    assert rows["own.example.com"]["certificate"] == "user" and "key" not in rows["own.example.com"]


def test_domains_ls_without_a_domain_says_so(server: Server, api: TestClient) -> None:
    deploy(api, "bare", image="web:1")

    assert cli("domains", "ls", "bare").stdout == "no domains (only http://bare.localhost)\n"
    assert json.loads(cli("domains", "ls", "bare", "--json").stdout) == []
