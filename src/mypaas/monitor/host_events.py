"""A cluster's hosts as events: a host that joins, goes down (Swarm moves its instances), comes back or
leaves is recorded once, from the states the host listing reports every few seconds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from mypaas.errors import MyPaasError
from mypaas.monitor.events import EventSink
from mypaas.states import HostState

log = logging.getLogger("mypaas.hosts")


class HostLister(Protocol):
    def list(self) -> list[dict[str, Any]]: ...


class HostEvents:
    """``check()`` compares the hosts' states with the last ones seen; ``down()`` tells which are down."""

    def __init__(self, hosts: HostLister, events: EventSink, *, is_cluster: Callable[[], bool]) -> None:
        self._hosts = hosts
        self._events = events
        self._is_cluster = is_cluster
        self._states: dict[str, HostState] = {}  # host name -> state, as last seen

    def down(self) -> dict[str, bool]:
        """Every host seen, and whether it was down at the last check."""
        return {name: state == HostState.DOWN for name, state in self._states.items()}

    def check(self) -> bool:
        """Record the changes since the last check. Returns whether the platform is a cluster."""
        if not self._is_cluster():
            return False
        try:
            states = {str(h["name"]): HostState(h["state"]) for h in self._hosts.list()}
        except MyPaasError as exc:
            log.warning("listing hosts: %s", exc.message)
            return True
        record = self._events.record
        first = not self._states
        for name, state in states.items():
            before = self._states.get(name)
            if before is None and not first:
                record(None, "host_added", f"host {name} joined ({state})", {"host": name})
            if state == HostState.DOWN and before != HostState.DOWN:
                message = f"host {name} is down: Swarm moves its instances to the other hosts"
                record(None, "host_down", message, {"host": name})
            elif before == HostState.DOWN and state != HostState.DOWN:
                record(None, "host_up", f"host {name} is back ({state})", {"host": name})
        for name in self._states.keys() - states.keys():
            record(None, "host_removed", f"host {name} left the cluster", {"host": name})
        self._states = states
        return True
