"""Registry bearer tokens (the Docker registry token-auth spec), signed by the manager's own key.

Distribution trusts the certificate written next to the key (``rootcertbundle``) and finds it by the
token's ``kid``, computed the way Distribution's libtrust does (a base32 fingerprint of the key).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mypaas.errors import InvalidSpec

TOKEN_TTL_S = 300
_SCOPE = re.compile(r"(repository|registry):([a-z0-9._/:*-]+?):([a-z*,]+)")
ALL_ACTIONS = ("pull", "push", "delete")


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """libtrust's key id: base32 of the first 240 bits of the SHA-256 of the DER public key, in 4s."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


@dataclass(frozen=True)
class Access:
    """One grant: ``repository:shop/web:pull,push`` or ``registry:catalog:*``."""

    type: str
    name: str
    actions: tuple[str, ...] = field(default_factory=tuple)

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(scope: str) -> Access:
    """Parse one ``scope`` query value; the spec separates actions with commas."""
    match = _SCOPE.fullmatch(scope.strip())
    if match is None:
        raise InvalidSpec(f"invalid scope {scope!r}: expected TYPE:NAME:ACTIONS", field="scope")
    kind, name, actions = match.groups()
    return Access(type=kind, name=name, actions=tuple(a for a in actions.split(",") if a))


class TokenIssuer:
    """Holds the signing key (made at first start, 0600) and issues short-lived registry tokens."""

    def __init__(self, folder: Path, *, issuer: str = "mypaas", service: str = "mypaas-registry") -> None:
        self.issuer = issuer
        self.service = service
        self.key_path = folder / "token.key"
        self.cert_path = folder / "token.crt"
        folder.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists() or not self.cert_path.exists():
            self._generate()
        loaded = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise InvalidSpec(f"{self.key_path}: expected an EC private key", field="registry")
        self._key = loaded
        self.kid = key_id(loaded.public_key())

    def _generate(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mypaas registry token issuer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, subject: str, access: list[Access], ttl_s: int = TOKEN_TTL_S) -> dict[str, object]:
        """A token response as the spec shapes it (``token`` and ``access_token`` are the same JWT)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl_s,
            "jti": secrets.token_hex(12),
            "access": [a.claim() for a in access],
        }
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})
        issued = dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")
        return {"token": token, "access_token": token, "expires_in": ttl_s, "issued_at": issued}
