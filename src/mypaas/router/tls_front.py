"""The Caddy that terminates TLS for the HAProxy router (router/haproxy.py): pure config, and its driver.

HAProxy passes the HTTPS port through to Caddy's TLS listener (a unix socket in the router's folder);
Caddy picks the certificate by SNI exactly as when it is the router (router/https.py: the internal CA
for the base domain's hosts, ACME for the others, the users' own) and sends each decrypted request to
HAProxy's ``mypaas_https_in`` frontend, so HAProxy routes and counts HTTPS requests as HTTP ones.
HAProxy sends ``/.well-known/acme-challenge/`` on the HTTP port to Caddy's HTTP listener. Caddy still
thinks its HTTP and HTTPS ports are the router's: the ACME CA validates there, through HAProxy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from mypaas.router import https as tls
from mypaas.router.caddy import CaddyRouter, RenderInputs
from mypaas.router.config import NOT_FOUND_BODY, Route, served
from mypaas.router.haproxy_config import Files
from mypaas.router.https import Https, UserCert

ACME_SERVER = "mypaas-acme"
TLS_SERVER = "mypaas-tls"


def render_front(
    routes: Sequence[Route],
    *,
    admin: str,
    https: Https,
    http_port: int,
    files: Files,
    certs: Sequence[UserCert] = (),
) -> dict[str, Any]:
    """Caddy's config: TLS for every routed host on ``files.caddy_tls``, the requests proxied to
    HAProxy; ACME HTTP-01 answers on ``files.caddy_http``."""
    hosts = [host for route in served(routes) for host in route.hosts]
    own = sorted({c.domain for c in certs})
    proxy = {"handler": "reverse_proxy", "upstreams": [{"dial": f"unix/{files.https_in}"}]}
    apps: list[dict[str, Any]] = (
        [{"match": [{"host": hosts}], "handle": [proxy], "terminal": True}] if hosts else []
    )
    not_found = {
        "handle": [
            {
                "handler": "static_response",
                "status_code": 404,
                "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
                "body": NOT_FOUND_BODY + "\n",
            }
        ],
        "terminal": True,
    }
    servers = {
        # Caddy answers ACME challenges on every server before its routes (Server.ServeHTTP)
        ACME_SERVER: {
            "listen": [f"unix/{files.caddy_http}"],
            "automatic_https": {"disable": True},
            "routes": [not_found],
        },
        TLS_SERVER: {
            "listen": [f"unix/{files.caddy_tls}"],
            "automatic_https": {"disable_redirects": True, **({"skip_certificates": own} if own else {})},
            "tls_connection_policies": [{}],
            "routes": [*apps, not_found],
        },
    }
    return {
        "admin": {"listen": admin},
        "apps": {
            "http": {"http_port": http_port, "https_port": https.port, "servers": servers},
            "tls": tls.tls_app(https, hosts, certs),
            "pki": tls.pki_app(),
        },
    }


class CaddyTlsFront(CaddyRouter):
    """Caddy as the HAProxy router's TLS terminator: the same process management, admin API, storage
    and certificates as CaddyRouter, with render_front's config (it listens on no TCP port)."""

    def __init__(self, *, files: Files, http_port: int, https: Https, **kwargs: Any) -> None:
        super().__init__(https=https, listen_port=http_port, **kwargs)
        self.files = files
        self.tls = https

    def _render(self, inputs: RenderInputs) -> dict[str, Any]:
        """render_front's config: what ``apply`` pushes and what Caddy starts with (CaddyRouter's
        ``apply``, ``render`` and ``_start`` all render through here)."""
        routes, _certified, certs = inputs
        return render_front(
            routes,
            admin=self.admin,
            https=self.tls,
            http_port=self.listen_port,
            files=self.files,
            certs=certs,
        )

    def trusted_hosts(self) -> Collection[str]:
        """The hosts with a trusted certificate: from a trusted CA in the storage, or the user's own."""
        return {*self.certified_hosts(), *(c.domain for c in self.user_certs())}
