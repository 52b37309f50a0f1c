"""What ``mypaas domains ls`` shows of each custom domain of an app: which certificate serves it (the
user's own, an ACME CA's, Caddy's internal CA's, or none yet), its issuer and expiry, and the last error
Caddy logged while getting one. Read from the state store (the users' certificates) and from Caddy's
storage and log (router/certstore.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mypaas.manager.certcheck import expiry_text
from mypaas.router.certstore import StoredCert, last_errors, stored_certs

NO_CERT_YET = "no certificate yet (the domain's DNS must point at the router, port 80 reachable)"


@dataclass(frozen=True)
class RouterFiles:
    """Where the router keeps its certificates (Caddy's data folder) and its log; ``https`` False: the
    router serves plain HTTP only (``router_https_port: 0``)."""

    storage_dir: Path
    log_path: Path
    https: bool = True


@dataclass(frozen=True)
class OwnCert:
    issuer: str
    not_after: float


def domain_rows(
    domains: Sequence[str], own: Mapping[str, OwnCert], files: RouterFiles
) -> list[dict[str, object]]:
    """One row per domain: ``domain``, ``certificate`` (user, acme, internal or none), ``issuer``, ``ca``
    (the ACME directory), ``not_after`` and ``expires`` (None without one), ``error`` (None: no error)."""
    stored = stored_certs(files.storage_dir, domains) if files.https else {}
    errors = last_errors(files.log_path, domains) if files.https else {}
    return [_row(d, own.get(d), stored.get(d), errors.get(d), files.https) for d in domains]


def _row(
    domain: str, own: OwnCert | None, stored: StoredCert | None, error: str | None, https: bool
) -> dict[str, object]:
    row: dict[str, object] = {"domain": domain, "certificate": "none", "issuer": None, "ca": None}
    not_after: float | None = None
    if own is not None:
        row.update(certificate="user", issuer=own.issuer)
        not_after, error = own.not_after, None  # Caddy asks no CA for it: older errors are moot
    elif stored is not None:
        kind = "internal" if stored.internal else "acme"
        row.update(certificate=kind, issuer=stored.issuer, ca=None if stored.internal else stored.ca)
        not_after = stored.not_after
    elif not https:
        error = "HTTPS is off (router_https_port: 0)"
    elif error is None:
        error = NO_CERT_YET
    row.update(
        not_after=not_after, expires=expiry_text(not_after) if not_after is not None else None, error=error
    )
    return row
