"""The apps a pass need not plan again: an app whose desired state, instances and their verdicts are
what they were when its last plan found nothing to do would be planned the same, to nothing.

The desired state compares by identity: the reader gives an app that did not change the very object
of the last pass (state/desired.py, ``Unchanged``). The instances are compared as the backend listed
them, and the monitor's verdicts (ready, failed: both can change with time alone) are asked again on
every pass. Drift (an instance gone or changed behind the loop's back) changes the listing, so the app
is planned again. Only apps at rest are remembered: running or stopped, no operation in flight (no
deadline, the only input that changes with the clock), no rollout, no failure being retried; and only
apps run as containers (a Swarm app's plan reads the services its kind observed).
"""

from __future__ import annotations

from dataclasses import dataclass

from mypaas.domain import Instance
from mypaas.manager.reconcile.kinds import Readiness
from mypaas.manager.reconcile.plan import DesiredApp, Plan
from mypaas.states import AppState, BackendMode

Verdicts = tuple[tuple[bool, bool], ...]  # (ready, failed) of each instance, in listing order


@dataclass(frozen=True)
class _AtRest:
    app: DesiredApp
    instances: tuple[Instance, ...]
    verdicts: Verdicts


class Quiet:
    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness
        self._at_rest: dict[str, _AtRest] = {}

    def unchanged(self, app: DesiredApp, instances: list[Instance]) -> bool:
        """Was ``app`` at rest at its last plan, with the same desired state, instances and verdicts?"""
        rest = self._at_rest.get(app.name)
        return (
            rest is not None
            and rest.app is app
            and rest.instances == tuple(instances)
            and rest.verdicts == self._verdicts(instances)
        )

    def planned(self, app: DesiredApp, instances: list[Instance], plan: Plan, *, retrying: bool) -> None:
        """Remember ``app`` if its plan (carried out without a failure) leaves it at rest; else forget it."""
        if retrying or not _at_rest(app, plan):
            self._at_rest.pop(app.name, None)
            return
        self._at_rest[app.name] = _AtRest(app, tuple(instances), self._verdicts(instances))

    def forget(self, name: str) -> None:
        self._at_rest.pop(name, None)

    def retain(self, apps: set[str]) -> None:
        """Forget the apps that are gone from the desired state."""
        self._at_rest = {name: rest for name, rest in self._at_rest.items() if name in apps}

    def _verdicts(self, instances: list[Instance]) -> Verdicts:
        ready, failed = self._readiness.ready, self._readiness.failed
        return tuple((ready(i), failed(i)) for i in instances)


def _at_rest(app: DesiredApp, plan: Plan) -> bool:
    steps = (plan.create, plan.remove, plan.replaced, plan.waiting, plan.ensure, plan.drop_services)
    return (
        app.backend == BackendMode.DOCKER
        and app.state in (AppState.RUNNING, AppState.STOPPED)
        and not app.rolling
        and app.operation_id is None
        and app.deadline is None
        and plan.converged
        and not any(steps)
        and not (plan.swapping or plan.abandon or plan.overdue)
    )
