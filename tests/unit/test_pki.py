"""The platform CA (manager/pki.py): made once, owner-only files, a server certificate for the manager's
names renewed before expiry, the hosts' client certificate; and where TLS is served (listeners, the
registry's config, the token realm, what hosts get in certs.d)."""

from __future__ import annotations

import datetime
import hashlib
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mypaas.api.server import listeners
from mypaas.cli.pinning import fingerprint as cli_fingerprint
from mypaas.iaas.local import LocalEngineConfig
from mypaas.manager import parts
from mypaas.manager.pki import PlatformCA, fingerprint, server_names
from mypaas.registry.distribution import Tls, render
from mypaas.settings import Settings

NAMES = ["10.0.0.1", "manager.example", "127.0.0.1"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_ca_and_a_server_certificate_signed_by_it_owner_only(tmp_path: Path) -> None:
    pki = PlatformCA(tmp_path / "tls")
    files = pki.ensure(NAMES)

    assert _mode(tmp_path / "tls") == 0o700
    for path in (pki.ca_key, pki.ca_cert, files.key, files.cert):
        assert _mode(path) == 0o600, path
    ca, server = _cert(pki.ca_cert), _cert(files.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1", "127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["manager.example"]
    # a TLS client that trusts the CA accepts the server certificate for these names
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(files.cert), str(files.key))  # the pair matches


def test_the_fingerprint_is_the_sha256_of_the_ca_certificate_in_both_places(tmp_path: Path) -> None:
    pki = PlatformCA(tmp_path)
    pki.ensure(NAMES)
    der = _cert(pki.ca_cert).public_bytes(serialization.Encoding.DER)
    expected = "SHA256:" + hashlib.sha256(der).hexdigest()
    assert pki.fingerprint() == fingerprint(der) == cli_fingerprint(pki.ca_pem()) == expected
    assert pki.status(None) == {
        "ca_fingerprint": expected,
        "ca_path": str(pki.ca_cert),
        "serving": False,
        "server_expires": None,
    }


def test_the_ca_is_made_once_and_the_server_certificate_renewed_when_due(tmp_path: Path) -> None:
    pki = PlatformCA(tmp_path)
    files = pki.ensure(NAMES)
    ca, first = pki.ca_cert.read_bytes(), files.cert.read_bytes()

    assert pki.ensure(NAMES).cert.read_bytes() == first  # nothing due: kept
    assert pki.ensure(NAMES[:1]).cert.read_bytes() == first  # fewer names: still covered
    assert PlatformCA(tmp_path).ensure(NAMES).cert.read_bytes() == first  # a restart keeps it

    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=380)  # 17 days left
    renewed = pki.ensure(NAMES, now=later).cert.read_bytes()
    assert renewed != first
    assert _cert(files.cert).not_valid_after_utc > later + datetime.timedelta(days=300)

    pki.ensure([*NAMES, "10.0.0.9"])  # a new cluster address: a certificate that covers it
    san = _cert(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.0.0.9" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert pki.ca_cert.read_bytes() == ca  # the CA, which hosts and CLIs pinned, never changes


def test_the_hosts_client_certificate_is_for_client_auth_and_made_once(tmp_path: Path) -> None:
    pki = PlatformCA(tmp_path)
    cert, key = pki.hosts_client()
    client = _cert(cert)
    client.verify_directly_issued_by(_cert(pki.ca_cert))
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _mode(key) == 0o600
    assert pki.hosts_client() == (cert, key) and _cert(cert) == client


def test_server_names_leave_out_wildcard_addresses() -> None:
    names = server_names(["", "0.0.0.0", "10.0.0.1"], ["paas.example"])
    assert names[:2] == ["10.0.0.1", "paas.example"]
    assert "0.0.0.0" not in names and {"localhost", "127.0.0.1"} <= set(names)


def test_api_listeners_plain_on_loopback_only(tmp_path: Path) -> None:
    files = PlatformCA(tmp_path).ensure(NAMES)
    single = Settings(home=tmp_path)
    assert listeners(single, None) == [("127.0.0.1", None)]
    assert not single.tls_listen and single.api_url == "http://127.0.0.1:8470"

    cluster = Settings(home=tmp_path, cluster_addr="10.0.0.1")
    assert cluster.tls_listen
    assert listeners(cluster, files) == [("127.0.0.1", None), ("10.0.0.1", files)]
    assert cluster.token_realm == "https://10.0.0.1:8470/api/v1/registry/token"

    everywhere = Settings(home=tmp_path, api_host="0.0.0.0", cluster_addr="10.0.0.1")
    assert listeners(everywhere, files) == [("0.0.0.0", files)]
    assert everywhere.api_url == "https://127.0.0.1:8470"  # the certificate covers 127.0.0.1


def test_the_registry_serves_tls_and_the_mirror_asks_for_client_certificates(tmp_path: Path) -> None:
    pki = PlatformCA(tmp_path)
    files = pki.ensure(NAMES)
    common = {"addr": "0.0.0.0:5000", "storage": tmp_path, "secret": "s", "auth": None}
    registry = render(**common, tls=Tls(cert=files.cert, key=files.key, ca=files.ca))  # type: ignore[arg-type]
    assert registry["http"]["tls"] == {"certificate": str(files.cert), "key": str(files.key)}
    mirror = render(**common, tls=Tls(files.cert, files.key, files.ca, client=pki.hosts_client()))  # type: ignore[arg-type]
    assert mirror["http"]["tls"]["clientcas"] == [str(files.ca)]
    assert "tls" not in render(**common)["http"]  # type: ignore[arg-type]


def test_hosts_get_the_ca_in_certs_d_not_an_insecure_registry(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, cluster_addr="10.0.0.1")
    pki = PlatformCA(settings.tls_dir)
    assert parts.registries_for_hosts(settings) == []
    certs = parts.certificates_for_hosts(settings, pki)
    assert certs["10.0.0.1:5000"] == {"ca.crt": pki.ca_cert.read_bytes()}
    assert set(certs["10.0.0.1:5001"]) == {"ca.crt", "client.cert", "client.key"}

    engine = LocalEngineConfig(tmp_path / "daemon.json", certs_d=tmp_path / "certs.d")
    assert engine.install_certs(certs)
    assert not engine.install_certs(certs)  # unchanged: nothing written
    assert (tmp_path / "certs.d" / "10.0.0.1:5000" / "ca.crt").read_bytes() == pki.ca_cert.read_bytes()
    assert _mode(tmp_path / "certs.d" / "10.0.0.1:5001" / "client.key") == 0o600
