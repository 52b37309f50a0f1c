"""Why a rollout's target is not ready, for whoever waits on it: crash loops caught early, and the
failure message of a rollout given up.

A service of the target whose new instances keep exiting the same way is *crash-looping*: once its
instances (of the target release) have exited ``CRASH_LOOP_EXITS`` times in a row with the same exit
code, and none of them is ready, waiting for the deadline cannot help: the rollout is
given up at once ("web: exited 3 times (exit 3)"). Exits count whether the engine restarts the
container in place (its restart policy) or the loop replaces it. Until then the rollout's progress
says so ("web: 0/1 ready, restarted 2x (exit 3)").

A rollout given up at its deadline says what each instance that is not ready shows: its container
health check's last output, the monitor's last probe error ("GET / -> connection refused"), how it
exited, or the engine's word on it (a Swarm task's error). The last log lines come de-duplicated.

A container health check that cannot even start (its command is not in the image: the engine's exec
error, exit -1) can never pass: once every new instance of a service shows it for its last
``UNRUNNABLE_RUNS`` runs, the rollout is given up at once too ("web: health check cannot run: exec:
"curl": executable file not found in $PATH"). A check that runs and fails waits for the deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mypaas.domain import HealthResult, Instance, InstanceReport, ServiceSpec
from mypaas.errors import MyPaasError
from mypaas.manager.reconcile.kinds import Failure
from mypaas.manager.reconcile.plan import DesiredApp, Revision, counts, revision
from mypaas.states import AppState, InstanceState

TIMES = "\N{MULTIPLICATION SIGN}"  # as in "boom (x10)" and "restarted 2x"
CRASH_LOOP_EXITS = 3  # exits of a service's new instances, with one exit code, that give a rollout up
TAIL_LINES = 20
_MAX_DETAIL = 300  # characters of a health check's output shown
UNRUNNABLE_RUNS = 3  # health check runs in a row that could not start, on every new instance
# the engine's word for a health check command it could not start (not in the image, not executable)
_CANNOT_START = ("executable file not found", "oci runtime exec failed", "no such file or directory")
_CANNOT_START_CODES = (-1, 126, 127)
_EXEC_REASON = re.compile(r'.*(exec: ".*?)(?::\s*unknown)?\s*$', re.DOTALL)


def dedup_lines(text: str) -> str:
    """Each distinct line once, in order of first appearance, counted when repeated: "boom (x10)"."""
    seen: dict[str, int] = {}
    for line in text.splitlines():
        if line.strip():
            seen[line] = seen.get(line, 0) + 1
    return "\n".join(line if n == 1 else f"{line} ({TIMES}{n})" for line, n in seen.items())


def exits_text(exits: int, code: int | None) -> str:
    times = "once" if exits == 1 else f"{exits} times"
    return f"exited {times}" + (f" (exit {code})" if code is not None else "")


def health_text(report: InstanceReport) -> str | None:
    """The last failed run of the container's health check: "health check failing (exit 1): output"."""
    failed = [run for run in report.health if run.exit_code != 0]
    if not failed or report.health[-1].exit_code == 0:
        return None
    last = failed[-1]
    output = " ".join(last.output.split())[:_MAX_DETAIL] or "no output"
    return f"health check failing (exit {last.exit_code}): {output}"


def cannot_start(run: HealthResult) -> bool:
    """True when a health check run is the engine failing to start its command."""
    output = run.output.lower()
    return run.exit_code in _CANNOT_START_CODES and any(word in output for word in _CANNOT_START)


def unrunnable_text(report: InstanceReport | None) -> str | None:
    """The engine's reason ('exec: "curl": executable file not found in $PATH') when the health
    check's last ``UNRUNNABLE_RUNS`` runs all failed to start; else None."""
    runs = report.health[-UNRUNNABLE_RUNS:] if report is not None else ()
    if len(runs) < UNRUNNABLE_RUNS or not all(cannot_start(run) for run in runs):
        return None
    output = " ".join(runs[-1].output.split())
    match = _EXEC_REASON.fullmatch(output)
    return (match[1] if match else output)[:_MAX_DETAIL]


@dataclass
class _Tally:
    """One service's exits at one target revision, across its instances."""

    exits: dict[str, int] = field(default_factory=dict)  # instance id -> times it exited
    total: int = 0
    code: int | None = None  # the last exit code
    same: int = 0  # exits in a row with that code
    codes: set[int] = field(default_factory=set)
    last: tuple[str, str] = ("", "")  # (id, name) of the instance that exited last

    def add(self, instance_id: str, exits: int, code: int | None, name: str = "") -> bool:
        """Count an instance's exits as the engine reports them; True when there are new ones."""
        new = exits - self.exits.get(instance_id, 0)
        if new <= 0:
            return False
        self.exits[instance_id] = exits
        self.last = (instance_id, name or instance_id[:12])
        self.total += new
        code = self.code if code is None else code  # not known: as the last one
        self.same = self.same + new if code == self.code else new
        self.code = code
        if code is not None:
            self.codes.add(code)
        return True


class RolloutWatch:
    """Follows each rolling app's target instances through the reconcile loop's passes."""

    def __init__(
        self,
        *,
        report: Callable[[str], InstanceReport | None],
        tail: Callable[[str, int], str],
        ready: Callable[[Instance], bool],
        probe_error: Callable[[Instance], str | None],
    ) -> None:
        self._report = report  # the backend's instance_report
        self._tail = tail  # the backend's tail
        self._ready = ready
        self._probe_error = probe_error
        self._tallies: dict[tuple[str, Revision, str], _Tally] = {}
        self._seen: dict[str, list[Instance]] = {}  # app -> its target's instances in the last pass
        self._unrunnable: dict[str, str] = {}  # app -> "web: health check cannot run: ..."

    def retain(self, apps: set[str]) -> None:
        """Forget the apps that are gone from the desired state."""
        self._tallies = {k: t for k, t in self._tallies.items() if k[0] in apps}
        self._seen = {name: insts for name, insts in self._seen.items() if name in apps}
        self._unrunnable = {name: r for name, r in self._unrunnable.items() if name in apps}

    def observe(self, app: DesiredApp, instances: list[Instance], gone: Sequence[Failure] = ()) -> list[str]:
        """Count the exits of the target's instances, listed or ``gone`` (Swarm's failed tasks);
        return the services whose count grew."""
        if app.state != AppState.RUNNING or not app.rolling or app.spec is None or app.target is None:
            self._tallies = {k: t for k, t in self._tallies.items() if k[0] != app.name}
            self._seen.pop(app.name, None)
            self._unrunnable.pop(app.name, None)
            return []
        target = app.target
        self._tallies = {k: t for k, t in self._tallies.items() if k[0] != app.name or k[1] == target}
        mine = [i for i in instances if revision(i) == target and i.service in app.spec.services]
        self._seen[app.name] = mine
        grew: list[str] = []
        for inst in mine:
            svc = app.spec.services[inst.service]
            down = inst.state in (InstanceState.EXITED, InstanceState.RESTARTING)
            if not down or (inst.state == InstanceState.EXITED and counts(svc, inst)):
                continue  # running, or a one-shot task that finished
            report = self._safe_report(inst.id)
            if report is None or not report.exits:
                continue
            tally = self._tallies.setdefault((app.name, target, inst.service), _Tally())
            code = report.exit_code if report.exit_code is not None else inst.exit_code  # as listed
            if tally.add(inst.id, report.exits, code, inst.name):
                grew.append(inst.service)
        for service, instance_id, report in gone:
            tally = self._tallies.setdefault((app.name, target, service), _Tally())
            if report.exits and tally.add(
                instance_id, report.exits, report.exit_code, f"task {instance_id[:12]}"
            ):
                grew.append(service)
        self._check_health(app.name, app.spec.services, mine)
        return list(dict.fromkeys(grew))

    def _check_health(self, app: str, services: Mapping[str, ServiceSpec], mine: list[Instance]) -> None:
        """Note a service of the target whose health check cannot run on any of its new instances."""
        self._unrunnable.pop(app, None)
        for service, svc in services.items():
            insts = [i for i in mine if i.service == service]
            if svc.healthcheck is None or not insts or any(self._ready(i) for i in insts):
                continue
            reasons = [unrunnable_text(self._safe_report(i.id)) for i in insts]
            if all(reasons):
                self._unrunnable[app] = f"{service}: health check cannot run: {reasons[-1]}"
                return

    def crash_loop(self, app: DesiredApp) -> str | None:
        """ "web: exited 3 times (exit 3)" when a service of the target is crash-looping, "web: health
        check cannot run: ..." when its health check cannot start; else None."""
        for (name, target, service), tally in self._tallies.items():
            if name != app.name or target != app.target:
                continue
            if tally.same < CRASH_LOOP_EXITS:
                continue
            if any(self._ready(i) for i in self._seen.get(app.name, []) if i.service == service):
                continue
            return f"{service}: {exits_text(tally.same, tally.code)}"
        return self._unrunnable.get(app.name)

    def annotate(self, app: DesiredApp, waiting: list[str]) -> list[str]:
        """The plan's "web: 0/1 ready" lines, with how often the service's new instances restarted."""
        out = []
        for line in waiting:
            restarted = self.restarted(app, line.split(":", 1)[0])
            out.append(f"{line}, {restarted}" if restarted else line)
        return out

    def restarted(self, app: DesiredApp, service: str) -> str:
        """ "restarted 2x (exit 3)" for a service of the target whose instances exited; else ""."""
        tally = self._tallies.get((app.name, app.target or (0, 0), service))
        if tally is None or not tally.total:
            return ""
        codes = ", ".join(f"exit {c}" for c in sorted(tally.codes))
        return f"restarted {tally.total}{TIMES}" + (f" ({codes})" if codes else "")

    # -- the failure message ----------------------------------------------------------------------

    def why_unready(self, app: DesiredApp) -> str:
        """One line per distinct reason the target's instances that are not ready show."""
        lines: list[str] = []
        for inst in self._unready(app):
            for reason in self._reasons(inst):
                line = f"{inst.service}: {reason}"
                if line not in lines:
                    lines.append(line)
        return "\n".join(lines)

    def tail(self, app: DesiredApp) -> str:
        """The last log lines, de-duplicated, of the instance that exited last, else of an instance of
        the target that is not ready."""
        mine = [t for k, t in self._tallies.items() if k[0] == app.name and k[1] == app.target]
        exited = [t.last for t in mine if t.last[0]]
        for instance_id, name in [*exited, *((i.id, i.name) for i in self._unready(app))]:
            text = dedup_lines(self._tail(instance_id, TAIL_LINES))
            if text:
                return f"[{name}]\n{text}"
        return ""

    def _unready(self, app: DesiredApp) -> list[Instance]:
        insts = self._seen.get(app.name, [])
        return [i for i in insts if not self._ready(i)] or insts

    def _reasons(self, inst: Instance) -> list[str]:
        report = self._safe_report(inst.id)
        reasons = []
        if report is not None:
            health = health_text(report)
            if health:
                reasons.append(health)
            if report.exits:
                reasons.append(exits_text(report.exits, report.exit_code))
            elif report.message and not health:
                reasons.append(report.message)
        probe = self._probe_error(inst)
        if probe:
            reasons.append(probe)
        return reasons

    def _safe_report(self, instance_id: str) -> InstanceReport | None:
        try:
            return self._report(instance_id)
        except MyPaasError:  # the engine did not answer: the next pass asks again
            return None
