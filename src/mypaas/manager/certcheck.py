"""A user's own certificate for a domain (``certs add``), checked before it is stored: PEM that parses, a
key that matches the certificate, a certificate that covers the domain and has not expired.

Pure, no I/O; each refusal is one ``InvalidSpec`` line naming the field (``cert``, ``key``, ``domain``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from mypaas.errors import InvalidSpec

MAX_PEM_BYTES = 64 * 1024  # a chain of a few certificates; anything larger is not a certificate file


@dataclass(frozen=True)
class CheckedCert:
    """A certificate that passed: its domain, issuer (common name) and expiry (unix time)."""

    domain: str
    issuer: str
    not_after: float


def check_certificate(cert_pem: str, key_pem: str, domain: str, *, now: float) -> CheckedCert:
    """``cert_pem`` (the certificate first, then its chain) and ``key_pem`` for ``domain``, or InvalidSpec."""
    chain = _certificates(cert_pem)
    leaf = chain[0]
    key = _private_key(key_pem)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
        raise InvalidSpec("the key does not match the certificate", field="key")
    names = _names(leaf)
    if not any(_covers(name, domain) for name in names):
        shown = ", ".join(names) or "no DNS name"
        raise InvalidSpec(f"the certificate does not cover {domain} (it is for {shown})", field="domain")
    not_after = leaf.not_valid_after_utc.timestamp()
    if not_after <= now:
        day = leaf.not_valid_after_utc.date().isoformat()
        raise InvalidSpec(f"the certificate expired on {day}", field="cert")
    if leaf.not_valid_before_utc.timestamp() > now:
        day = leaf.not_valid_before_utc.date().isoformat()
        raise InvalidSpec(f"the certificate is not valid before {day}", field="cert")
    return CheckedCert(
        domain=domain, issuer=_common_name(leaf.issuer) or leaf.issuer.rfc4514_string(), not_after=not_after
    )


def _certificates(pem: str) -> list[x509.Certificate]:
    if len(pem.encode()) > MAX_PEM_BYTES:
        raise InvalidSpec(f"the certificate file is larger than {MAX_PEM_BYTES // 1024} KB", field="cert")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise InvalidSpec(
            "the certificate is not a PEM certificate (BEGIN CERTIFICATE)", field="cert"
        ) from None
    return chain


def _private_key(pem: str) -> PrivateKeyTypes:
    if len(pem.encode()) > MAX_PEM_BYTES:
        raise InvalidSpec(f"the key file is larger than {MAX_PEM_BYTES // 1024} KB", field="key")
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise InvalidSpec("the key is encrypted: give it without a passphrase", field="key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidSpec("the key is not a PEM private key (BEGIN PRIVATE KEY)", field="key") from None


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        name = _common_name(cert.subject)
        return [name] if name else []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def _covers(name: str, domain: str) -> bool:
    """``name`` (maybe ``*.example.com``) matches ``domain``: a wildcard covers one label."""
    if name.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and rest == name[2:]
    return name == domain


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = found[0].value if found else ""
    return value if isinstance(value, str) else value.decode()


def expiry_text(not_after: float) -> str:
    """``2027-03-01`` for a unix time."""
    return datetime.datetime.fromtimestamp(not_after, datetime.UTC).date().isoformat()
