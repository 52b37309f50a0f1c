"""The HTTPS half of the router's Caddy config: which certificate each host gets, and HTTP→HTTPS redirects.

Pure, no I/O. Hosts under a base domain without public DNS (``localhost``, ``*.localhost``, IPs, ``.test``,
``.internal`` …) get a certificate from Caddy's internal CA and stay served over plain HTTP too; every
other host (the custom domains) gets one from the ACME CA (Let's Encrypt unless ``acme_ca`` says
otherwise), or the user's own (``certs add``). A host whose trusted certificate is already there redirects
HTTP to HTTPS, unless its app keeps plain HTTP (``Route.plain_http``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

# Top-level names that never have public DNS (RFC 2606, 6761, 6762, 8375, ICANN's .internal).
PRIVATE_SUFFIXES = ("localhost", "test", "example", "invalid", "local", "internal", "lan", "home.arpa")
INTERNAL_ISSUER = "local"  # Caddy's internal CA's id, also its folder in the certificate storage


@dataclass(frozen=True)
class Https:
    """How the router serves HTTPS: on ``port``, with certificates from ``acme_ca`` (an ACME directory
    URL; "" = Let's Encrypt) for public hosts and from Caddy's internal CA for ``base_domain``'s hosts
    when it has no public DNS."""

    port: int
    base_domain: str
    acme_ca: str = ""
    acme_ca_root: str = ""  # a PEM file of the CA's root, when the ACME server's own is not public
    acme_email: str = ""


@dataclass(frozen=True)
class UserCert:
    """A user's own certificate (PEM chain) and key for ``domain`` (``certs add``)."""

    domain: str
    cert_pem: str
    key_pem: str


@functools.lru_cache(maxsize=1024)  # a render asks this of the base domain once per host
def is_private(name: str) -> bool:
    """True for an IP address or a name under a suffix without public DNS."""
    name = name.lower().rstrip(".")
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        pass
    return any(name == s or name.endswith(f".{s}") for s in PRIVATE_SUFFIXES)


def internal_host(https: Https, host: str) -> bool:
    """Whether ``host`` gets its certificate from Caddy's internal CA (the base domain's, no public DNS)."""
    base = https.base_domain.lower()
    under_base = host == base or host.endswith(f".{base}")
    return under_base and is_private(base)


def redirects(https: Https, hosts: Sequence[str], certified: Collection[str]) -> tuple[str, ...]:
    """The ``hosts`` to redirect to HTTPS: those with a trusted certificate (ACME's or the user's)."""
    return tuple(h for h in hosts if h in certified and not internal_host(https, h))


def redirect_handler(https_port: int) -> dict[str, Any]:
    """A permanent redirect to the same host and URI over HTTPS."""
    port = "" if https_port == 443 else f":{https_port}"
    return {
        "handler": "static_response",
        "status_code": 308,
        "headers": {"Location": [f"https://{{http.request.host}}{port}{{http.request.uri}}"]},
    }


def tls_app(https: Https, hosts: Sequence[str], certs: Sequence[UserCert]) -> dict[str, Any]:
    """Caddy's ``tls`` app: the user's certificates, then who issues the others (internal CA or ACME)."""
    own = {c.domain for c in certs}
    internal = sorted(h for h in hosts if internal_host(https, h) and h not in own)
    public = sorted(h for h in hosts if not internal_host(https, h) and h not in own)
    policies: list[dict[str, Any]] = []
    if internal:
        policies.append({"subjects": internal, "issuers": [{"module": "internal"}]})
    if public:
        policies.append({"subjects": public, "issuers": [acme_issuer(https)]})
    app: dict[str, Any] = {"automation": {"policies": policies}} if policies else {}
    if certs:
        app["certificates"] = {
            "load_pem": [{"certificate": c.cert_pem, "key": c.key_pem, "tags": [c.domain]} for c in certs]
        }
    return app


def acme_issuer(https: Https) -> dict[str, Any]:
    issuer: dict[str, Any] = {"module": "acme"}
    if https.acme_ca:
        issuer["ca"] = https.acme_ca
    if https.acme_ca_root:
        issuer["trusted_roots_pem_files"] = [https.acme_ca_root]
    if https.acme_email:
        issuer["email"] = https.acme_email
    return issuer


def pki_app() -> dict[str, Any]:
    """The internal CA never installs its root into this machine's trust store (Caddy would, as root)."""
    return {"certificate_authorities": {INTERNAL_ISSUER: {"install_trust": False}}}
