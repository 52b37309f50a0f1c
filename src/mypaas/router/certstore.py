"""What Caddy's storage and log say about each host's certificate (``mypaas domains ls``): read only.

Caddy keeps a certificate it obtained in ``certificates/<issuer>/<host>/<host>.crt`` under its data
folder (``<issuer>`` is ``local`` for its internal CA, else the ACME directory as a folder name, e.g.
``acme-v02.api.letsencrypt.org-directory``); a failed attempt is an error line of its JSON log (logger
``tls.obtain`` / ``tls.issuance.acme``…) naming the host as ``identifier``, and a success clears it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from mypaas.router.https import INTERNAL_ISSUER

LOG_TAIL_BYTES = 2 * 1024 * 1024  # the end of Caddy's log read for errors: bounded whatever its size
OBTAINED = ("certificate obtained successfully",)


@dataclass(frozen=True)
class StoredCert:
    """A certificate in Caddy's storage: who issued it (``internal``: Caddy's CA), its issuer's name and
    its expiry (unix time)."""

    host: str
    internal: bool
    ca: str  # the issuer folder: "local", or the ACME directory (e.g. acme-v02.api.letsencrypt.org-directory)
    issuer: str  # the certificate's issuer (common name)
    not_after: float


def stored_certs(storage_dir: Path, hosts: Collection[str]) -> dict[str, StoredCert]:
    """The certificates of ``hosts`` in Caddy's storage folder (its data folder ``caddy``); a host with
    none (or one that cannot be read) is left out."""
    found: dict[str, StoredCert] = {}
    with contextlib.suppress(OSError):
        for issuer in sorted((storage_dir / "certificates").iterdir()):
            for host in hosts:
                cert = _read(issuer / host / f"{host}.crt")
                if cert is not None and (host not in found or found[host].internal):
                    found[host] = StoredCert(
                        host=host,
                        internal=issuer.name == INTERNAL_ISSUER,
                        ca=issuer.name,
                        issuer=_issuer_name(cert),
                        not_after=cert.not_valid_after_utc.timestamp(),
                    )
    return found


def _read(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return None


def _issuer_name(cert: x509.Certificate) -> str:
    found = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = found[0].value if found else cert.issuer.rfc4514_string()
    return value if isinstance(value, str) else value.decode()


def last_errors(log_path: Path, hosts: Collection[str], max_bytes: int = LOG_TAIL_BYTES) -> dict[str, str]:
    """The last certificate error Caddy logged for each of ``hosts`` (those it obtained one for since are
    left out), from the last ``max_bytes`` of its log."""
    errors: dict[str, str] = {}
    for entry in _entries(log_path, max_bytes):
        host = entry.get("identifier")
        if not isinstance(host, str) or host not in hosts:
            continue
        message = entry.get("msg")
        if entry.get("level") == "error":
            errors[host] = _error_text(entry)
        elif message in OBTAINED:
            errors.pop(host, None)
    return errors


def _entries(log_path: Path, max_bytes: int) -> list[dict[str, object]]:
    try:
        with log_path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - max_bytes))
            tail = log.read(max_bytes)
    except OSError:
        return []
    entries = []
    for line in tail.splitlines():
        if not line.startswith(b"{"):
            continue  # the first line may be cut, and Caddy writes a few plain lines at start
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and str(entry.get("logger", "")).startswith("tls"):
                entries.append(entry)
    return entries


def _error_text(entry: dict[str, object]) -> str:
    """One line: what failed (Caddy's ``error``, else its message)."""
    text = str(entry.get("error") or entry.get("msg") or "failed")
    return " ".join(text.split())[:300]
