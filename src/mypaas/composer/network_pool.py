"""An app's default network, taken from a few bridge networks made ahead of time, so that a new app's
first deploy does not wait for ``docker network create`` (70-150 ms here: the engine builds a bridge
and its firewall rules, most of the gap between a deploy and a plain ``docker run``).

The engine can neither rename a network nor change its labels, so a pooled network keeps the name
(``mypaaspool_<hex>``) and the labels (the platform's, ``mypaas.pool``) it was made with, and the
engine itself says whose it is: the network an app's containers (in any state) are on. Taking one
for an app is held in memory, under a lock, until the app's first container is made on it:

- a manager killed before that took nothing (the network is free again at the next start);
- after it, the engine says the network is the app's; a network any container is on (the platform's
  or not) is never handed out, so two apps never share one;
- apps deployed before the pool keep their ``mypaas_<app>`` network (found on their containers).

Removing an app removes the network it took; one whose app's containers went away while no manager
held it in memory is free again (it has no containers) and taken or trimmed as any other.
A background refill keeps ``size`` free networks, started by a listing of the platform's containers
(the reconcile loop's pass) that finds the pool short: never while the engine makes the container of
the app that took one (a network made meanwhile slowed that down).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

import docker.errors

from mypaas.composer.base import LABEL_APP, LABEL_PLATFORM
from mypaas.composer.engine import network_name
from mypaas.composer.errors import engine_errors
from mypaas.errors import NotFound

log = logging.getLogger("mypaas.composer")

LABEL_POOL = "mypaas.pool"
PREFIX = "mypaaspool_"  # app names cannot hold "_": never an app's own network name (engine.py)


def pool_network_name() -> str:
    """A new pooled network's name."""
    return f"{PREFIX}{secrets.token_hex(6)}"


def _in_background(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="network-pool", daemon=True).start()


def _networks_of(row: dict[str, Any]) -> set[str]:
    """The names of the networks a container (as the engine lists it) is on, created ones included."""
    return set(((row.get("NetworkSettings") or {}).get("Networks") or {}).keys())


def _default_of(app: str, names: set[str]) -> str | None:
    """Which of the networks an app's container is on is the app's default one: a pooled one, or the
    app's own from before the pool."""
    pooled = sorted(n for n in names if n.startswith(PREFIX))
    if pooled:
        return pooled[0]
    own = network_name(app)
    return own if own in names else None


class NetworkPool:
    """The pooled default networks of the platforms on one engine (thread-safe)."""

    def __init__(
        self, api: Any, size: int = 2, *, spawn: Callable[[Callable[[], None]], None] = _in_background
    ) -> None:
        """``spawn`` runs the refill (a thread of its own; tests run it when they choose)."""
        self._api = api
        self.size = max(0, size)
        self._spawn = spawn
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], str] = {}  # (platform, app) -> its default network
        self._free: dict[str, set[str]] = {}  # platform -> networks known free (made or found so)
        self._refilling: set[str] = set()  # platforms whose refill runs
        self._filled: set[str] = set()  # platforms refilled once: their free networks are known
        self._listed: set[str] = set()  # platforms whose containers ``observe`` saw: nothing to look up

    # -- an app's network -------------------------------------------------------------------------

    def network_for(self, platform: str, app: str) -> str:
        """The app's default network: the one it holds, else the one its containers are on, else a free
        pooled network taken for it (made now if none is free)."""
        with self._lock:
            held = self._held.get((platform, app))
        if held is not None:
            return held
        with self._lock:
            listed = platform in self._listed
        held = (None if listed else self._on_containers(platform, app)) or self._take(platform, app)
        if held is None:  # none free: make one (the wait the pool saves, once)
            held = self._make(platform)
        with self._lock:
            taken = self._held.setdefault((platform, app), held)  # another thread may have been first
            if taken != held and held.startswith(PREFIX):
                self._free.setdefault(platform, set()).add(held)
        return taken  # refilled from the next listing: not while the engine makes the app's container

    def network_of(self, platform: str, app: str) -> str:
        """The app's default network as ``network_for`` took it (or its containers are on): a container
        is made only on the network ``ensure_network`` took for its app, so one made after the app's
        removal raises NotFound as it did before the pool instead of taking another network."""
        with self._lock:
            held = self._held.get((platform, app))
            listed = platform in self._listed
        found = held or (None if listed else self._on_containers(platform, app))
        if found is None:
            raise NotFound(f"app {app} has no network on this engine (removed?)", field="network")
        with self._lock:
            return self._held.setdefault((platform, app), found)

    def observe(self, platform: str, rows: list[dict[str, Any]]) -> None:
        """The platform's containers as the engine listed them (``GET /containers/json``, all of them):
        each app's default network is held for it, and an app none of them has has no network yet
        (this manager makes every container after). Starts a refill when the pool is short."""
        found: dict[str, str] = {}
        for row in rows:
            app = str((row.get("Labels") or {}).get(LABEL_APP) or "")
            net = _default_of(app, _networks_of(row)) if app else None
            if net is not None:
                found.setdefault(app, net)
        with self._lock:
            for app, net in found.items():
                self._held.setdefault((platform, app), net)
            self._listed.add(platform)
        self.keep_up(platform)

    def forget(self, platform: str, app: str) -> None:
        """Drop what is held for the app (its network went away): the next ``network_for`` looks again."""
        with self._lock:
            self._held.pop((platform, app), None)

    def taken_by(self, platform: str, app: str) -> str | None:
        """The pooled network the app holds or its containers are on (its removal removes it, then
        ``forget``s it); None when there is none."""
        with self._lock:
            held = self._held.get((platform, app))
        found = held or self._on_containers(platform, app)
        return found if found and found.startswith(PREFIX) else None

    def _on_containers(self, platform: str, app: str) -> str | None:
        """The default network the app's containers are on (a pooled one, or its own from before)."""
        filters = {"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
        with engine_errors(f"looking up the network of {app}"):
            rows = self._api.containers(all=True, filters=filters)
        return _default_of(app, set().union(*(_networks_of(r) for r in rows)) if rows else set())

    def _take(self, platform: str, app: str) -> str | None:
        """A free network for the app: one known free, checked again with the engine (a container made
        on it since, by hand, keeps it out of the pool)."""
        while True:
            with self._lock:
                if (platform, app) in self._held:  # taken meanwhile by another thread
                    return self._held[(platform, app)]
                name = self._take_free(platform)
                if name is None:
                    return None
                self._held[(platform, app)] = name
            with engine_errors(f"looking up network {name}"):
                if not self._api.containers(all=True, filters={"network": [name]}):
                    return name
            with self._lock:
                if self._held.get((platform, app)) == name:
                    del self._held[(platform, app)]

    def _take_free(self, platform: str) -> str | None:
        """A network known free and not held (the caller holds the lock)."""
        held = set(self._held.values())
        free = self._free.get(platform, set())
        while free:
            name = free.pop()
            if name not in held:
                return name
        return None

    # -- the refill -------------------------------------------------------------------------------

    def keep_up(self, platform: str) -> None:
        """Refill the platform's free networks in the background when fewer than ``size`` are known
        free (or none was looked for yet), unless a refill runs already: asking costs nothing."""
        if self.size == 0:
            return
        with self._lock:
            short = platform not in self._filled or len(self._free.get(platform, ())) < self.size
            if platform in self._refilling or not short:
                return
            self._refilling.add(platform)
        self._spawn(lambda: self._refill(platform))

    def _refill(self, platform: str) -> None:
        try:
            self.refill(platform)
        except Exception:  # the engine did not answer: the next network taken tries again
            log.warning("refilling the network pool of %s failed", platform, exc_info=True)
        finally:
            with self._lock:
                self._refilling.discard(platform)

    def refill(self, platform: str) -> None:
        """Find the free pooled networks in the engine, then make or remove some until ``size`` are."""
        free = self.unused(platform)
        with self._lock:
            held = set(self._held.values())
            free -= held
            self._free[platform] = set(free)
            self._filled.add(platform)
        for _ in range(self.size - len(free)):
            made = self._make(platform)
            with self._lock:
                self._free.setdefault(platform, set()).add(made)
        for _ in range(len(free) - self.size):
            with self._lock:  # trimmed only while nobody takes it
                name = self._take_free(platform)
                if name is None:
                    return
                with contextlib.suppress(docker.errors.APIError):  # in use meanwhile: kept
                    self._api.remove_network(name)

    def unused(self, platform: str) -> set[str]:
        """The platform's pooled networks that no container (of any kind, in any state) is on."""
        with engine_errors("listing the pooled networks"):
            labels = [f"{LABEL_PLATFORM}={platform}", f"{LABEL_POOL}=1"]
            pooled = {str(n["Name"]) for n in self._api.networks(filters={"label": labels})}
            rows = self._api.containers(all=True) if pooled else []
        return pooled - set().union(*(_networks_of(r) for r in rows))

    def _make(self, platform: str) -> str:
        name = pool_network_name()
        labels = {LABEL_PLATFORM: platform, LABEL_POOL: "1"}
        with engine_errors(f"creating network {name}"):
            self._api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
        return name
