"""The composer's interface: the Backend protocol every backend implements (``docker``: one engine;
``swarm``: a cluster, whose manager also runs whole services as a ServiceBackend), and the requests
and reports that cross it. Callers speak of an app's compose networks and volumes; their engine names
and labels stay behind this interface (composer/engine.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from threading import Event
from typing import Protocol

from mypaas.domain import EngineEvent, Instance, InstanceReport, ProcessInfo, ServiceSpec
from mypaas.uploads import Blob

# Labels every MyPaas resource carries; the reconcile loop finds its resources by them.
LABEL_PLATFORM = "mypaas.platform"
LABEL_APP = "mypaas.app"
LABEL_SERVICE = "mypaas.service"
LABEL_RELEASE = "mypaas.release"
LABEL_GENERATION = "mypaas.generation"
LABEL_PORT = "mypaas.port"


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; callers check these instead of probing for errors."""

    multi_host: bool = False
    build: bool = True
    published_ports: bool = True
    healthchecks: bool = True
    services: bool = False  # runs whole services and rolls them out itself (ServiceBackend)


@dataclass(frozen=True)
class ImageInfo:
    id: str  # content digest (sha256:...)
    ref: str
    exposed_ports: tuple[int, ...] = ()
    size: int = 0
    platform: str = ""  # os/arch[/variant], as the engine reports it ("" when unknown)
    has_command: bool = True  # a CMD or an ENTRYPOINT (an imported tar has neither unless given one)


@dataclass(frozen=True)
class VolumeInfo:
    """A named volume of an app on the platform, as the engine has it (also after its app is gone)."""

    name: str  # the engine's name (what `mypaas volumes rm` takes)
    app: str
    volume: str  # the compose name, in the app's file
    used_by: tuple[str, ...] = ()  # the containers that mount it (running or not)
    created: str = ""  # when the engine made it (its own timestamp text)


@dataclass(frozen=True)
class SecretFile:
    """A secret or config an instance sees as a read-only file: the docker backend bind-mounts a copy
    it keeps under the manager's home, the swarm backend makes a Swarm secret or config of it."""

    kind: str  # secret | config
    name: str  # the app's secret or config (its compose name)
    digest: str  # the value's keyed digest: equal digests, equal values
    target: str  # absolute path in the instance
    data: bytes = field(repr=False)
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


@dataclass(frozen=True)
class InstanceRequest:
    """Everything needed to start one replica of one service of one release."""

    platform: str
    app: str
    service: ServiceSpec
    release: int
    generation: int
    name: str
    environment: dict[str, str]
    # the app's networks the instance joins, by their compose names ("" or none at all: the app's
    # default network); the first is the one the router reaches it on
    networks: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()  # the app's named volumes (compose top-level), which mounts refer to
    secret_files: tuple[SecretFile, ...] = ()  # the service's secrets and configs, with their values


@dataclass(frozen=True)
class ServiceRequest:
    """One service of one release, run by a backend that rolls services out itself (Swarm)."""

    platform: str
    app: str
    service: ServiceSpec
    release: int
    generation: int
    replicas: int
    image: str  # what every host pulls: the platform registry's reference by digest
    environment: dict[str, str]
    networks: tuple[str, ...] = ()  # the app's networks by their compose names (none: the default one)
    volumes: tuple[str, ...] = ()  # the app's named volumes (compose top-level)
    constraints: tuple[str, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()  # the service's secrets and configs, with their values


@dataclass(frozen=True)
class ServiceState:
    """A running service as the backend reports it; ``update_state`` is the engine's rollout state
    (updating, completed, paused, rollback_started, rollback_completed, ...) or None."""

    id: str
    name: str
    app: str
    service: str
    release: int
    generation: int
    replicas: int
    spec_key: str  # a digest of everything but the replica count: equal keys need no rollout
    update_state: str | None = None
    update_message: str = ""
    previous: tuple[int, int] | None = None  # (release, generation) of the spec before the last update


class Backend(Protocol):
    """Runs instances. Every method is idempotent where the name says "ensure" or "remove"."""

    capabilities: Capabilities

    def ping(self) -> bool: ...

    def list_instances(self, platform: str) -> list[Instance]: ...

    def create_instance(self, req: InstanceRequest) -> Instance: ...

    def remove_instance(self, instance_id: str, grace_s: float) -> None: ...

    def ensure_network(self, platform: str, app: str, network: str | None = None) -> None:
        """Make the app's network ``network`` (a compose network name; None: the app's default one)."""
        ...

    def ensure_volume(self, platform: str, app: str, volume: str) -> None:
        """Make the app's named volume ``volume`` (a compose top-level volume name)."""
        ...

    def volume_exists(self, name: str) -> bool:
        """Does the engine have a volume named ``name`` (an external volume an app mounts as it is)?"""
        ...

    def host_port_free(self, port: int) -> bool:
        """May an instance publish TCP ``port`` on the hosts it can run on (nothing holds it there)?"""
        ...

    def remove_app_resources(
        self, platform: str, app: str, *, volumes: bool = True, force: bool = False
    ) -> None:
        """Remove the networks labelled for ``app`` and, with ``volumes``, its named volumes
        (instances must be gone). A network a container MyPaas did not make is still attached to
        raises Conflict naming it; ``force`` disconnects such containers first."""
        ...

    def list_volumes(self, platform: str) -> list[VolumeInfo]:
        """The apps' named volumes on the platform, those of removed apps included."""
        ...

    def remove_volume(self, platform: str, name: str) -> None:
        """Remove one of the platform's app volumes: NotFound when it has none of that name,
        Conflict when a container mounts it."""
        ...

    def image(self, ref: str) -> ImageInfo:
        """Look an image up; raise NotFound when the engine does not have it."""
        ...

    def import_image(self, data: bytes | Iterable[bytes], *, ref: str, changes: list[str]) -> ImageInfo:
        """Import a root filesystem tarball as image ``ref`` (Dockerfile-style ``changes``).

        ``data`` is the tar, whole or as a stream of pieces (a generator, a binary file) sent as it
        comes; an exception the stream raises aborts the import and leaves nothing in the engine.
        """
        ...

    def build_image(
        self,
        context: Blob,
        *,
        tag: str,
        dockerfile: str = "Dockerfile",
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        on_line: Callable[[str], None] = print,
    ) -> ImageInfo: ...

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        """Tag ``image`` as ``repository:tag`` and push it; return the pushed manifest's digest."""
        ...

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        """Remove an image reference from the engine (idempotent); ``force``: even the last reference
        of an image a container uses (the container keeps it)."""
        ...

    def tail(self, instance_id: str, lines: int) -> str: ...

    def logs(
        self, instance_ids: list[str], *, tail: int | None, follow: bool, stop: Event
    ) -> Iterator[str]: ...

    def watch(
        self,
        platform: str,
        on_event: Callable[[], None],
        stop: Event,
        on_detail: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        """Call ``on_event`` for every engine event about the platform's instances, until ``stop``;
        ``on_detail`` gets the event itself."""
        ...

    def instance_process(self, instance_id: str) -> ProcessInfo | None:
        """The instance's process id and restart facts; None when the instance is gone."""
        ...

    def instance_report(self, instance_id: str) -> InstanceReport | None:
        """How often the instance exited, its health check's last results, the engine's own word on
        it; None when the instance is gone."""
        ...


class ServiceBackend(Backend, Protocol):
    """A backend that runs services (Swarm): it places, restarts and rolls out their instances."""

    def list_services(self, platform: str) -> list[ServiceState]: ...

    def service_key(self, req: ServiceRequest) -> str:
        """The ``spec_key`` the service will report once ``req`` is applied."""
        ...

    def ensure_service(self, req: ServiceRequest) -> None:
        """Create the service, or update it (a rolling update the engine carries out, rolled back
        by the engine when the new tasks fail) when its spec or replica count differs."""
        ...

    def remove_service(self, service_id: str) -> None: ...

    def failed_tasks(self, service_id: str) -> dict[str, InstanceReport]:
        """The service's tasks that failed (Swarm replaced each with a new one), by task id: their
        exit code and Swarm's word on them; none for a service that is gone."""
        ...

    def ensure_overlay_network(self, platform: str, app: str, network: str | None = None) -> None:
        """Make the app's network ``network`` (None: the app's default one) span the cluster."""
        ...

    def registry_login(self, registry: str, username: str, password: str) -> None:
        """Credentials every host's engine gets (with each service) to pull from ``registry``."""
        ...
