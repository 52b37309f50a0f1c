"""Where the platform may send requests on a user's behalf (alert webhooks, a Dockerfile's ``ADD <url>``).

A user-given URL must not reach the platform's own insides (Caddy's admin API, the registry, the Docker
engine), this machine's loopback or a cloud's metadata service (SSRF). :class:`Egress` checks every address
a URL's host resolves to:

- always refused: loopback, link-local (169.254/16 with the metadata address, fe80::/10), unspecified,
  multicast and reserved addresses;
- refused unless the caller allows private targets: every other address that is not globally routable
  (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10, ...);
- on an address that is not globally routable, the platform's own ports are refused even then.

:meth:`Egress.pin` is the send-time check: it resolves the name once, checks every address and returns the
URL to connect to (the checked address) with the Host header and TLS server name of the original name, so
a name that resolves elsewhere a second later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from mypaas.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# the Docker engine's TCP ports and Swarm's management port: never a webhook's target on an inside address
DOCKER_PORTS = (2375, 2376, 2377)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class Refused(ValueError):
    """The URL's target is not allowed; the message says why in one line."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal: itself); [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> Address:
    ip = ipaddress.ip_address(text.split("%", 1)[0])  # a scoped IPv6 address: fe80::1%eth0
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


PRIVATE_HINT = "an admin may allow it with --allow-private"


def why_refused(
    ip: Address, port: int, *, allow_private: bool, internal_ports: Iterable[int], hint: str = PRIVATE_HINT
) -> str | None:
    """Why connecting to ``ip``:``port`` is refused, or None when it is allowed."""
    for what, hit in (
        ("a loopback", ip.is_loopback),
        ("a link-local (or cloud metadata)", ip.is_link_local),
        ("an unspecified", ip.is_unspecified),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
    ):
        if hit:
            return f"{ip} is {what} address"
    inside = not ip.is_global or ip in _CGNAT
    if inside and port in set(internal_ports):
        return f"port {port} of {ip} is one of the platform's own endpoints"
    if inside and not allow_private:
        return f"{ip} is a private address ({hint})"
    return None


@dataclass(frozen=True)
class Target:
    """Where a checked URL goes: ``url`` names the checked address; ``host`` is the Host header to send and
    ``server_name`` the TLS server name (None for plain HTTP or an IP literal)."""

    url: str
    host: str
    server_name: str | None


def _split(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; Refused when it is not one."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise Refused(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(f"{url!r} is not an http:// or https:// URL")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


class Egress:
    """The check, with the platform's own ports (see :func:`platform_ports`) and a resolver (tests)."""

    def __init__(
        self,
        *,
        internal_ports: Iterable[int] = (),
        resolver: Resolver = resolve,
        allow_private: bool = False,
        private_hint: str = PRIVATE_HINT,
    ) -> None:
        self.private_hint = private_hint  # how a private address may be allowed, in the refusal
        self.internal_ports = frozenset(internal_ports)
        self._resolve = resolver
        self.allow_private = allow_private  # the default of check() and pin()

    def check(self, url: str, *, allow_private: bool | None = None) -> None:
        """Refuse ``url`` if its host is, or resolves to, a refused address. A name that does not resolve
        (yet) passes: the send-time check (:meth:`pin`) refuses it if it then resolves badly."""
        _, host, port = _split(url)
        private = self.allow_private if allow_private is None else allow_private
        self._checked(host, port, private, must_resolve=False)

    def pin(self, url: str, *, allow_private: bool | None = None) -> Target:
        """Resolve ``url``'s host once, check every address, and return the URL to the first one."""
        scheme, host, port = _split(url)
        private = self.allow_private if allow_private is None else allow_private
        first = self._checked(host, port, private, must_resolve=True)
        parts = urlsplit(url)
        netloc = f"[{first}]" if first.version == 6 else str(first)
        netloc = f"{netloc}:{parts.port}" if parts.port else netloc
        userinfo, at, host_header = parts.netloc.rpartition("@")
        netloc = f"{userinfo}{at}{netloc}"  # user:password@ stays (basic auth)
        is_literal = _is_ip(host)
        server_name = host if scheme == "https" and not is_literal else None
        return Target(urlunsplit(parts._replace(netloc=netloc)), host_header, server_name)

    def _checked(self, host: str, port: int, allow_private: bool, *, must_resolve: bool) -> Address:
        found = [host] if _is_ip(host) else self._resolve(host, port)
        if not found:
            if must_resolve:
                raise Refused(f"{host} does not resolve")
            return ipaddress.IPv4Address(0)  # unused by check()
        addresses = [_address(a) for a in found]
        for ip in addresses:
            why = why_refused(
                ip,
                port,
                allow_private=allow_private,
                internal_ports=self.internal_ports,
                hint=self.private_hint,
            )
            if why is not None:
                raise Refused(why if _is_ip(host) else f"{host}: {why}")
        return addresses[0]


def _is_ip(host: str) -> bool:
    try:
        _address(host)
    except ValueError:
        return False
    return True


def platform_ports(*addresses: str, extra: Iterable[int] = ()) -> set[int]:
    """The ports of ``host:port`` addresses (the API, the registry, the mirror, Caddy's admin API), with
    the Docker engine's and ``extra``."""
    ports = {int(a.rsplit(":", 1)[1]) for a in addresses if a.rsplit(":", 1)[-1].isdigit()}
    return ports | set(DOCKER_PORTS) | set(extra)


def internal_ports(settings: Settings) -> set[int]:
    """The ports of the platform's own endpoints (the API, the registry, the mirror, Caddy's admin API,
    the Docker engine's): nothing the platform sends on a user's behalf goes there on an inside address."""
    return platform_ports(
        f"api:{settings.api_port}", settings.registry_addr, settings.mirror_addr, settings.router_admin
    )
