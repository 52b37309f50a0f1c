"""Render the HAProxy router's files from the routes, plan upstream changes as runtime API commands, and
read its per-app counters: pure, no I/O (router/haproxy.py writes, reloads and asks).

HAProxy serves the router's HTTP port itself: one backend per app (``app_<name>``), chosen by the Host
header (without its port, lower case) through a map file; a request for no app gets the 404 backend.
Each backend has a fixed number of server *slots*: a change of upstreams only (a deploy, a scale, an
instance that became ready or not) fills or empties slots through the runtime API, so no connection is
reset and no reload happens; any other change (an app, a host, a slot count) is a seamless reload.
With HTTPS, the HTTPS port is passed through (mode tcp) to the Caddy the platform runs for TLS
(router/tls_front.py), which sends the decrypted requests back to the ``mypaas_https_in`` frontend on a
unix socket; the HTTP frontend sends ``/.well-known/acme-challenge/`` to Caddy and redirects the hosts
``router/https.py`` says to HTTPS.
Each app request's duration (microseconds) is logged into an in-memory ring (no file, no socket: no
system call per request) that the monitor reads each sampling round through the runtime API
(``show events``): the latency's mean and p95; the counts come from the backends' counters.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from mypaas.router.config import NOT_FOUND_BODY, Route, served, unavailable_body

MIN_SLOTS = 4  # server slots per app backend; more (a power of two) when it has more upstreams
NOT_FOUND_BACKEND = "mypaas_none"
ACME_BACKEND = "mypaas_acme"
TLS_BACKEND = "mypaas_caddy_tls"
APP_PREFIX = "app_"
ACME_PATH = "/.well-known/acme-challenge/"
PLACEHOLDER = "0.0.0.0:1"  # the address of an empty (disabled) slot
LOG_RING = "mypaas_requests"
# the newest requests' log lines the ring holds (about 30 bytes each: some 30,000); a busier interval's
# latency is that of its newest requests
LOG_RING_BYTES = 2**20
# one line per request: its number (unique in a worker), its backend, its duration in microseconds
# (from the request's headers read to the response's end; HAProxy's own %Ta is in whole milliseconds)
LOG_FORMAT = "%rt %b %[date(0,us),sub(txn.t0)]"

# A refused connection (an instance being stopped) is tried again on another instance (redispatch on
# every retry): what lets a rolling deploy lose no request, as Caddy's try_duration does.
RETRIES = 3
TIMEOUTS = {
    "connect": "5s",
    "client": "5m",
    "server": "5m",
    "http-request": "30s",
    "http-keep-alive": "2m",
    "tunnel": "1h",  # websockets
}


@dataclass(frozen=True)
class Files:
    """Where HAProxy's files and sockets live (all in the router's owner-only folder)."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "haproxy.cfg"

    @property
    def hosts_map(self) -> Path:
        return self.folder / "hosts.map"

    @property
    def redirects(self) -> Path:
        return self.folder / "redirects.lst"

    @property
    def master(self) -> Path:
        """The master's CLI: ``show proc``, and the current worker's runtime API (``@1 <command>``)."""
        return self.folder / "haproxy-master.sock"

    @property
    def https_in(self) -> Path:
        """The frontend Caddy sends the decrypted HTTPS requests to."""
        return self.folder / "https-in.sock"

    @property
    def caddy_tls(self) -> Path:
        """Caddy's TLS listener, where the HTTPS port is passed through."""
        return self.folder / "caddy-tls.sock"

    @property
    def caddy_http(self) -> Path:
        """Caddy's HTTP listener: ACME HTTP-01 challenges."""
        return self.folder / "caddy-http.sock"


Slots = tuple[str | None, ...]  # a backend's server slots: an upstream address, or None (empty)


@dataclass(frozen=True)
class Rendered:
    """HAProxy's config, its host map and redirect list, and the slots each app's backend got."""

    config: str
    hosts_map: str
    redirects: str
    slots: dict[str, Slots]
    shape: tuple[object, ...]  # all but the slots' addresses: a change of it needs a reload


def backend_name(app: str) -> str:
    return f"{APP_PREFIX}{app}"


def slot_count(upstreams: int) -> int:
    """The slots of a backend with ``upstreams``: MIN_SLOTS, or the power of two that holds them."""
    count = MIN_SLOTS
    while count < upstreams:
        count *= 2
    return count


def assign(slots: Slots, wanted: Sequence[str]) -> Slots | None:
    """``slots`` holding ``wanted``: an upstream kept stays in its slot, a new one takes an empty slot;
    None when they do not fit (then a reload renders more)."""
    kept: list[str | None] = [a if a in wanted else None for a in slots]
    missing = [a for a in wanted if a not in kept]
    free = [i for i, a in enumerate(kept) if a is None]
    if len(missing) > len(free):
        return None
    for i, address in zip(free, missing, strict=False):
        kept[i] = address
    return tuple(kept)


def runtime_commands(app: str, old: Slots, new: Slots) -> list[str]:
    """The runtime API commands (for the current worker: ``@1``) that turn ``old`` slots into ``new``:
    new upstreams first (filled and made ready), then the gone ones drained (maintenance: no new
    request, running ones finish)."""
    backend = backend_name(app)
    filled, emptied = [], []
    for i, (before, after) in enumerate(zip(old, new, strict=True), start=1):
        if before == after:
            continue
        server = f"{backend}/s{i}"
        if after is None:
            emptied.append(f"@1 set server {server} state maint")
            continue
        host, port = split_address(after)
        filled += [f"@1 set server {server} addr {host} port {port}", f"@1 set server {server} state ready"]
    return filled + emptied


def split_address(address: str) -> tuple[str, int]:
    """``10.1.2.3:80`` -> (``10.1.2.3``, 80); ``[fd00::1]:80`` -> (``fd00::1``, 80)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def runtime_ready(address: str) -> bool:
    """Whether the runtime API can set this upstream (an IP address; a name needs a reload)."""
    try:
        ipaddress.ip_address(split_address(address)[0])
    except ValueError:
        return False
    return True


def render(
    routes: Sequence[Route],
    *,
    listen_port: int,
    files: Files,
    https_port: int = 0,
    redirect_hosts: Collection[str] = (),
    slots: dict[str, Slots] | None = None,
) -> Rendered:
    """The whole config for ``routes``. ``https_port`` 0: plain HTTP only (no TLS passthrough, no ACME
    path). ``redirect_hosts``: the hosts whose HTTP requests redirect to HTTPS. ``slots``: the slots
    the apps have now, kept where the upstreams still fit (fewer commands later)."""
    routes = served(routes)
    given = slots or {}
    placed: dict[str, Slots] = {}
    for route in routes:
        count = slot_count(len(route.upstreams))
        current = given.get(route.app, ())
        kept = assign(current, route.upstreams) if len(current) == count else None
        placed[route.app] = kept or assign((None,) * count, route.upstreams) or ()
    lines = [*_global(), *_http_frontend(listen_port, files, https_port, redirect_hosts)]
    if https_port:
        lines += _https_frontends(https_port, files)
    lines += _backend_text(NOT_FOUND_BACKEND, NOT_FOUND_BODY)
    for route in routes:
        lines += _app_backend(route, placed[route.app])
    hosts = sorted((host, backend_name(route.app)) for route in routes for host in route.hosts)
    redirects = sorted({h.lower() for h in redirect_hosts}) if https_port else []
    shape = (
        listen_port,
        https_port,
        tuple(redirects),
        tuple((r.app, r.hosts, r.stopped, bool(r.upstreams), len(placed[r.app])) for r in routes),
    )
    return Rendered(
        config="\n".join(lines) + "\n",
        hosts_map="".join(f"{host} {backend}\n" for host, backend in hosts),
        redirects="".join(f"{host}\n" for host in redirects),
        slots=placed,
        shape=shape,
    )


def _global() -> list[str]:
    return [
        "global",
        "  hard-stop-after 30s",  # an old worker after a reload: its last requests get this long
        "",
        f"ring {LOG_RING}",
        "  format raw",
        "  maxlen 256",
        f"  size {LOG_RING_BYTES}",
        "",
        "defaults",
        "  mode http",
        *(f"  timeout {name} {value}" for name, value in TIMEOUTS.items()),
        "  option http-keep-alive",
        f"  retries {RETRIES}",
        "  retry-on conn-failure",
        "  option redispatch 1",
        "  balance roundrobin",
        "",
    ]


def _http_frontend(port: int, files: Files, https_port: int, redirect_hosts: Collection[str]) -> list[str]:
    lines = [
        "frontend mypaas",
        f"  bind :{port}",
        "  option forwardfor",
        "  http-request set-header X-Forwarded-Proto http",
        "  http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        *_request_log(),
    ]
    if https_port:
        suffix = "" if https_port == 443 else f":{https_port}"
        lines.append(f"  acl acme path_beg {ACME_PATH}")
        if redirect_hosts:
            location = f"https://%[var(txn.host)]{suffix}%[capture.req.uri]"
            lines.append(
                f"  http-request redirect code 308 location {location}"
                f" if !acme {{ var(txn.host) -m str -f {files.redirects} }}"
            )
        lines.append(f"  use_backend {ACME_BACKEND} if acme")
    return [*lines, *_by_host(files), ""]


def _request_log() -> list[str]:
    """An HTTP frontend's host variable, and its log of each request's duration into the ring."""
    return [
        "  http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
        "  http-request set-var(txn.t0) date(0,us)",
        f"  log ring@{LOG_RING} local0",
        f'  log-format "{LOG_FORMAT}"',
    ]


def _by_host(files: Files) -> list[str]:
    return [
        f"  use_backend %[var(txn.host),map_str({files.hosts_map},{NOT_FOUND_BACKEND})]",
        f"  default_backend {NOT_FOUND_BACKEND}",
    ]


def _https_frontends(https_port: int, files: Files) -> list[str]:
    return [
        "frontend mypaas_https_in",  # Caddy's decrypted requests (it sets X-Forwarded-*)
        f"  bind {files.https_in} mode 600",
        *_request_log(),
        *_by_host(files),
        "",
        "frontend mypaas_tls",
        "  mode tcp",
        f"  bind :{https_port}",
        f"  default_backend {TLS_BACKEND}",
        "",
        f"backend {TLS_BACKEND}",
        "  mode tcp",
        f"  server caddy {files.caddy_tls}",
        "",
        f"backend {ACME_BACKEND}",
        f"  server caddy {files.caddy_http}",
        "",
    ]


def _backend_text(name: str, body: str) -> list[str]:
    return [f"backend {name}", *_answer(404, body), ""]


def _answer(status: int, body: str) -> list[str]:
    text = body.replace("\\", "\\\\").replace('"', '\\"')
    return [
        f'  http-request return status {status} content-type "text/plain; charset=utf-8" string "{text}\\n"'
    ]


def _app_backend(route: Route, slots: Slots) -> list[str]:
    servers = [
        f"  server s{i} {address}" if address else f"  server s{i} {PLACEHOLDER} disabled"
        for i, address in enumerate(slots, start=1)
    ]
    # No upstream: the answer says why. (Not ``if { nbsrv() eq 0 }``: an old worker finishing after a
    # reload counts no server and would answer it to a request it still takes.)
    answer = [] if route.upstreams else _answer(503, unavailable_body(route.app, route.stopped))
    return [f"backend {backend_name(route.app)}", *answer, *servers, ""]


@dataclass(frozen=True)
class Counters:
    """One app backend's counters since HAProxy's worker started."""

    requests: int  # req_tot
    errors: int  # hrsp_5xx: the app's, HAProxy's 502/504, and the 503 without an instance
    mean_ms: float | None  # ttime: the mean time of the last 1024 requests (None: no request yet)
    epoch: int = 0  # the worker's pid: a new one (a reload) counts from zero again
    # the durations (ms) of the requests logged since the previous read (the newest ones the ring held)
    durations_ms: tuple[float, ...] = ()


def parse_stat(text: str, epoch: int = 0) -> dict[str, Counters]:
    """Per app, its backend's counters from ``show stat``'s CSV (other proxies and servers skipped);
    ``epoch``: the worker that counted them."""
    rows = csv.DictReader(io.StringIO(text[text.find("# pxname") :].removeprefix("# ")))
    found: dict[str, Counters] = {}
    for row in rows:
        name = row.get("pxname") or ""
        if row.get("svname") != "BACKEND" or not name.startswith(APP_PREFIX):
            continue
        requests = _int(row.get("req_tot"))
        found[name.removeprefix(APP_PREFIX)] = Counters(
            requests=requests,
            errors=_int(row.get("hrsp_5xx")),
            mean_ms=float(_int(row.get("ttime"))) if requests else None,
            epoch=epoch,
        )
    return found


def parse_events(text: str, after: int | None) -> tuple[dict[str, list[float]], int | None]:
    """Per app, the durations (ms) of the requests the ring (``show events``) logged after the request
    numbered ``after``, all it holds when that one is not there any more (or ``after`` is None); and
    the number of its newest request (to give as ``after`` next time)."""
    entries = []  # (number, backend, microseconds: "-" when HAProxy answered before timing it)
    for line in text.splitlines():
        number, _, rest = line.partition(" ")
        if number.isdigit():
            backend, _, micros = rest.partition(" ")
            entries.append((int(number), backend, micros))
    start = next((i + 1 for i, (n, _, _) in enumerate(entries) if n == after), 0)
    durations: dict[str, list[float]] = {}
    for _, name, micros in entries[start:]:
        if name.startswith(APP_PREFIX) and micros.isdigit():
            durations.setdefault(name.removeprefix(APP_PREFIX), []).append(int(micros) / 1000.0)
    return durations, entries[-1][0] if entries else after


def worker_pid(info: str) -> int | None:
    """The ``Pid:`` line of ``show info``."""
    for line in info.splitlines():
        if line.startswith("Pid:"):
            return _int(line.split(":", 1)[1].strip()) or None
    return None


def current_worker(proc: str) -> int | None:
    """The current worker's pid in the master's ``show proc`` (the line after ``# workers``)."""
    lines = proc.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("# workers"):
            return _int(lines[i + 1].split()[0]) if lines[i + 1][:1].isdigit() else None
    return None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
