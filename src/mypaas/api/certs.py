"""Routes of the users' own certificates (`mypaas certs add|ls|rm`): the certificate and its key go in as
PEM text; the key never comes back out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mypaas.api.deps import User
from mypaas.api.scoping import only_seen, seen_apps
from mypaas.manager.platform import Platform


class CertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(description="one of the app's domains (or APP.BASE_DOMAIN)")
    cert: str = Field(description="the certificate, PEM, followed by its chain")
    key: str = Field(description="its private key, PEM, without a passphrase (never shown back)")


def cert_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/certs", tags=["domains"])
    def list_all_certs(who: User) -> list[dict[str, Any]]:
        """The users' own certificates of the caller's teams' apps (every app's for the platform admin)."""
        found = [c.as_dict() for c in platform.certs.listing()]
        return only_seen(found, seen_apps(platform, who))

    @v1.get("/apps/{name}/domains/status", tags=["domains"])
    def domain_status(name: str, _: User) -> list[dict[str, Any]]:
        """The app's custom domains, each with the certificate serving it: ``certificate`` (user, acme,
        internal or none), ``issuer``, ``ca`` (the ACME directory), ``expires``, and ``error`` (the last
        one Caddy logged getting a certificate, or why there is none)."""
        return platform.certs.domains(name)

    @v1.get("/apps/{name}/certs", tags=["domains"])
    def list_certs(name: str, _: User) -> list[dict[str, Any]]:
        """The app's own certificates: domain, issuer, expiry (never the key)."""
        return [c.as_dict() for c in platform.certs.listing(name)]

    @v1.post("/apps/{name}/certs", status_code=201, tags=["domains"])
    def add_cert(name: str, body: CertBody, _: User) -> dict[str, Any]:
        """Serve the app's ``domain`` with this certificate (replacing the one there): checked first
        (the key matches, the certificate covers the domain and is valid), the key stored encrypted."""
        return platform.certs.add(name, body.domain, body.cert, body.key).as_dict()

    @v1.delete("/apps/{name}/certs/{domain}", status_code=204, tags=["domains"])
    def remove_cert(name: str, domain: str, _: User) -> None:
        """Forget the app's own certificate for ``domain`` (it goes back to an ACME CA's)."""
        platform.certs.remove(name, domain)
