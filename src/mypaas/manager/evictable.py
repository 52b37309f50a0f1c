"""Eviction's hands (monitor/pressure.py decides which instance to move off a host short of memory):
what may move — each running instance of a node, weighed with its memory (the sampler's newest sample),
its service's replicas, and whether it can run elsewhere (its placement constraints; no volume held to
its host; Swarm restarts it) — and the move itself: the composer's command that stops the instance's
container on its host, run over the host's connection."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.hostside import stop_task_command
from mypaas.domain import ServiceSpec
from mypaas.manager.reconcile.view import LoopView
from mypaas.manager.state.desired import load_desired
from mypaas.monitor.metrics import Sample
from mypaas.monitor.pressure import Evictable
from mypaas.states import InstanceState

_RUNNING = (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY)
GRACE_S = 10  # an evicted instance's time to stop cleanly (SIGTERM, then SIGKILL)


class HostShell(Protocol):
    """Runs a command on a host (the manager's Hosts service)."""

    def run(self, name: str, argv: Sequence[str], *, what: str, timeout: float) -> None: ...


class HostEviction:
    """The monitor's ``Eviction``: instances weighed from the reconcile loop's last view, moved by the
    composer's stop command on their host."""

    def __init__(
        self,
        *,
        view: LoopView,
        latest: Callable[[], Mapping[str, Sample]],
        sessions: sessionmaker[Session],
        hosts: HostShell,
    ) -> None:
        self._view = view
        self._latest = latest  # the sampler's newest sample per instance id
        self._sessions = sessions
        self._hosts = hosts

    def instances_on(self, node_id: str) -> list[Evictable]:
        return evictables(node_id, self._view, self._latest(), self._sessions)

    def evict(self, host: str, victim: Evictable) -> None:
        command = stop_task_command(victim.task, GRACE_S)
        self._hosts.run(host, command, what=f"stopping {victim.name}", timeout=GRACE_S + 20)


def movable(svc: ServiceSpec | None) -> bool:
    """Whether a stopped instance of ``svc`` comes back elsewhere: not when its data is a volume on
    its host, nor when Swarm does not restart it (restart "no", or "on-failure" and a clean exit)."""
    if svc is None:
        return False
    on_host = any(v.source for v in svc.volumes)  # an anonymous volume is the instance's own
    return not on_host and svc.restart not in ("no", "on-failure")


def evictables(
    node_id: str, view: LoopView, latest: Mapping[str, Sample], sessions: sessionmaker[Session]
) -> list[Evictable]:
    """The running instances of Swarm node ``node_id``, as the reconcile loop saw them last."""
    running = [i for insts in view.observed.instances.values() for i in insts if i.state in _RUNNING]
    replicas = Counter((inst.app, inst.service) for inst in running)
    with sessions() as s:
        desired, _ = load_desired(s)
    services = {
        (app.name, svc.name): svc
        for app in desired.values()
        if app.spec is not None
        for svc in app.spec.services.values()
    }
    out = []
    for inst in running:
        if inst.node != node_id:
            continue
        svc = services.get((inst.app, inst.service))
        out.append(
            Evictable(
                task=inst.id,
                name=inst.name,
                app=inst.app,
                service=inst.service,
                mem_bytes=latest[inst.id].mem_bytes if inst.id in latest else 0,
                replicas=replicas[inst.app, inst.service],
                movable=movable(svc),
                constraints=tuple(svc.placement) if svc else (),
            )
        )
    return out
