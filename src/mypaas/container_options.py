"""Plain types of how each instance of a service runs, beyond its image and command (compose: ``ulimits``,
``logging``, per-network ``aliases``, ``deploy.restart_policy``, ``deploy.update_config``): the values
``ServiceSpec`` (domain.py) holds in its "container options" block. No I/O here; backend-neutral."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    from mypaas.domain import ServiceSpec

# Linux capabilities that act only inside the container (Docker grants them all by default): a file may
# add them back after a cap_drop. Any other needs the admin setting allow_privileged.
CONTAINED_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ulimit(_Frozen):
    """One resource limit of the instance's processes (-1: unlimited)."""

    name: str
    soft: int
    hard: int


class LogSpec(_Frozen):
    """Where the engine keeps an instance's output: one of its local drivers, so ``mypaas logs`` reads it."""

    driver: str = "json-file"  # json-file | local
    options: dict[str, str] = Field(default_factory=dict)


class NetworkOptions(_Frozen):
    """How a service joins one of the app's networks (compose ``networks.<name>``)."""

    aliases: list[str] = Field(default_factory=list)


class IpamPool(_Frozen):
    """One address pool of an app network (compose top-level ``networks.<name>.ipam.config``)."""

    subnet: str
    ip_range: str | None = None
    gateway: str | None = None


class RestartPolicy(_Frozen):
    """What ``restart: on-failure:N`` and ``deploy.restart_policy`` add to the restart condition."""

    max_attempts: int | None = None  # None: no limit
    delay_s: float | None = None  # None: the platform's default (Swarm)
    window_s: float | None = None


class UpdatePolicy(_Frozen):
    """``deploy.update_config``: how Swarm replaces a service's tasks (None: MyPaas's default)."""

    order: str | None = None  # start-first | stop-first
    parallelism: int | None = None
    delay_s: float | None = None
    failure_action: str | None = None  # continue | pause | rollback
    monitor_s: float | None = None
    max_failure_ratio: float | None = None


def check_platform(svc: ServiceSpec, image_platform: str) -> None:
    """Refuse a service whose ``platform`` is not its image's (the platform the engine has it for)."""
    if svc.platform is None or not image_platform:
        return
    wanted, actual = svc.platform.split("/"), _aliases(image_platform.lower()).split("/")
    if wanted[:2] != actual[:2] or (len(wanted) > 2 and len(actual) > 2 and wanted[2] != actual[2]):
        raise InvalidSpec(
            f"services.{svc.name}.platform: {svc.platform} is not the platform of its image on this "
            f"engine ({image_platform})",
            field=f"services.{svc.name}.platform",
        )


def _aliases(platform: str) -> str:
    """The engine's names for an architecture as the compose-spec writes them."""
    for engine_name, name in (("x86_64", "amd64"), ("aarch64", "arm64")):
        platform = platform.replace(f"/{engine_name}", f"/{name}")
    return platform


def check_swarm(svc: ServiceSpec, where: str) -> None:
    """Refuse what a Swarm service cannot do, saying why (the deploy fails; the current release serves)."""
    refusals = [
        (
            svc.network_mode is not None,
            f"network_mode {svc.network_mode}: a Swarm task is on the service's networks",
        ),
        (svc.pid == "host", "pid host: Swarm cannot share the host's process namespace"),
        (svc.ipc == "host", "ipc host: Swarm cannot share the host's IPC namespace"),
    ]
    for refused, why in [*refusals, *_docker_only(svc)]:
        if refused:
            raise InvalidSpec(f"{where}: {why}; deploy it on the docker backend or drop the key", field=where)


def _docker_only(svc: ServiceSpec) -> list[tuple[bool, str]]:
    """The container options a Swarm task has no setting for (compose domainname, cpu_shares...)."""
    given = {
        "domainname": svc.domainname is not None,
        "cpu_shares": svc.cpu_shares is not None,
        "cpuset": svc.cpuset is not None,
        "oom_score_adj": svc.oom_score_adj is not None,
        "mem_swappiness": svc.mem_swappiness is not None,
        "oom_kill_disable": svc.oom_kill_disable,
    }
    refusals = [(is_set, f"{key}: a Swarm task has no such setting") for key, is_set in given.items()]
    return refusals
