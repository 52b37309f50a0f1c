"""The platform CA the CLI trusts: pinned at `mypaas login` (trust on first use, its fingerprint shown,
or ``--fingerprint`` for scripts), kept with the credentials and checked on every call after. Standard
library only (every command comes here): fingerprints are computed with ``ssl`` and ``hashlib``."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path

from mypaas.cli import credentials
from mypaas.errors import InvalidSpec

CA_PATH = "/api/v1/tls/ca"
CA_FILE_ENV = "MYPAAS_CA_FILE"  # a CA (PEM) to verify the API with, for scripts that set MYPAAS_URL


def fingerprint(pem: str) -> str:
    """``SHA256:<64 hex digits>`` of a PEM certificate (openssl x509 -fingerprint -sha256, no colons)."""
    return "SHA256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def normalize(value: str) -> str:
    """A fingerprint as typed (``SHA256:`` optional, colons and case free) in the form shown."""
    text = value.strip()
    if text[:7].upper() == "SHA256:":
        text = text[7:]
    digits = text.replace(":", "").lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise InvalidSpec(
            f"invalid fingerprint {value!r}: expected SHA256: and 64 hex digits", field="fingerprint"
        )
    return "SHA256:" + digits


def pinned_ca(url: str) -> str:
    """The CA pinned for ``url`` at login ("" when none, or the credentials are for another URL)."""
    try:
        saved = credentials.stored()
    except InvalidSpec:
        return ""
    return saved.ca if saved is not None and saved.url.rstrip("/") == url.rstrip("/") else ""


def verify_for(url: str, ca: str | None = None, local_ca: Path | None = None) -> ssl.SSLContext | bool:
    """How the CLI checks the API's certificate at ``url``: against ``ca`` (PEM) when given, else the
    CA pinned for it at login, else $MYPAAS_CA_FILE, else this machine's platform CA (``local_ca``, for
    its own API), else the system's CAs. Plain http:// gets a context that trusts no CA at all, so it
    would fail closed if it were ever used (redirects are not followed)."""
    if url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pem = ca if ca is not None else pinned_ca(url)
    if pem:
        return ssl.create_default_context(cadata=pem)
    from_env = os.environ.get(CA_FILE_ENV, "").strip()
    if from_env:
        return ssl.create_default_context(cafile=from_env)
    if local_ca is not None and local_ca.exists():
        return ssl.create_default_context(cafile=str(local_ca))
    return True


def refused(url: str) -> str:
    """The one line shown when the API's certificate is not signed by the CA the CLI trusts."""
    pem = pinned_ca(url)
    trusted = f" (pinned at login: {fingerprint(pem)})" if pem else ""
    return (
        f"refused: the certificate of {url} is not signed by the CA this CLI trusts{trusted}: it changed,"
        f" or something is in between; if the platform's CA was replaced on purpose, `mypaas login {url}`"
        " again"
    )
