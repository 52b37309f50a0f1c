"""The platform's own certificate authority: made at first start under ``$MYPAAS_HOME/tls`` (the CA's
key never leaves it), it signs the server certificate the API, the registry and the mirror present once
they listen beyond loopback, and the client certificates hosts show the mirror. Hosts' engines and the
CLI (pinned at ``mypaas login``) trust the CA, so the server certificate can be renewed freely."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397
CLIENT_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)  # a server certificate this close to expiry is replaced


@dataclass(frozen=True)
class ServerFiles:
    """What a TLS listener needs (PEM files): its certificate and key, and the CA that signed them."""

    cert: Path
    key: Path
    ca: Path


def fingerprint(pem_or_der: bytes) -> str:
    """``SHA256:<64 hex digits>`` of a certificate (as ``openssl x509 -fingerprint -sha256`` shows it,
    without the colons)."""
    der = (
        x509.load_pem_x509_certificate(pem_or_der).public_bytes(serialization.Encoding.DER)
        if pem_or_der.lstrip().startswith(b"-----")
        else pem_or_der
    )
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def server_names(addresses: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The names and addresses the server certificate covers: this machine as the hosts and the CLI
    reach it (``addresses``: cluster_addr, api_host; hostname, loopback) plus ``extra`` (tls_names)."""
    names = [*addresses, *extra, socket.gethostname(), "localhost", "127.0.0.1"]
    return [n for n in dict.fromkeys(n.strip() for n in names) if n and n not in ("0.0.0.0", "::")]  # noqa: S104


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _expiry(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.isoformat()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class PlatformCA:
    """The CA and the server certificate in ``folder`` (0700; keys 0600), made or renewed on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca_cert = folder / "ca.crt"
        self.ca_key = folder / "ca.key"
        self.server = ServerFiles(cert=folder / "server.crt", key=folder / "server.key", ca=self.ca_cert)

    def ensure(self, names: Sequence[str], now: datetime.datetime | None = None) -> ServerFiles:
        """Make the CA if there is none, and a server certificate for ``names`` if there is none, it
        expires within RENEW_BEFORE, it lacks one of ``names`` or another CA signed it."""
        now = now or _now()
        self._ensure_ca(now)
        if self._server_stale(names, now):
            self._issue_server(names, now)
        return self.server

    def fingerprint(self) -> str:
        return fingerprint(self.ca_cert.read_bytes())

    def status(self, serving: ServerFiles | None) -> dict[str, object]:
        """The CA's fingerprint (what `mypaas login` asks users to check) and whether TLS is served."""
        return {
            "ca_fingerprint": self.fingerprint(),
            "ca_path": str(self.ca_cert),
            "serving": serving is not None,
            "server_expires": _expiry(serving.cert) if serving is not None else None,
        }

    def ca_pem(self) -> str:
        return self.ca_cert.read_text()

    def hosts_client(self, now: datetime.datetime | None = None) -> tuple[Path, Path]:
        """The client certificate (cert and key files) the hosts and this machine show the mirror: made
        once, renewed when it nears expiry."""
        now = now or _now()
        cert, key = self.folder / "hosts-client.crt", self.folder / "hosts-client.key"
        try:
            fresh = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc - now > RENEW_BEFORE
        except (OSError, ValueError):
            fresh = False
        if not (fresh and key.exists()):
            cert_pem, key_pem = self.issue_client("mypaas-hosts", now)
            _write_private(key, key_pem)
            _write_private(cert, cert_pem)
        return cert, key

    def issue_client(self, name: str, now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
        """A client certificate (PEM cert, PEM key) for ``name``: what a host shows the mirror."""
        now = now or _now()
        self._ensure_ca(now)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
            key,
            now,
            CLIENT_DAYS,
            [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])],
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def _ensure_ca(self, now: datetime.datetime) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        if self.ca_cert.exists() and self.ca_key.exists():
            return
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MyPaas"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"MyPaas platform CA ({socket.gethostname()})"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca_key, _key_pem(key))
        _write_private(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
        self.server.cert.unlink(missing_ok=True)  # signed by a CA that is gone

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):  # pragma: no cover - we write EC keys only
            raise ValueError(f"{self.ca_key} is not an EC key")
        return cert, key

    def _server_stale(self, names: Sequence[str], now: datetime.datetime) -> bool:
        if not (self.server.cert.exists() and self.server.key.exists()):
            return True
        try:
            cert = x509.load_pem_x509_certificate(self.server.cert.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, x509.ExtensionNotFound):
            return True
        ca, _ = self._load_ca()
        covered = set(san) >= set(_san(names))
        return not covered or cert.issuer != ca.subject or cert.not_valid_after_utc - now < RENEW_BEFORE

    def _issue_server(self, names: Sequence[str], now: datetime.datetime) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "mypaas")]),
            key,
            now,
            SERVER_DAYS,
            [_san(names), x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])],
        )
        _write_private(self.server.key, _key_pem(key))
        _write_private(self.server.cert, cert.public_bytes(serialization.Encoding.PEM))

    def _sign(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        now: datetime.datetime,
        days: int,
        extensions: Sequence[x509.ExtensionType],
    ) -> x509.Certificate:
        ca, ca_key = self._load_ca()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(ca_key, hashes.SHA256())
