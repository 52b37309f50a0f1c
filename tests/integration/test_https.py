"""Issue 13, slice D, on the real engine, Caddy and an ACME server (pebble): apps over HTTPS.

A custom domain gets its certificate from pebble over HTTP-01 (pebble validates on the router's HTTP
port; pebble-challtestsrv answers every name with 127.0.0.1) and its HTTP requests redirect to HTTPS; the
base domain's hosts (``APP.localhost``) get one from Caddy's internal CA and are served over both; Caddy's
admin API listens on no TCP port.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mypaas.router.caddy import CaddyRouter
from mypaas.router.config import Route
from mypaas.router.https import Https
from tests import kit
from tests.integration.test_router_caddy import Backend, listening_tcp_ports

pytestmark = pytest.mark.integration  # pebble comes from scripts/install.sh --test


class Pebble:
    """pebble (ACME) and pebble-challtestsrv (DNS: every name is 127.0.0.1) on free loopback ports."""

    def __init__(self, folder: Path, http_port: int) -> None:
        self.folder = folder
        self.acme_port, self.management_port, dns_port = kit.free_port(), kit.free_port(), kit.free_port()
        self.cert = folder / "pebble.pem"
        key = folder / "pebble.key"
        self_signed(self.cert, key)
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.cert),
                "privateKey": str(key),
                "httpPort": http_port,  # where pebble validates HTTP-01: the router's HTTP port
                "tlsPort": kit.free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (folder / "pebble.json").write_text(json.dumps(config))
        self.procs: list[subprocess.Popen[bytes]] = []
        self._start(
            "challtestsrv",
            ["pebble-challtestsrv", "-defaultIPv6", "", "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
             "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{kit.free_port()}"],
            {},
        )  # fmt: skip
        self._start(
            "pebble",
            ["pebble", "-config", str(folder / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
            {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        )
        kit.wait_until(self._answers, timeout=20)

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        )

    def _answers(self) -> bool:
        try:
            return (
                httpx.get(
                    self.directory, verify=ssl.create_default_context(cafile=self.cert), trust_env=False
                ).status_code
                == 200
            )
        except httpx.HTTPError:
            return False

    def root(self) -> str:
        """The root of the certificates pebble issues (it makes a new one at each start)."""
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        return (
            httpx.get(url, verify=ssl.create_default_context(cafile=self.cert), trust_env=False)
            .raise_for_status()
            .text
        )

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in self.folder.glob("*.log"))


def self_signed(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for localhost and 127.0.0.1 (pebble's own HTTPS listener)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.fixture(scope="module")
def acme_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[kit.Platform, Pebble]]:
    router_port = kit.free_port()
    pebble = Pebble(tmp_path_factory.mktemp("pebble"), http_port=router_port)
    try:
        platform = kit.Platform(
            router_port=router_port, acme_ca=pebble.directory, acme_ca_root=str(pebble.cert)
        )
        platform.router_port = router_port
        try:
            platform.up()
            yield platform, pebble
        finally:
            platform.cleanup()
    finally:
        pebble.stop()
        print(pebble.logs())


def https_get(port: int, host: str, root_pem: str, path: str = "/", timeout: float = 5) -> httpx.Response:
    """GET over HTTPS from the router on loopback, with SNI and Host ``host``, trusting ``root_pem``
    (the certificate is checked against ``host``)."""
    context = ssl.create_default_context(cadata=root_pem)
    with httpx.Client(verify=context, trust_env=False, timeout=timeout) as client:
        return client.get(
            f"https://127.0.0.1:{port}{path}", headers={"Host": host}, extensions={"sni_hostname": host}
        )


def test_the_router_gets_a_certificate_from_pebble_over_http_01(tmp_path: Path) -> None:
    """The router alone (no engine): Caddy, pebble and a loopback backend."""
    router_port = kit.free_port()
    pebble = Pebble(tmp_path, http_port=router_port)
    https = Https(
        port=kit.free_port(), base_domain="localhost", acme_ca=pebble.directory, acme_ca_root=str(pebble.cert)
    )
    router = CaddyRouter(
        admin=f"unix/{tmp_path / 'caddy' / 'admin.sock'}",
        listen_port=router_port,
        config_dir=tmp_path / "caddy",
        log_path=tmp_path / "caddy.log",
        https=https,
    )
    backend = Backend("hello")
    try:
        router.ensure_running()
        route = Route(app="shop", hosts=("shop.localhost", "app.test"), upstreams=(backend.address,))
        router.apply([route])
        root = pebble.root()

        def served() -> httpx.Response | None:
            with contextlib.suppress(httpx.HTTPError, ssl.SSLError):
                return https_get(https.port, "app.test", root)
            return None

        assert kit.wait_until(served, timeout=30).text == "hello"
        assert router.certified_hosts() == {"app.test"}
        assert router.apply([route]) is True  # the stored certificate turns the redirect on
        plain = httpx.get(
            f"http://127.0.0.1:{router_port}/a?b=1", headers={"Host": "app.test"}, trust_env=False
        )
        assert plain.status_code == 308
        assert plain.headers["location"] == f"https://app.test:{https.port}/a?b=1"
        local = httpx.get(
            f"http://127.0.0.1:{router_port}/", headers={"Host": "shop.localhost"}, trust_env=False
        )
        assert local.text == "hello"  # the internal CA's hosts stay on plain HTTP too
    finally:
        backend.stop()
        router.stop()
        router.close()
        pebble.stop()
        print(pebble.logs(), (tmp_path / "caddy.log").read_text()[-4000:])


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def test_a_custom_domain_gets_a_certificate_from_the_acme_ca_and_http_redirects(
    acme_platform: tuple[kit.Platform, Pebble], images: dict[str, str]
) -> None:
    platform, pebble = acme_platform
    app, domain = name("tls"), f"{name('shop')}.test"
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        assert platform.cli("domains", "add", app, domain).code == 0
        root = pebble.root()

        def served() -> httpx.Response | None:
            with contextlib.suppress(httpx.HTTPError, ssl.SSLError):
                answer = https_get(platform.router_https_port, domain, root)
                return answer if answer.status_code == 200 else None
            return None

        answer = kit.wait_until(served, timeout=30)
        assert answer.text == "version one\n"

        def redirected() -> httpx.Response | None:
            plain = httpx.get(
                f"http://127.0.0.1:{platform.router_port}/shop?x=1", headers={"Host": domain}, trust_env=False
            )
            return plain if plain.status_code == 308 else None

        plain = kit.wait_until(redirected, timeout=20)  # once the certificate is stored
        assert plain.headers["location"] == f"https://{domain}:{platform.router_https_port}/shop?x=1"
        assert platform.get(app)[0] == 200  # APP.localhost keeps plain HTTP
    finally:
        platform.cli("rm", app, "--yes")


def test_the_base_domain_is_served_over_https_from_the_internal_ca_and_over_http(
    acme_platform: tuple[kit.Platform, Pebble], images: dict[str, str]
) -> None:
    platform, _ = acme_platform
    app = name("local")
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        ca = platform.home / "router" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

        def served() -> httpx.Response | None:
            with contextlib.suppress(httpx.HTTPError, ssl.SSLError, OSError):
                return https_get(platform.router_https_port, f"{app}.localhost", ca.read_text())
            return None

        answer = kit.wait_until(served, timeout=30)
        assert answer.status_code == 200 and answer.text == "version one\n"
        assert platform.get(app) == (200, "version one\n")  # no redirect: plain HTTP still serves
    finally:
        platform.cli("rm", app, "--yes")


def test_caddy_admin_api_listens_on_no_tcp_port(acme_platform: tuple[kit.Platform, Pebble]) -> None:
    platform, _ = acme_platform
    pid = int((platform.home / "router" / "caddy.pid").read_text())

    ports = listening_tcp_ports(pid)

    router_ports = {platform.router_port, platform.router_https_port}
    if platform.env.get("MYPAAS_ROUTER") == "haproxy":  # Caddy only terminates TLS, on unix sockets
        assert ports == set()
        assert haproxy_ports(platform.home / "router" / "haproxy.pid") == router_ports
    else:
        assert ports == router_ports
    assert (platform.home / "router" / "caddy-admin.sock").is_socket()


def haproxy_ports(pid_file: Path) -> set[int]:
    """The TCP ports HAProxy's workers (the master's children) listen on."""
    master = int(pid_file.read_text())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {port for child in children for port in listening_tcp_ports(int(child))}
