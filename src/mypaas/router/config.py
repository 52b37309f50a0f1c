"""Render the router's whole Caddy JSON config from the healthy instances of each app: pure, no I/O.

The result is what ``POST /load`` on Caddy's admin API takes; ``config_hash`` tells whether it changed.
With ``access_log``, every request is also written there as one JSON line (see monitor/requests.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from mypaas.router import https as tls
from mypaas.router.https import Https, UserCert

SERVER_NAME = "mypaas"
TLS_SERVER_NAME = "mypaas-tls"
NOT_FOUND_BODY = "no app at this address"

# A refused connection (an instance being stopped) is retried on another upstream for up to TRY_DURATION:
# this is what lets a rolling deploy lose no request. A failed upstream is then skipped for FAIL_DURATION.
TRY_DURATION = "2s"
TRY_INTERVAL = "100ms"
FAIL_DURATION = "2s"

# The access log: one JSON line per request, in the router's log folder, rolled by Caddy so it stays bounded
# (at most ACCESS_LOG_ROLL_MB, plus ACCESS_LOG_KEEP gzipped older files). Request and response headers are
# left out: the monitor needs host, status and duration, and the lines stay small (about 300 bytes).
# Every host is logged, the 404 catch-all's too: Caddy 2.6's ``skip_unmapped_hosts`` compares the Host
# header as sent (with its port, case-sensitive), so it would drop app requests such as
# ``Host: shop.localhost:8080``. The reader counts only the hosts of an app. The admin API has no access log.
ACCESS_LOG = "access.log"
ACCESS_LOG_ROLL_MB = 10
ACCESS_LOG_KEEP = 3
ACCESS_LOGGER = "mypaas"  # Caddy names it http.log.access.mypaas


@dataclass(frozen=True)
class Route:
    """Where the requests for one app go: its host names and the addresses of its healthy instances."""

    app: str
    hosts: tuple[str, ...]  # e.g. ("shop.localhost", "www.example.com")
    upstreams: tuple[str, ...]  # "10.1.2.3:80" addresses of healthy instances; may be empty
    stopped: bool = False  # the app was stopped (`mypaas stop`): without upstreams, say so
    plain_http: bool = False  # served over HTTP too even with a trusted certificate (no redirect)


def served(routes: Sequence[Route]) -> tuple[Route, ...]:
    """``routes`` as a router serves them: by app, host names lower-cased, host names and upstreams sorted
    without repeats; a route without host names serves nothing and is left out. Two route lists with the
    same ``served`` render the same config: a router pushes again only when this changed."""
    return tuple(
        Route(
            app=route.app,
            hosts=tuple(sorted({host.lower() for host in route.hosts})),
            upstreams=tuple(sorted(set(route.upstreams))),
            stopped=route.stopped,
            plain_http=route.plain_http,
        )
        for route in sorted(routes, key=lambda r: r.app)
        if route.hosts
    )


def unavailable_body(app: str, stopped: bool = False) -> str:
    """The 503 answer of an app without a ready instance: stopped on purpose, or none healthy."""
    return f"app {app} is stopped (mypaas start {app})" if stopped else f"no healthy instance of {app}"


def render(
    routes: Sequence[Route],
    *,
    listen_port: int,
    admin: str,
    access_log: str | None = None,
    https: Https | None = None,
    certified: Collection[str] = (),
    certs: Sequence[UserCert] = (),
) -> dict[str, Any]:
    """The full Caddy config: one HTTP server, one route per app (by app name), then a 404 catch-all;
    with ``access_log`` (a file path), a JSON access log of every request there. With ``https``, a
    second server on its port serves the same routes over TLS (see router/https.py); on HTTP, the hosts
    in ``certified`` (a trusted certificate is stored) and those of ``certs`` (the user's own, loaded, and
    never asked of an ACME CA) redirect there unless their app keeps plain HTTP."""
    routes = served(routes)
    own = sorted({c.domain for c in certs}) if https is not None else []
    certified = {*certified, *own}  # the user's own certificates are trusted ones
    app_routes = [r for route in routes for r in _http_routes(route, https, certified)]
    server: dict[str, Any] = {
        "listen": [f":{listen_port}"],
        # Caddy would otherwise turn on HTTPS (and a redirect) for hosts such as *.localhost.
        "automatic_https": {"disable": True},
        "routes": [*app_routes, _text_route(404, NOT_FOUND_BODY)],
    }
    servers = {SERVER_NAME: server}
    http_app: dict[str, Any] = {"servers": servers}
    config: dict[str, Any] = {"admin": {"listen": admin}, "apps": {"http": http_app}}
    if https is not None:
        http_app.update(http_port=listen_port, https_port=https.port)
        servers[TLS_SERVER_NAME] = {
            "listen": [f":{https.port}"],
            # ours, only for hosts with a trusted cert; a host with the user's own certificate gets none
            "automatic_https": {"disable_redirects": True, **({"skip_certificates": own} if own else {})},
            "tls_connection_policies": [{}],
            "routes": [*(_app_route(route) for route in routes), _text_route(404, NOT_FOUND_BODY)],
        }
        hosts = [host for route in routes for host in route.hosts]
        config["apps"]["tls"] = tls.tls_app(https, hosts, certs)
        config["apps"]["pki"] = tls.pki_app()
    if access_log is not None:
        for each in servers.values():
            each["logs"] = {"default_logger_name": ACCESS_LOGGER}
        config["logging"] = _access_logging(access_log)
    return config


def _http_routes(route: Route, https: Https | None, certified: Collection[str]) -> list[dict[str, Any]]:
    """The HTTP server's routes of one app: a redirect for its hosts with a trusted certificate (when
    HTTPS is on and the app does not keep plain HTTP), then the app itself for the others."""
    moved = () if https is None or route.plain_http else tls.redirects(https, route.hosts, certified)
    if https is None or not moved:
        return [_app_route(route)]
    handler = tls.redirect_handler(https.port)
    redirect = {"match": [{"host": list(moved)}], "handle": [handler], "terminal": True}
    rest = tuple(h for h in route.hosts if h not in moved)
    if not rest:
        return [redirect]
    return [redirect, _app_route(Route(route.app, rest, route.upstreams, route.stopped))]


def _access_logging(path: str) -> dict[str, Any]:
    """Caddy's ``logging``: access lines to ``path`` only (not into Caddy's own log on stderr)."""
    logger = f"http.log.access.{ACCESS_LOGGER}"
    return {
        "logs": {
            "default": {"exclude": [logger]},
            "access": {
                "writer": {
                    "output": "file",
                    "filename": path,
                    "roll_size_mb": ACCESS_LOG_ROLL_MB,
                    "roll_keep": ACCESS_LOG_KEEP,
                },
                "encoder": {
                    "format": "filter",
                    "wrap": {"format": "json"},
                    "fields": {
                        "request>headers": {"filter": "delete"},
                        "resp_headers": {"filter": "delete"},
                    },
                },
                "include": [logger],
            },
        }
    }


def config_hash(config: dict[str, Any]) -> str:
    """A stable sha256 of the canonical JSON of ``config`` (sorted keys, no spaces)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _app_route(route: Route) -> dict[str, Any]:
    """One route of ``served``'s result."""
    upstreams = list(route.upstreams)
    handler = _proxy(upstreams) if upstreams else _text(503, unavailable_body(route.app, route.stopped))
    return {"match": [{"host": list(route.hosts)}], "handle": [handler], "terminal": True}


def _proxy(upstreams: list[str]) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": address} for address in upstreams],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": TRY_DURATION,
            "try_interval": TRY_INTERVAL,
        },
        # Passive checks count failed connections only: an app's own 5xx answers go to the client as they
        # are, without benching an instance the monitor (active health) still sees as healthy.
        "health_checks": {"passive": {"fail_duration": FAIL_DURATION, "max_fails": 1}},
    }


def _text_route(status: int, body: str) -> dict[str, Any]:
    return {"handle": [_text(status, body)], "terminal": True}


def _text(status: int, body: str) -> dict[str, Any]:
    return {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
        "body": body + "\n",
    }
