"""The background work of `mypaas host create`: the driver account's driver makes the machine, the
manager logs in to it over SSH with the platform's machine key (pinning the host key it sees at first
contact), then bootstraps and joins it like `host add`. Any failure once the machine exists deletes it
and forgets the host: "creating NAME failed at <step>: <reason>".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import select

from mypaas.errors import Conflict, MyPaasError
from mypaas.iaas.base import (
    HostKeyUnknown,
    HostTarget,
    Machine,
    MachineCreateFailed,
    MachineDriver,
    MachineRequest,
)
from mypaas.manager.hosts.jobs import HostJobs, Job, _reason
from mypaas.manager.state.models import HostRow

log = logging.getLogger("mypaas.hosts")

SWEEP_WAIT_S = 600.0  # a creation waits this long at most for the orphan sweep after a restart


class MachineJobs(HostJobs):
    """Runs adds and removals, and creations (``run_create``, each on a thread of its own)."""

    def run_create(
        self,
        job: Job,
        driver: MachineDriver,
        request: MachineRequest,
        connect: Callable[[HostTarget], Machine],
        swept: threading.Event,
    ) -> None:
        emit = self._emitter(job.op_id)
        step, made = "create", None
        ok, message = False, f"creating {job.name} failed: the manager's thread stopped"
        try:
            swept.wait(SWEEP_WAIT_S)  # after a restart, orphans are deleted before anything is made
            size, image = request.size or "the default size", request.image or "the default image"
            emit(f"creating machine {request.name} with driver account {job.account} ({size}, {image})")
            made = driver.create_machine(request)
            self._record_machine(job, made)
            emit(f"machine {made.machine_id} is up at {made.address}")
            step = "ssh"
            self._first_contact(job, made, connect, emit)
            step = "bootstrap"
            message = self._provision_and_join(job, emit)
        except Exception as exc:  # every failure deletes the machine and forgets the host
            if isinstance(exc, MachineCreateFailed):
                step, reason = exc.step, exc.reason
            else:
                step, reason = ("join" if job.joining else step), _reason(exc)
            if not isinstance(exc, MyPaasError):
                log.exception("creating host %s", job.name)
            message = f"creating {job.name} failed at {step}: {reason}"
            message += self._undo_create(job, driver, made, emit)
        else:
            ok = True
        finally:  # whatever the clean-up did, the operation ends: `host create` stops waiting
            try:
                if job.machine is not None:
                    job.machine.close()
            finally:
                self._finish(job.op_id, ok=ok, message=message)

    def _record_machine(self, job: Job, made: HostTarget) -> None:
        """The machine exists: its id and address go into the host's row at once (what claims it)."""
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is None:
                raise Conflict("the host was removed meanwhile", field="host")
            row.machine_id = made.machine_id
            taken = s.scalar(
                select(HostRow.name).where(HostRow.address == made.address, HostRow.id != row.id)
            )
            if taken is not None:
                raise Conflict(
                    f"the new machine's address {made.address} is host {taken}'s already", field="name"
                )
            row.address, row.port, row.user = made.address, made.port, made.user

    def _first_contact(
        self,
        job: Job,
        made: HostTarget,
        connect: Callable[[HostTarget], Machine],
        emit: Callable[[str], None],
    ) -> None:
        """Log in with the machine key. The host key is pinned: the one the driver made the machine with
        (libvirt seeds one), else the one seen now (the machine is brand new)."""
        target = replace(made, driver="ssh", key_path=job.target.key_path)
        if target.host_key:
            emit(f"its host key is {target.host_key} (made with the machine): pinned")
        try:
            job.machine = connect(target)
        except HostKeyUnknown as exc:
            target = replace(target, host_key=exc.fingerprint)
            emit(f"its host key is {exc.fingerprint}: pinned")
            job.machine = connect(target)
        job.target = target
        with self._sessions.begin() as s:
            row = s.get(HostRow, job.host_id)
            if row is not None:
                row.host_key = target.host_key or ""

    def _undo_create(
        self, job: Job, driver: MachineDriver, made: HostTarget | None, emit: Callable[[str], None]
    ) -> str:
        """Leave the Swarm again if it joined, delete the machine, forget the host: each step runs even
        when an earlier one fails (the creation fails anyway). -> what is left behind, for the message"""
        left = ""
        if job.joining and job.machine is not None:
            self._leave_again(job, emit)  # says itself what failed
        if made is not None:
            try:
                driver.destroy_machine(made)
                emit(f"machine {made.machine_id} deleted")
            except Exception as exc:
                log.warning("deleting machine %s of %s: %s", made.machine_id, job.account, _reason(exc))
                emit(f"deleting machine {made.machine_id} failed: {_reason(exc)}; it is left behind")
                left = f"; machine {made.machine_id} is left behind: delete it by hand"
        try:
            self._forget(job)
        except Exception as exc:
            log.exception("forgetting host %s", job.name)
            emit(f"forgetting host {job.name} failed: {_reason(exc)}")
            left += f"; forgetting host {job.name} failed too: {_reason(exc)}"
        return left
