"""Drive HAProxy as the router (setting ``router: haproxy``): write its files, change upstreams through
its runtime API, reload it seamlessly for other changes, read its per-app counters; start, adopt or stop
the process (master-worker: the master re-executes a worker on reload and the new worker takes the
listening sockets over from the old one, which finishes the requests it has).

The only module that talks to HAProxy; OS errors become ``BackendError`` here. Its runtime API is a unix
socket in the router's owner-only folder; the master is reloaded with SIGUSR2. With HTTPS, a CaddyTlsFront
(router/tls_front.py) terminates TLS and gets the certificates.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from mypaas import process
from mypaas.errors import BackendError
from mypaas.router import https as tls
from mypaas.router.config import Route, served
from mypaas.router.haproxy_config import (
    LOG_RING,
    Counters,
    Files,
    Rendered,
    Slots,
    current_worker,
    parse_events,
    parse_stat,
    render,
    runtime_commands,
    runtime_ready,
    worker_pid,
)
from mypaas.router.tls_front import CaddyTlsFront

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
POLL_INTERVAL = 0.05
SOCKET_TIMEOUT = 5.0
LOG_TAIL_LINES = 15
# what the runtime API answers to a command it did not carry out
RUNTIME_ERRORS = ("No such", "Require", "Unknown", "invalid", "Invalid", "not allowed", "failed", "Can't")

log = logging.getLogger("mypaas.router")


class HAProxyRouter:
    """HAProxy serving every app's routes on ``listen_port``; with ``front``, HTTPS through Caddy."""

    def __init__(
        self, *, listen_port: int, folder: Path, log_path: Path, front: CaddyTlsFront | None = None
    ) -> None:
        self.listen_port = listen_port
        self.files = Files(folder)
        self.log_path = log_path
        self.front = front
        self._lock = threading.Lock()
        self._shape: tuple[object, ...] | None = None  # what HAProxy was last loaded with
        self._slots: dict[str, Slots] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._logged: tuple[int, int | None] = (0, None)  # the worker and its last request read from the ring

    @property
    def pid_path(self) -> Path:
        return self.files.folder / "haproxy.pid"

    @property
    def https_port(self) -> int:
        return self.front.tls.port if self.front else 0

    # -- the Router protocol -------------------------------------------------------------------------

    def apply(self, routes: Sequence[Route]) -> bool:
        """Serve ``routes``: upstream changes through the runtime API, others by a seamless reload."""
        with self._lock:
            pushed = self.front.apply(routes) if self.front else False
            rendered = self.render(routes)
            if rendered.shape == self._shape:
                commands = [
                    c
                    for app, slots in rendered.slots.items()
                    for c in runtime_commands(app, self._slots[app], slots)
                ]
                if not commands:
                    return pushed
                if self._runtime_change(commands, rendered):
                    return True
            self._shape = None  # a failed reload must be tried again by the next apply
            self._load(rendered)
            self._shape, self._slots = rendered.shape, rendered.slots
        return True

    def render(self, routes: Sequence[Route]) -> Rendered:
        """HAProxy's files for ``routes`` (the apps keep their slots where the upstreams fit)."""
        return render(
            routes,
            listen_port=self.listen_port,
            files=self.files,
            https_port=self.https_port,
            redirect_hosts=self._redirect_hosts(routes),
            slots=self._slots,
        )

    def healthy(self) -> bool:
        """True when HAProxy's worker answers through the master (and Caddy's admin API, with HTTPS)."""
        try:
            self._ask("@1 show info")
        except BackendError:
            return False
        return self.front.healthy() if self.front else True

    def ensure_running(self) -> None:
        """Adopt the HAProxy (and Caddy) that answer, or start them; the next apply reloads."""
        with self._lock:
            self._shape, self._slots = None, {}
            if self.front is not None:
                self.front.ensure_running()
                self.front.apply([])  # a Caddy that was the router frees the router's ports
            try:
                self._ask("@1 show info")
                return
            except BackendError:
                pass
            if self._kill_from_pid_file():
                log.warning(
                    "router: stopping the HAProxy not answering on %s, to start anew", self.files.master
                )
                self._wait_stopped()
            self._start()

    def stop(self) -> None:
        """Stop HAProxy (by its pid file) and Caddy. Stopping twice is fine."""
        with self._lock:
            self._shape, self._slots = None, {}
            self._kill_from_pid_file()
            self._wait_stopped()
            self.pid_path.unlink(missing_ok=True)
            if self.front is not None:
                self.front.stop()

    def close(self) -> None:
        if self.front is not None:
            self.front.close()

    def request_counters(self) -> dict[str, Counters] | None:
        """Per app, its backend's counters since the worker started, with the durations of the requests
        its ring logged since the previous call (None when HAProxy does not answer)."""
        try:
            answer = self._ask("@1 show info; @1 show stat")
        except BackendError:
            return None
        epoch = worker_pid(answer) or 0
        counters = parse_stat(answer, epoch=epoch)
        try:
            events = self._ask(f"@1 show events {LOG_RING}")
        except BackendError:
            return counters
        logged_epoch, after = self._logged
        durations, last = parse_events(events, after if logged_epoch == epoch else None)
        self._logged = (epoch, last)
        return {
            app: replace(count, durations_ms=tuple(durations.get(app, ()))) for app, count in counters.items()
        }

    # -- changes -------------------------------------------------------------------------------------

    def _redirect_hosts(self, routes: Sequence[Route]) -> set[str]:
        if self.front is None:
            return set()
        trusted = self.front.trusted_hosts()
        return {
            host
            for route in served(routes)
            if not route.plain_http
            for host in tls.redirects(self.front.tls, route.hosts, trusted)
        }

    def _runtime_change(self, commands: list[str], rendered: Rendered) -> bool:
        """Carry the commands out; False (then a reload follows) when an upstream is not an IP address
        or HAProxy refused one."""
        addresses = [a for slots in rendered.slots.values() for a in slots if a]
        if not all(runtime_ready(a) for a in addresses):
            return False
        answer = self._ask("; ".join(commands))
        if any(word in answer for word in RUNTIME_ERRORS):
            log.warning("router: HAProxy refused a runtime change (%s); reloading", answer.strip()[:200])
            return False
        self._slots = rendered.slots
        return True

    def _load(self, rendered: Rendered) -> None:
        """Write the files, check the config, and have the master reload (a new worker takes over)."""
        self._write(rendered)
        before = self._worker_pid()
        if before is None:
            raise BackendError(f"router: HAProxy's master CLI at {self.files.master} is unreachable")
        master = process.read_pid(self.pid_path)
        if master is None or not process.is_program(master, "haproxy"):
            raise BackendError(f"router: HAProxy's master process is not running ({self.pid_path})")
        os.kill(master, signal.SIGUSR2)  # the master re-reads the config and starts a new worker
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            now = self._worker_pid()
            if now is not None and now != before:
                return
            time.sleep(POLL_INTERVAL)
        raise BackendError(f"router: HAProxy did not reload; last lines of {self.log_path}:\n{self._tail()}")

    def _write(self, rendered: Rendered) -> None:
        folder = self.files.folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _replace(self.files.hosts_map, rendered.hosts_map)
        _replace(self.files.redirects, rendered.redirects)
        candidate = folder / "haproxy.cfg.new"
        candidate.write_text(rendered.config)
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(candidate)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise BackendError(f"router: HAProxy rejected the config: {_alerts(check.stdout + check.stderr)}")
        candidate.replace(self.files.config)

    def _worker_pid(self) -> int | None:
        """The current worker's pid, as the master says (None when the master does not answer)."""
        try:
            return current_worker(self._ask("show proc"))
        except BackendError:
            return None

    # -- process -------------------------------------------------------------------------------------

    def _start(self) -> None:
        folder = self.files.folder
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        for sock in (self.files.master, self.files.https_in):
            sock.unlink(missing_ok=True)  # left by a HAProxy that was killed
        self._write(self.render([]))
        self._process = process.spawn(
            ["haproxy", "-W", "-S", f"{self.files.master},mode,600", "-f", str(self.files.config)],
            log_path=self.log_path,
            pid_path=self.pid_path,
            cwd=folder,
            what="router",
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._worker_pid() is not None:
                return
            if self._process.poll() is not None:
                self._start_failed(f"haproxy exited with status {self._process.returncode}")
            time.sleep(POLL_INTERVAL)
        self._process.kill()
        self._process.wait()
        self._start_failed(f"haproxy's runtime API did not answer within {START_TIMEOUT:.0f} s")

    def _start_failed(self, reason: str) -> NoReturn:
        self.pid_path.unlink(missing_ok=True)
        tail = self._tail()
        if "Address already in use" in tail or "cannot bind socket" in tail:
            reason = f"cannot listen on :{self.listen_port} or :{self.https_port}: address already in use"
        raise BackendError(f"router: {reason}; last lines of {self.log_path}:\n{tail}")

    def _tail(self) -> str:
        return process.tail(self.log_path, LOG_TAIL_LINES)

    def _kill_from_pid_file(self) -> bool:
        """SIGTERM HAProxy's master in the pid file (its workers stop with it); False when none runs."""
        pid = process.read_pid(self.pid_path)
        if pid is not None and process.is_program(pid, "haproxy"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            return True
        return False

    def _wait_stopped(self) -> None:
        if self._process is not None:  # our own child: reap it
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=STOP_TIMEOUT)
            self._process = None
        deadline = time.monotonic() + STOP_TIMEOUT
        pid = process.read_pid(self.pid_path)
        while time.monotonic() < deadline and (
            self._worker_pid() is not None or (pid is not None and process.is_program(pid, "haproxy"))
        ):
            time.sleep(POLL_INTERVAL)

    # -- sockets -------------------------------------------------------------------------------------

    def _ask(self, command: str) -> str:
        """A command line on the master's CLI (``@1 …``: for the current worker), its whole answer.
        Only the master answers there: a worker that is finishing after a reload never does."""
        path = self.files.master
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(SOCKET_TIMEOUT)
                conn.connect(str(path))
                conn.sendall(command.encode() + b"\n")
                conn.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise BackendError(f"router: HAProxy at {path} is unreachable: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")


def _alerts(output: str) -> str:
    """HAProxy's ALERT lines (what is wrong), else its whole output."""
    alerts = [line.split(" : ", 1)[-1] for line in output.splitlines() if "[ALERT]" in line]
    return "; ".join(alerts) or output.strip()


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole (a reader never sees half of it)."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    temp.replace(path)
