"""The states of MyPaas's things, one enum each: compared as members, stored and sent as their text.

Plain enums with no other import, so that the CLI can use them without loading the domain's models.
"""

from __future__ import annotations

from enum import StrEnum


class AppState(StrEnum):
    """What a user asked of an app."""

    RUNNING = "running"
    STOPPED = "stopped"  # instances stopped; releases, config and domains kept
    DELETING = "deleting"  # being removed: gone once its instances and resources are


class BackendMode(StrEnum):
    """How the composer runs an app (and, for the platform, how new releases run)."""

    DOCKER = "docker"  # containers on one engine
    SWARM = "swarm"  # services of a Swarm cluster


class OperationStatus(StrEnum):
    """Where a piece of work a client follows is."""

    PENDING = "pending"
    BUILDING = "building"  # building images; the release is recorded once they are built
    RUNNING = "running"  # rolling out (or working on a host)
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (OperationStatus.SUCCEEDED, OperationStatus.FAILED)


class HostState(StrEnum):
    """A host as MyPaas records it while working on it, then as the Swarm reports its node."""

    ADDING = "adding"
    READY = "ready"  # takes instances
    DRAINING = "draining"  # drained; instances still moving off
    DRAINED = "drained"
    PAUSED = "paused"  # paused by hand: keeps its instances, takes no new ones
    PRESSURE = "pressure"  # paused by the monitor: short of memory or disk
    DOWN = "down"  # its node does not answer the Swarm
    MISSING = "missing"  # recorded, but gone from the Swarm
    REMOVING = "removing"
    FAILED = "failed"  # an add or a removal stopped half-way (see its message)
    UNKNOWN = "unknown"  # a node state MyPaas does not know

    @property
    def busy(self) -> bool:
        """An add or a removal is working on it."""
        return self in (HostState.ADDING, HostState.REMOVING)


class SwarmState(StrEnum):
    """The local engine's place in a Swarm."""

    INACTIVE = "inactive"
    PENDING = "pending"
    ACTIVE = "active"
    ERROR = "error"
    LOCKED = "locked"


class NodeState(StrEnum):
    """A Swarm node as the manager sees it."""

    READY = "ready"
    DOWN = "down"
    DISCONNECTED = "disconnected"
    UNKNOWN = "unknown"


class Role(StrEnum):
    """A Swarm node's role."""

    MANAGER = "manager"
    WORKER = "worker"


class Availability(StrEnum):
    """Whether the Swarm places tasks on a node."""

    ACTIVE = "active"  # takes tasks
    PAUSE = "pause"  # keeps its tasks, takes no new ones
    DRAIN = "drain"  # its tasks move elsewhere


class UpdateState(StrEnum):
    """Where the engine is in rolling out an update of a service it runs (Swarm's update status)."""

    UPDATING = "updating"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_PAUSED = "rollback_paused"
    ROLLBACK_COMPLETED = "rollback_completed"

    @property
    def rolling_back(self) -> bool:
        """The engine rolls (or rolled) the update back: the new tasks failed."""
        return self in (
            UpdateState.ROLLBACK_STARTED,
            UpdateState.ROLLBACK_PAUSED,
            UpdateState.ROLLBACK_COMPLETED,
        )


class ReleaseStatus(StrEnum):
    PENDING = "pending"  # being rolled out
    ACTIVE = "active"  # the release serving now
    SUPERSEDED = "superseded"  # served once, replaced by a later one
    FAILED = "failed"  # never got healthy; abandoned
    CANCELLED = "cancelled"  # replaced by a newer deploy before it served


class InstanceState(StrEnum):
    """Docker container states and Swarm task states mapped into one set."""

    CREATED = "created"
    STARTING = "starting"  # running, not yet healthy
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    EXITED = "exited"
    UNKNOWN = "unknown"


class AlertKind(StrEnum):
    """The kinds of alert rule (monitor/alerts.py evaluates them; the CLI's help lists them)."""

    APP_DOWN = "app_down"
    ERROR_RATE = "error_rate"
    MEMORY_PCT = "memory_pct"
    HOST_UNREACHABLE = "host_unreachable"


ALERT_KINDS = {  # what each kind watches, as `mypaas alerts --help` says it
    AlertKind.APP_DOWN: "an app has no ready instance",
    AlertKind.ERROR_RATE: "an app's 5xx answers are over THRESHOLD % of its requests",
    AlertKind.MEMORY_PCT: "an instance's memory is over THRESHOLD % of its limit",
    AlertKind.HOST_UNREACHABLE: "a host (or this machine's engine) does not answer",
}
THRESHOLD_KINDS = frozenset({AlertKind.ERROR_RATE, AlertKind.MEMORY_PCT})  # the kinds with a threshold
