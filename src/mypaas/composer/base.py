"""The Backend protocol every composer backend implements (docker now, swarm and kubernetes later)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from threading import Event
from typing import Protocol

from mypaas.domain import Instance, ServiceSpec

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


@dataclass(frozen=True)
class ImageInfo:
    id: str  # content digest (sha256:...)
    ref: str
    exposed_ports: tuple[int, ...] = ()
    size: int = 0


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
    networks: tuple[str, ...]  # full network names; the first is the one the router reaches
    volumes: dict[str, str] = field(default_factory=dict)  # app volume name -> engine volume name


@dataclass(frozen=True)
class ProcessInfo:
    """An instance's main process as the host sees it (for the monitor's file reads)."""

    pid: int  # 0 when it is not running
    restarts: int = 0
    oom_killed: bool = False
    exit_code: int | None = None


@dataclass(frozen=True)
class EngineEvent:
    """One engine event about an instance: ``action`` is die, oom, start, restart, kill, ..."""

    instance_id: str
    action: str
    app: str = ""
    service: str = ""
    name: str = ""
    exit_code: int | None = None
    at: float = 0.0


class Backend(Protocol):
    """Runs instances. Every method is idempotent where the name says "ensure" or "remove"."""

    capabilities: Capabilities

    def ping(self) -> bool: ...

    def list_instances(self, platform: str) -> list[Instance]: ...

    def create_instance(self, req: InstanceRequest) -> Instance: ...

    def remove_instance(self, instance_id: str, grace_s: float) -> None: ...

    def ensure_network(self, name: str, labels: dict[str, str]) -> None: ...

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None: ...

    def remove_app_resources(self, platform: str, app: str) -> None:
        """Remove the networks and volumes labelled for ``app`` (instances must be gone)."""
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
        context: bytes,
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

    def remove_image(self, ref: str) -> None:
        """Remove an image reference from the engine (idempotent)."""
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
