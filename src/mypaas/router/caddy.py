"""Drive Caddy through its admin API: push route configs (``POST /load``); start, adopt or stop the process.

The only module that talks to Caddy; httpx and OS errors become ``BackendError`` here. The admin API
listens on a unix socket (``unix//PATH``) in an owner-only folder, so nothing on the network or in a
container can reach it; a ``host:port`` admin address (TCP) still works for tests and old set-ups.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import httpx

from mypaas import process
from mypaas.errors import BackendError
from mypaas.router.config import ACCESS_LOG, Route, config_hash, render
from mypaas.router.https import INTERNAL_ISSUER, Https, UserCert

START_TIMEOUT = 10.0  # seconds for a started Caddy to answer on its admin API
# A config with HTTPS makes Caddy's internal CA issue a certificate per new host as it loads: 1,000 new
# hosts took 4.4 s here, 10,000 took 66 s (2 s once issued). A load waits this long, plus so much per
# route, instead of timing out at the admin client's 5 s and being sent again while Caddy still works.
LOAD_TIMEOUT_S = 5.0
LOAD_TIMEOUT_PER_ROUTE_S = 0.01
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 15
# Caddy 2.6 opens a new SO_REUSEPORT socket for each config it loads and closes the old one; Linux resets
# the connections still queued on a closed socket unless this switch (kernel >= 5.14) hands them over.
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")

log = logging.getLogger("mypaas.router")

# a config's inputs: the routes, the hosts with a trusted certificate, the users' own certificates
RenderInputs = tuple[tuple[Route, ...], frozenset[str], tuple[UserCert, ...]]


class CaddyRouter:
    """One Caddy process serving every app's routes on ``listen_port``, managed on ``admin`` (host:port).

    ``apply`` is safe to call on every reconcile pass: it pushes only when the rendered config changed.
    Requests are logged to ``access_log`` (default: ``access.log`` next to ``log_path``).
    """

    def __init__(
        self,
        *,
        admin: str,
        listen_port: int,
        config_dir: Path,
        log_path: Path,
        access_log: Path | None = None,
        https: Https | None = None,
        user_certs: Callable[[], Sequence[UserCert]] = tuple,
    ) -> None:
        self.admin = admin
        self.https = https
        self.user_certs = user_certs  # the users' own certificates (``certs add``), read at each apply
        self.listen_port = listen_port
        self.config_dir = config_dir
        self.log_path = log_path
        self.access_log = access_log if access_log is not None else log_path.with_name(ACCESS_LOG)
        self._client = admin_client(admin)
        self._lock = threading.Lock()
        self._pushed_hash: str | None = None
        self._pushed_inputs: RenderInputs | None = None  # what the last pushed (or current) config is of
        self._pushed_config: dict[str, Any] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.config_dir / "caddy.json"

    @property
    def pid_path(self) -> Path:
        return self.config_dir / "caddy.pid"

    def apply(self, routes: Sequence[Route]) -> bool:
        """Make Caddy serve ``routes``; return True if a new config was pushed, False if it was current.

        The config is rendered (and hashed) only when what it is made of changed: the routes, the hosts
        with a trusted certificate and the users' own certificates. On an idle pass, that comparison is
        all the work (rendering 10,000 routes takes half a second)."""
        inputs = self._inputs(routes)
        with self._lock:
            if inputs == self._pushed_inputs:
                return False
        config = self._render(inputs)
        digest = config_hash(config)
        with self._lock:
            if digest != self._pushed_hash:
                self._pushed_hash = self._pushed_inputs = None  # a failed push is retried by the next apply
                self._post_load(config, timeout=LOAD_TIMEOUT_S + LOAD_TIMEOUT_PER_ROUTE_S * len(inputs[0]))
                self._pushed_hash = digest
                self._pushed_config = config
                pushed = True
            else:
                pushed = False
            self._pushed_inputs = inputs
        return pushed

    def render(self, routes: Sequence[Route]) -> dict[str, Any]:
        """The Caddy config that serves ``routes`` (what ``apply`` pushes)."""
        return self._render(self._inputs(routes))

    def _inputs(self, routes: Sequence[Route]) -> RenderInputs:
        """What the config is a function of, read now (the certificates' files and rows)."""
        if self.https is None:
            return tuple(routes), frozenset(), ()
        return tuple(routes), frozenset(self.certified_hosts()), tuple(self.user_certs())

    def _render(self, inputs: RenderInputs) -> dict[str, Any]:
        """The config of ``inputs``: the one place ``apply``, ``render`` and ``_start`` render (a
        subclass with another config overrides this, as router/tls_front.py does)."""
        routes, certified, certs = inputs
        return render(
            routes,
            listen_port=self.listen_port,
            admin=self.admin,
            access_log=str(self.access_log),
            https=self.https,
            certified=certified,
            certs=certs,
        )

    @property
    def storage_dir(self) -> Path:
        """Caddy's data folder: its certificates, keys and internal CA (XDG_DATA_HOME/caddy)."""
        return self.config_dir / "caddy"

    def certified_hosts(self) -> set[str]:
        """The hosts with a certificate from a trusted CA (not the internal one) in Caddy's storage."""
        found: set[str] = set()
        with contextlib.suppress(OSError):
            for issuer in (self.storage_dir / "certificates").iterdir():
                if issuer.name != INTERNAL_ISSUER:
                    found.update(d.name for d in issuer.iterdir() if (d / f"{d.name}.crt").is_file())
        return found

    def healthy(self) -> bool:
        """True if Caddy's admin API answers. It is asked for its own small part of the config, not the
        whole (several MB at 10,000 routes, serialized and read every few seconds)."""
        try:
            return self._client.get("/config/admin").status_code == 200
        except httpx.HTTPError:
            return False

    def ensure_running(self) -> None:
        """Adopt the Caddy answering on the admin address, or start one and wait until it answers.

        A Caddy of ours (pid file) that does not answer there was started with another admin address
        (before an upgrade moved the admin API to a unix socket): it is stopped first, by its pid."""
        with self._lock:
            self._forget_pushed()  # adopted or new, its routes are unknown: the next apply pushes
            hand_over_queued_connections()
            if self.healthy():
                return
            if self._kill_from_pid_file():
                log.warning("router: stopping the Caddy not answering on %s, to start anew", self.admin)
                self._wait_stopped()
            self._start()

    def stop(self) -> None:
        """Stop Caddy (through the admin API, else by the pid in the pid file). Stopping twice is fine."""
        with self._lock:
            self._forget_pushed()
            try:
                self._client.post("/stop")
            except httpx.HTTPError:
                self._kill_from_pid_file()
            self._wait_stopped()
            self.pid_path.unlink(missing_ok=True)

    def last_config(self) -> dict[str, Any] | None:
        """A copy of the config last pushed to Caddy by this router, if any."""
        return copy.deepcopy(self._pushed_config)

    def request_counters(self) -> None:
        """Caddy keeps no per-app counters: its access log is the source (monitor/requests.py)."""
        return None

    def close(self) -> None:
        """Release the HTTP client (Caddy keeps running)."""
        self._client.close()

    # -- admin API -------------------------------------------------------------------------------------

    def _post_load(self, config: dict[str, Any], timeout: float = LOAD_TIMEOUT_S) -> None:
        try:
            response = self._client.post("/load", json=config, timeout=httpx.Timeout(timeout, connect=1.0))
        except httpx.HTTPError as exc:
            raise BackendError(f"router: Caddy admin API at {self.admin} is unreachable: {exc}") from exc
        if response.is_error:
            raise BackendError(self._describe_load_error(_error_text(response)))

    def _describe_load_error(self, text: str) -> str:
        if "address already in use" in text:
            return f"router: cannot listen on :{self.listen_port}: address already in use"
        if "permission denied" in text:
            return f"router: cannot listen on :{self.listen_port}: permission denied"
        return f"router: Caddy rejected the config: {text}"

    def _forget_pushed(self) -> None:
        self._pushed_hash = None
        self._pushed_inputs = None
        self._pushed_config = None

    # -- process ---------------------------------------------------------------------------------------

    def _start(self) -> None:
        self.config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config_dir.chmod(0o700)  # keys, certificates and the internal CA (made 0755 by older versions)
        socket = admin_socket(self.admin)
        if socket is not None:  # owner-only: the admin API can change every route
            socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            socket.parent.chmod(0o700)
            socket.unlink(missing_ok=True)  # left by a Caddy that was killed
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.access_log.parent.mkdir(parents=True, exist_ok=True)
        initial = self.render([])
        self.config_path.write_text(json.dumps(initial, indent=2) + "\n")
        env = {**os.environ, "XDG_DATA_HOME": str(self.config_dir), "XDG_CONFIG_HOME": str(self.config_dir)}
        self._process = process.spawn(
            ["caddy", "run", "--config", str(self.config_path)],
            log_path=self.log_path,
            pid_path=self.pid_path,
            env=env,
            cwd=self.config_dir,
            what="router",
        )
        self._wait_started(self._process)

    def _wait_started(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if process.poll() is not None:
                self._start_failed(f"caddy exited with status {process.returncode}")
            time.sleep(POLL_INTERVAL)
        process.kill()
        process.wait()
        self._start_failed(f"caddy's admin API did not answer on {self.admin} within {START_TIMEOUT:.0f} s")

    def _start_failed(self, reason: str) -> NoReturn:
        self.pid_path.unlink(missing_ok=True)
        tail = process.tail(self.log_path, LOG_TAIL_LINES)
        if "address already in use" in tail:
            reason = f"cannot listen on :{self.listen_port} or {self.admin}: address already in use"
        raise BackendError(f"router: {reason}; last lines of {self.log_path}:\n{tail}")

    def _kill_from_pid_file(self) -> bool:
        """SIGTERM the Caddy in the pid file; False when none runs."""
        pid = process.read_pid(self.pid_path)
        if pid is not None and process.is_program(pid, "caddy"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            return True
        return False

    def _wait_stopped(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        if self._process is not None:  # our own child: reap it so it leaves no zombie
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=STOP_TIMEOUT)
            self._process = None
        pid = process.read_pid(self.pid_path)
        while time.monotonic() < deadline and (
            self.healthy() or (pid is not None and process.is_program(pid, "caddy"))
        ):
            time.sleep(POLL_INTERVAL)


def admin_socket(admin: str) -> Path | None:
    """The unix socket of an admin address ``unix//PATH`` (None for ``host:port``)."""
    return Path(admin.removeprefix("unix/")) if admin.startswith("unix/") else None


def admin_client(admin: str) -> httpx.Client:
    """An HTTP client for Caddy's admin API at ``admin``: ``unix//PATH`` or ``host:port``."""
    timeout = httpx.Timeout(5.0, connect=1.0)
    socket = admin_socket(admin)
    if socket is None:
        return httpx.Client(base_url=f"http://{admin}", timeout=timeout, trust_env=False)
    # Caddy accepts only an empty Host header on a unix socket (RFC 7230: no internet host name).
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=str(socket)),
        base_url="http://caddy",
        headers={"Host": ""},
        timeout=timeout,
        trust_env=False,
    )


def hand_over_queued_connections(switch: Path = MIGRATE_REQ) -> bool:
    """Make the kernel move connections queued on a closing listener to its SO_REUSEPORT sibling.

    Without it every route push can reset a few connections that just arrived (measured: 189 resets in
    300 pushes under a request loop; 0 with it). Returns True when the switch is on; when it cannot be
    set (old kernel, no root) the router still works and logs why pushes may reset connections.
    """
    try:
        if switch.read_text().strip() != "0":
            return True
        switch.write_text("1\n")
        return True
    except OSError as exc:
        log.warning(
            "router: cannot turn on %s (%s); a route change may reset connections that are just arriving",
            switch,
            exc.strerror or exc,
        )
        return False


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error
    return response.text.strip() or f"HTTP {response.status_code}"
