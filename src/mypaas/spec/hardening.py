"""The platform's container hardening defaults, written into a release's spec when a deploy makes it:
a pids limit (a fork bomb stays in its container), a memory limit, and ``no-new-privileges`` (a setuid
binary gives no more rights). A service sets its own ``pids_limit`` (``-1``, none, only with the admin
setting ``allow_privileged``) and memory limit; it turns ``no-new-privileges`` off only where the admin
setting ``allow_new_privileges`` allows it.

Applied to new releases only: a release already stored keeps its spec, so an upgrade rolls nothing out
(a rollback, a config or secret change re-uses a stored spec as it is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mypaas.domain import AppSpec, ServiceSpec
from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    from mypaas.settings import Settings

NNP_ON = "no-new-privileges=true"
NNP_OFF = "no-new-privileges=false"


@dataclass(frozen=True)
class Hardening:
    """The defaults (0 or False: none) and what a service may lift."""

    pids_limit: int = 0
    memory: int = 0  # bytes
    no_new_privileges: bool = False
    allow_new_privileges: bool = False
    allow_no_pids_limit: bool = False  # pids_limit: -1 (none): the admin setting allow_privileged

    @classmethod
    def of(cls, settings: Settings) -> Hardening:
        return cls(
            pids_limit=settings.default_pids_limit,
            memory=settings.default_memory,
            no_new_privileges=settings.no_new_privileges,
            allow_new_privileges=settings.allow_new_privileges,
            allow_no_pids_limit=settings.allow_privileged,
        )


def harden(spec: AppSpec, hardening: Hardening) -> AppSpec:
    """``spec`` with the defaults filled in where a service sets nothing."""
    services = {name: _service(svc, hardening, f"services.{name}") for name, svc in spec.services.items()}
    return spec.model_copy(update={"services": services})


def _service(svc: ServiceSpec, hardening: Hardening, where: str) -> ServiceSpec:
    update: dict[str, object] = {}
    unlimited = svc.pids_limit is not None and svc.pids_limit < 0
    if unlimited and hardening.pids_limit > 0 and not hardening.allow_no_pids_limit:
        raise InvalidSpec(
            f"{where}.pids_limit: -1 (no limit) is not allowed: a fork bomb would reach the host "
            "(admin setting allow_privileged)",
            field=f"{where}.pids_limit",
        )
    if svc.pids_limit is None and hardening.pids_limit > 0:
        update["pids_limit"] = hardening.pids_limit
    reserved = svc.reserve_memory or 0
    if svc.memory is None and hardening.memory > 0 and reserved <= hardening.memory:
        update["memory"] = hardening.memory
    if NNP_OFF in svc.security_opt:
        if not hardening.allow_new_privileges:
            raise InvalidSpec(
                f"{where}.security_opt: no-new-privileges:false is not allowed (admin setting "
                "allow_new_privileges)",
                field=f"{where}.security_opt",
            )
    elif hardening.no_new_privileges and NNP_ON not in svc.security_opt:
        update["security_opt"] = [*svc.security_opt, NNP_ON]
    return svc.model_copy(update=update) if update else svc
