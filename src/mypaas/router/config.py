"""Render the router's whole Caddy JSON config from the healthy instances of each app: pure, no I/O.

The result is what ``POST /load`` on Caddy's admin API takes; ``config_hash`` tells whether it changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SERVER_NAME = "mypaas"
NOT_FOUND_BODY = "no app at this address"

# A refused connection (an instance being stopped) is retried on another upstream for up to TRY_DURATION:
# this is what lets a rolling deploy lose no request. A failed upstream is then skipped for FAIL_DURATION.
TRY_DURATION = "2s"
TRY_INTERVAL = "100ms"
FAIL_DURATION = "2s"


@dataclass(frozen=True)
class Route:
    """Where the requests for one app go: its host names and the addresses of its healthy instances."""

    app: str
    hosts: tuple[str, ...]  # e.g. ("shop.localhost", "www.example.com")
    upstreams: tuple[str, ...]  # "10.1.2.3:80" addresses of healthy instances; may be empty


def unavailable_body(app: str) -> str:
    return f"no healthy instance of {app}"


def render(routes: Sequence[Route], *, listen_port: int, admin: str) -> dict[str, Any]:
    """The full Caddy config: one HTTP server, one route per app (by app name), then a 404 catch-all."""
    app_routes = [_app_route(route) for route in sorted(routes, key=lambda r: r.app) if route.hosts]
    server = {
        "listen": [f":{listen_port}"],
        # Caddy would otherwise turn on HTTPS (and a redirect) for hosts such as *.localhost.
        "automatic_https": {"disable": True},
        "routes": [*app_routes, _text_route(404, NOT_FOUND_BODY)],
    }
    return {
        "admin": {"listen": admin},
        "apps": {"http": {"servers": {SERVER_NAME: server}}},
    }


def config_hash(config: dict[str, Any]) -> str:
    """A stable sha256 of the canonical JSON of ``config`` (sorted keys, no spaces)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _app_route(route: Route) -> dict[str, Any]:
    hosts = sorted({host.lower() for host in route.hosts})
    upstreams = sorted(set(route.upstreams))
    handler = _proxy(upstreams) if upstreams else _text(503, unavailable_body(route.app))
    return {"match": [{"host": hosts}], "handle": [handler], "terminal": True}


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
