"""The platform CA's certificate, public: what `mypaas login` shows (its fingerprint) and pins before it
sends a password, and what a host or a browser is told to trust."""

from __future__ import annotations

from fastapi import APIRouter

from mypaas.manager.platform import Platform


def tls_routes(v1: APIRouter, platform: Platform) -> None:
    @v1.get("/tls/ca", tags=["platform"])
    def platform_ca() -> dict[str, str]:
        """The platform CA (PEM) and its fingerprint (no token needed): it signs the certificate the
        API, the registry and the mirror serve beyond loopback. Check the fingerprint on the manager
        (`mypaas status`) before trusting it."""
        return {"ca": platform.pki.ca_pem(), "fingerprint": platform.pki.fingerprint()}
