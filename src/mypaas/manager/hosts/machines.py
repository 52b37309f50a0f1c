"""`mypaas host create` and `host destroy`: hosts whose machines a driver account makes and deletes.
A creation records the host first (state adding, its account), then makes the machine in the
background (creating.py); `--count N` makes NAME-1..NAME-N. After a manager restart, the machines of
the creations it cut short (named as their forgotten hosts, in their account, claimed by no host) are
deleted before anything new is made; any other machine no host claims (another platform's sharing the
account, a VM an admin cloned) is left alone.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import Conflict, InvalidSpec, NotSupported
from mypaas.iaas.base import HostTarget, Machine, MachineRequest
from mypaas.manager.hosts.accounts import DriverAccounts
from mypaas.manager.hosts.creating import MachineJobs
from mypaas.manager.hosts.jobs import KIND_CREATE, Job, _reason
from mypaas.manager.hosts.keys import MachineKey
from mypaas.manager.hosts.listing import check_labels
from mypaas.manager.operations import Operations
from mypaas.manager.state.models import HostRow
from mypaas.states import HostState, Role

log = logging.getLogger("mypaas.hosts")

HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")  # a DNS label: every cloud takes it
MAX_COUNT = 50


class MachineHosts:
    """Creates hosts with a driver account; deletes their machines; sweeps orphans after a restart."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        operations: Operations,
        accounts: DriverAccounts,
        jobs: MachineJobs,
        key: MachineKey,
        connect: Callable[[HostTarget], Machine],
        check_cluster: Callable[[], object],
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._accounts = accounts
        self._jobs = jobs
        self._key = key
        self._connect = connect
        self._check_cluster = check_cluster
        self.swept = threading.Event()  # clear while the orphan sweep after a restart runs
        self.swept.set()

    def create(
        self,
        name: str,
        *,
        account: str,
        size: str | None = None,
        image: str | None = None,
        labels: dict[str, str] | None = None,
        count: int = 1,
        who: str = "",
    ) -> list[str]:
        """Check everything that can be checked now (nothing is made when one fails), record the
        hosts, then create each in the background. -> their operation ids"""
        names = host_names(name, count)
        labels = check_labels(labels or {})
        self._check_cluster()  # says at once when the cluster's address is not set
        driver = self._accounts.driver(account)
        if not driver.capabilities.create_machines:
            raise InvalidSpec(
                f"driver account {account} ({self._accounts.type_of(account)}) cannot create machines",
                field="driver",
            )
        _check_choice("size", size, [(s.name, *s.aliases) for s in driver.sizes()], account)
        _check_choice("image", image, [(i.name, *i.aliases) for i in driver.images()], account)
        public_key = self._key.public()
        jobs = self._record(names, account, labels, who)
        for n, job in enumerate(jobs):
            request = MachineRequest(
                job.name, size=size, image=image, labels=labels, ssh_public_key=public_key
            )
            own = driver if n == 0 else self._accounts.driver(account)  # one SDK connection per thread
            threading.Thread(
                target=self._jobs.run_create,
                args=(job, own, request, self._connect, self.swept),
                name=f"host-create {job.name}",
                daemon=True,
            ).start()
        return [job.op_id for job in jobs]

    def _record(self, names: Sequence[str], account: str, labels: dict[str, str], who: str) -> list[Job]:
        jobs = []
        with self._sessions.begin() as s:
            for name in names:
                taken = s.scalar(
                    select(HostRow.name).where(or_(HostRow.name == name, HostRow.address == name))
                )
                if taken is not None:
                    raise Conflict(f"the name {name} is taken by host {taken}", field="name")
                row = HostRow(
                    name=name,
                    address=name,  # until the machine has one
                    driver="ssh",
                    role=Role.WORKER,
                    labels=labels,
                    state=HostState.ADDING,
                    key_path=str(self._key.path),
                    account=account,
                )
                s.add(row)
                op = self._ops.new(s, app="", kind=KIND_CREATE, user=who)
                s.flush()
                target = HostTarget(driver="ssh", address=name, key_path=self._key.path)
                jobs.append(
                    Job(row.id, name, op.id, target, None, labels=labels, account=account, keep_name=True)
                )
        return jobs

    # -- host destroy ---------------------------------------------------------------------------------

    def destroyer(self, account: str, target: HostTarget) -> Callable[[Callable[[str], None]], None]:
        """What `host destroy` does once the host left the Swarm: delete its machine (checked now)."""
        driver = self._accounts.driver(account)
        if not driver.capabilities.destroy_machines:
            raise NotSupported(f"driver account {account} cannot destroy machines: delete it by hand")

        def destroy(emit: Callable[[str], None]) -> None:
            emit(f"deleting machine {target.machine_id} ({account})")
            driver.destroy_machine(target)
            emit(f"machine {target.machine_id} deleted")

        return destroy

    # -- after a restart ------------------------------------------------------------------------------

    def sweep_in_background(self, lost: set[tuple[str, str]]) -> None:
        """Delete the machines of the creations cut short (``lost``: account, host name, as jobs.recover
        returns them) on a thread; creations wait for it (``swept``)."""
        self.swept.clear()
        threading.Thread(target=self.sweep, args=(lost,), name="host-create sweep", daemon=True).start()

    def sweep(self, lost: set[tuple[str, str]]) -> list[str]:
        """Delete the machines this platform started creating and lost track of: in a ``lost`` account,
        named as a ``lost`` host, claimed by no host. Other unclaimed machines stay. -> the deleted ids"""
        deleted: list[str] = []
        try:
            with self._sessions() as s:
                claimed = set(s.scalars(select(HostRow.machine_id).where(HostRow.machine_id.is_not(None))))
            for account in sorted({a for a, _ in lost}):
                names = {n for a, n in lost if a == account}
                deleted += self._sweep_account(account, names, claimed)
        finally:
            self.swept.set()
        return deleted

    def _sweep_account(self, account: str, names: set[str], claimed: set[str | None]) -> list[str]:
        deleted = []
        try:
            driver = self._accounts.driver(account)
            if not driver.capabilities.destroy_machines:
                return []
            for target in driver.machines():
                if target.machine_id in claimed:
                    continue
                if target.name not in names:
                    log.info(
                        "machine %s (%s) of driver account %s: no host claims it, but this platform was not "
                        "creating it; left alone",
                        target.machine_id,
                        target.name,
                        account,
                    )
                    continue
                log.warning(
                    "deleting machine %s (%s) of %s: its creation was cut short",
                    target.machine_id,
                    target.name,
                    account,
                )
                driver.destroy_machine(target)
                deleted.append(target.machine_id or target.address)
            for name in sorted(names):  # what a creation left before its machine carried the tag
                driver.forget_creation(name)
        except Exception as exc:  # an endpoint down now: say what may be left behind
            log.warning(
                "deleting the machines of the creations cut short (%s) of driver account %s: %s; "
                "delete any that exist by hand",
                ", ".join(sorted(names)),
                account,
                _reason(exc),
            )
        return deleted


def host_names(name: str, count: int) -> list[str]:
    """NAME, or NAME-1..NAME-N with a count."""
    if not 1 <= count <= MAX_COUNT:
        raise InvalidSpec(f"count must be 1 to {MAX_COUNT}, not {count}", field="count")
    names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    if not all(HOST_NAME.match(n) for n in names):
        raise InvalidSpec(
            f"invalid host name {name!r}: lower-case letters, digits and '-', at most 63 characters"
            + (" with its -N suffix" if count > 1 else ""),
            field="name",
        )
    return names


def _check_choice(field: str, value: str | None, known: Sequence[tuple[str, ...]], account: str) -> None:
    """``value`` must be a size's or image's name, or another name the driver takes for it (an id)."""
    if value is not None and not any(value in names for names in known):
        listed = ", ".join(names[0] for names in known) or "none"
        raise InvalidSpec(
            f"unknown {field} {value!r} for driver account {account}; {field}s: {listed}", field=field
        )
