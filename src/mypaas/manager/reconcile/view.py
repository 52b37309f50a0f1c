"""What the reconcile loop saw last, for whoever reads it without asking the engine: listings (``ps``,
``ls``), the monitor (routes, readiness, expected exits), the API's status. The loop replaces the
snapshot whole at the end of each pass; the instances it is stopping are tracked as they go."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from mypaas.domain import Instance
from mypaas.router.config import Route


@dataclass(frozen=True)
class Observed:
    """One pass's view: each app's instances, why each app is not converged, the routes pushed."""

    instances: dict[str, list[Instance]] = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    at: float = 0.0


class LoopView:
    def __init__(self) -> None:
        self.observed = Observed()
        self.error: str | None = None  # why the last pass failed (None: it did not)
        self._removing: dict[str, Instance] = {}  # being drained and stopped in the background
        self._lock = threading.Lock()

    @property
    def routes(self) -> list[Route]:
        return self.observed.routes

    def instances_per_node(self) -> dict[str, int]:
        """Swarm node id -> how many of the platform's instances it runs."""
        counts: dict[str, int] = {}
        for insts in self.observed.instances.values():
            for inst in insts:
                if inst.node:
                    counts[inst.node] = counts.get(inst.node, 0) + 1
        return counts

    # -- instances being removed ------------------------------------------------------------------

    def removing(self) -> set[str]:
        """Ids of the instances the loop is stopping (their exit is expected)."""
        with self._lock:
            return set(self._removing)

    def removing_any(self, app: str, service: str | None = None) -> bool:
        """Whether an instance of ``app`` (of ``service``, if given) is still being removed."""
        with self._lock:
            return any(
                i.app == app and (service is None or i.service == service) for i in self._removing.values()
            )

    def start_removing(self, inst: Instance) -> None:
        with self._lock:
            self._removing[inst.id] = inst

    def done_removing(self, instance_id: str) -> None:
        with self._lock:
            self._removing.pop(instance_id, None)
