"""A user's own certificate is checked before it is stored (manager/certcheck.py): one line per refusal."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mypaas.errors import InvalidSpec
from mypaas.manager.certcheck import check_certificate, expiry_text

NOW = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)


def make(names: list[str], *, days: int = 90, start_days: int = -1) -> tuple[str, str]:
    """A self-signed certificate for ``names`` valid from NOW+start_days for ``days``, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example CA")])
    start = NOW + datetime.timedelta(days=start_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def refusal(cert: str, key: str, domain: str) -> tuple[str, str | None]:
    with pytest.raises(InvalidSpec) as error:
        check_certificate(cert, key, domain, now=NOW.timestamp())
    assert "\n" not in error.value.message
    return error.value.message, error.value.field


def test_a_matching_valid_certificate_passes() -> None:
    cert, key = make(["www.example.com", "example.com"])

    checked = check_certificate(cert, key, "example.com", now=NOW.timestamp())

    assert (checked.domain, checked.issuer) == ("example.com", "Example CA")
    assert expiry_text(checked.not_after) == "2027-03-04"


def test_a_wildcard_covers_one_label() -> None:
    cert, key = make(["*.example.com"])

    assert check_certificate(cert, key, "shop.example.com", now=NOW.timestamp()).domain == "shop.example.com"
    assert refusal(cert, key, "a.b.example.com")[1] == "domain"


def test_a_key_of_another_certificate_is_refused() -> None:
    cert, _ = make(["example.com"])
    _, other_key = make(["example.com"])

    assert refusal(cert, other_key, "example.com") == ("the key does not match the certificate", "key")


def test_a_certificate_for_another_domain_is_refused() -> None:
    cert, key = make(["other.org"])

    assert refusal(cert, key, "example.com") == (
        "the certificate does not cover example.com (it is for other.org)",
        "domain",
    )


def test_an_expired_or_not_yet_valid_certificate_is_refused() -> None:
    old, old_key = make(["example.com"], days=30, start_days=-60)
    early, early_key = make(["example.com"], start_days=3)

    assert refusal(old, old_key, "example.com") == ("the certificate expired on 2026-11-05", "cert")
    assert refusal(early, early_key, "example.com") == (
        "the certificate is not valid before 2026-12-08",
        "cert",
    )


@pytest.mark.parametrize(
    ("cert", "key", "expected"),
    [
        ("not a certificate", "", ("the certificate is not a PEM certificate (BEGIN CERTIFICATE)", "cert")),
        (
            None,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ("the key is not a PEM private key (BEGIN PRIVATE KEY)", "key"),
        ),
        ("x" * 70_000, "", ("the certificate file is larger than 64 KB", "cert")),
    ],
)
def test_garbage_is_one_line(cert: str | None, key: str, expected: tuple[str, str]) -> None:
    good, _ = make(["example.com"])

    assert refusal(cert if cert is not None else good, key, "example.com") == expected
