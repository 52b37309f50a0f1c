"""A user's own certificates (``mypaas certs add|ls|rm``): one per domain of an app, checked (certcheck.py)
before it is stored, the key encrypted with the platform's key (manager/vault) and never shown again.
The router loads them (``served``): such a domain gets no certificate from an ACME CA, and, being
trusted, redirects HTTP to HTTPS. They go with their app (and ``certs rm``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import check_domain
from mypaas.errors import BackendError, InvalidSpec, NotFound
from mypaas.manager.certcheck import check_certificate, expiry_text
from mypaas.manager.domain_certs import OwnCert, RouterFiles, domain_rows
from mypaas.manager.records import find_app
from mypaas.manager.state.models import AppRow, CertRow
from mypaas.manager.vault import Cipher
from mypaas.router.https import UserCert

log = logging.getLogger("mypaas.certs")


@dataclass(frozen=True)
class CertInfo:
    """What ``certs ls`` shows of a stored certificate (never its key)."""

    app: str
    domain: str
    issuer: str
    not_after: float

    def as_dict(self) -> dict[str, object]:
        return {
            "app": self.app,
            "domain": self.domain,
            "issuer": self.issuer,
            "not_after": self.not_after,
            "expires": expiry_text(self.not_after),
        }


class UserCerts:
    """Thread-safe: the API adds and lists, the router reads (``served``) on every reconcile pass."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: Cipher,
        *,
        base_domain: str,
        files: RouterFiles | None = None,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._base_domain = base_domain
        self._files = files or RouterFiles(Path("/nonexistent"), Path("/nonexistent"), https=False)
        self._wake = wake
        self._clock = clock
        self._keys: dict[tuple[str, str], str] = {}  # (domain, key digest) -> key PEM
        self._lock = threading.Lock()

    def add(self, app: str, domain: str, cert_pem: str, key_pem: str) -> CertInfo:
        """Store ``cert_pem`` and ``key_pem`` for ``domain`` of ``app`` (replacing the one there)."""
        domain = check_domain(domain)
        checked = check_certificate(cert_pem, key_pem, domain, now=self._clock())
        key = key_pem.encode()
        with self._sessions.begin() as s:
            row = find_app(s, app)
            self._check_owner(row, domain)
            old = s.get(CertRow, domain)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(
                CertRow(
                    domain=domain,
                    app_id=row.id,
                    cert_pem=cert_pem,
                    key=self._cipher.encrypt(key),
                    key_digest=self._cipher.digest(key),
                    issuer=checked.issuer,
                    not_after=checked.not_after,
                )
            )
        self._wake()
        return CertInfo(app=app, domain=domain, issuer=checked.issuer, not_after=checked.not_after)

    def _check_owner(self, app: AppRow, domain: str) -> None:
        """``domain`` must be one of the app's hosts: its custom domains, or APP.BASE_DOMAIN."""
        if domain == f"{app.name}.{self._base_domain}" or any(d.domain == domain for d in app.domains):
            return
        raise InvalidSpec(
            f"{domain} is not a domain of {app.name} (first: mypaas domains add {app.name} {domain})",
            field="domain",
        )

    def listing(self, app: str | None = None) -> list[CertInfo]:
        """The stored certificates (of ``app``, or of every app), by app then domain."""
        with self._sessions() as s:
            query = select(CertRow, AppRow.name).join(AppRow, AppRow.id == CertRow.app_id)
            if app is not None:
                query = query.where(CertRow.app_id == find_app(s, app).id)
            rows = s.execute(query).all()
            found = [CertInfo(name, c.domain, c.issuer, c.not_after) for c, name in rows]
        return sorted(found, key=lambda c: (c.app, c.domain))

    def domains(self, app: str) -> list[dict[str, object]]:
        """The app's custom domains, each with the certificate serving it (``domains ls``)."""
        with self._sessions() as s:
            row = find_app(s, app)
            names = sorted(d.domain for d in row.domains)
            own = {c.domain: OwnCert(c.issuer, c.not_after) for c in row.certs}
        return domain_rows(names, own, self._files)

    def remove(self, app: str, domain: str) -> None:
        domain = check_domain(domain)
        with self._sessions.begin() as s:
            row = find_app(s, app)
            cert = s.get(CertRow, domain)
            if cert is None or cert.app_id != row.id:
                raise NotFound(f"app {app} has no certificate of its own for {domain}", field="domain")
            s.delete(cert)
        self._wake()

    def served(self) -> list[UserCert]:
        """Every stored certificate with its key, for the router (apps being removed included: their
        routes go with them)."""
        with self._sessions() as s:
            rows = [(c.domain, c.cert_pem, c.key, c.key_digest) for c in s.scalars(select(CertRow))]
        served = []
        for domain, pem, token, digest in rows:
            key = self._key(domain, token, digest)
            if key is not None:
                served.append(UserCert(domain, pem, key))
        return served

    def _key(self, domain: str, token: str, digest: str) -> str | None:
        """The key's PEM; None (logged) when it cannot be decrypted: the other routes are still pushed."""
        with self._lock:
            key = self._keys.get((domain, digest))
            if key is None:
                try:
                    key = self._keys[(domain, digest)] = self._cipher.decrypt(token, digest).decode()
                except BackendError as exc:
                    log.error("certs: the key of %s is left out: %s", domain, exc)
            return key
