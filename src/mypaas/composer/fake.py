"""An in-memory backend for unit tests, behind the same Backend protocol as the real ones.

It never touches the network or an engine; the shared contract tests run it next to the docker backend.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from threading import Event

from mypaas.composer.base import (
    LABEL_APP,
    Capabilities,
    EngineEvent,
    ImageInfo,
    InstanceRequest,
    ProcessInfo,
)
from mypaas.composer.engine import instance_networks, network_name, resource_labels, volume_name
from mypaas.domain import Instance, InstanceState
from mypaas.errors import BuildFailed, Conflict, NotFound


class FakeBackend:
    capabilities = Capabilities(multi_host=False, build=True, published_ports=True, healthchecks=True)

    def __init__(self) -> None:
        self.images: dict[str, ImageInfo] = {}
        self.instances: dict[str, Instance] = {}
        self.networks: dict[str, dict[str, str]] = {}  # by engine name, as the engine has them
        self.volumes: dict[str, dict[str, str]] = {}
        self.logs_by_id: dict[str, list[str]] = {}
        self.platform_of: dict[str, str] = {}
        self.calls: list[str] = []
        self.imported_bytes = 0
        self.pushed: dict[str, str] = {}
        self.pids: dict[str, int] = {}  # instance id -> a host pid, set by tests of the monitor
        self.taken_ports: set[int] = set()  # host ports something else holds, set by tests
        self.published: dict[str, set[int]] = {}  # instance id -> the TCP host ports it holds
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add_image(self, ref: str, exposed: tuple[int, ...] = ()) -> ImageInfo:
        info = ImageInfo(id=f"sha256:{len(self.images) + 1:064x}", ref=ref, exposed_ports=exposed)
        self.images[ref] = info
        self.images[info.id] = info
        return info

    def set_state(self, instance_id: str, state: InstanceState, exit_code: int | None = None) -> None:
        inst = self.instances[instance_id]
        self.instances[instance_id] = inst.model_copy(update={"state": state, "exit_code": exit_code})

    def ping(self) -> bool:
        return True

    def host_port_free(self, port: int) -> bool:
        with self._lock:
            return port not in self.taken_ports and not any(port in p for p in self.published.values())

    def list_instances(self, platform: str) -> list[Instance]:
        self.calls.append("list")
        with self._lock:
            return [i for iid, i in self.instances.items() if self.platform_of[iid] == platform]

    def create_instance(self, req: InstanceRequest) -> Instance:
        self.calls.append(f"create {req.app}/{req.service.name}")
        if req.service.image_id not in self.images:
            raise NotFound(f"image {req.service.image_id} not found")
        network = instance_networks(req)[0]
        if network not in self.networks:
            raise NotFound(f"network {network} not found")
        ports = {p.host for p in req.service.ports if p.host is not None and p.protocol == "tcp"}
        with self._lock:
            if any(i.name == req.name for i in self.instances.values()):
                raise Conflict(f"name {req.name} is taken")
            held = self.taken_ports.union(*self.published.values()) & ports
            if held:
                raise Conflict(f"starting {req.name}: port {min(held)} is already allocated", field="ports")
            n = next(self._ids)
            port = req.service.http_port
            inst = Instance(
                id=f"{n:064x}",
                name=req.name,
                app=req.app,
                service=req.service.name,
                release=req.release,
                generation=req.generation,
                state=InstanceState.STARTING,
                ip=f"10.0.0.{n}",
                address=f"10.0.0.{n}:{port}" if port else None,
                created=time.time(),
                has_healthcheck=req.service.healthcheck is not None,
            )
            self.instances[inst.id] = inst
            self.platform_of[inst.id] = req.platform
            self.published[inst.id] = ports
        return inst

    def remove_instance(self, instance_id: str, grace_s: float) -> None:
        self.calls.append(f"remove {instance_id[-4:]}")
        with self._lock:
            self.instances.pop(instance_id, None)
            self.published.pop(instance_id, None)

    def ensure_network(self, platform: str, app: str, network: str | None = None) -> None:
        self.networks.setdefault(network_name(app, network), resource_labels(platform, app))

    def ensure_volume(self, platform: str, app: str, volume: str) -> None:
        self.volumes.setdefault(volume_name(app, volume), resource_labels(platform, app))

    def remove_app_resources(self, platform: str, app: str) -> None:
        if any(i.app == app for i in self.instances.values()):
            raise Conflict(f"app {app} still has instances")
        for table in (self.networks, self.volumes):
            for name in [n for n, labels in table.items() if labels.get(LABEL_APP) == app]:
                del table[name]

    def image(self, ref: str) -> ImageInfo:
        if ref not in self.images:
            raise NotFound(f"image {ref!r} not found on the engine (build or import it first)")
        return self.images[ref]

    def import_image(self, data: bytes | Iterable[bytes], *, ref: str, changes: list[str]) -> ImageInfo:
        if not isinstance(data, bytes):
            self.imported_bytes = sum(len(piece) for piece in data)  # consume it, as the engine would
        return self.add_image(ref)

    def build_image(
        self,
        context: bytes,
        *,
        tag: str,
        dockerfile: str = "Dockerfile",
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        on_line: Callable[[str], None] = print,
    ) -> ImageInfo:
        if b"FAIL" in context:
            raise BuildFailed("build failed: the fake was asked to fail")
        on_line(f"Step 1/1 : fake build of {tag}")
        return self.add_image(tag)

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        info = self.image(image)
        self.pushed[f"{repository}:{tag}"] = info.id
        return "sha256:" + info.id.removeprefix("sha256:")[::-1]

    def remove_image(self, ref: str) -> None:
        info = self.images.pop(ref, None)
        if info is not None and ref == info.ref:
            self.images.pop(info.id, None)

    def tail(self, instance_id: str, lines: int) -> str:
        return "\n".join(self.logs_by_id.get(instance_id, [])[-lines:])

    def logs(self, instance_ids: list[str], *, tail: int | None, follow: bool, stop: Event) -> Iterator[str]:
        for iid in instance_ids:
            yield from self.logs_by_id.get(iid, [])[-(tail or 10**9) :]

    def watch(
        self,
        platform: str,
        on_event: Callable[[], None],
        stop: Event,
        on_detail: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        stop.wait()

    def instance_process(self, instance_id: str) -> ProcessInfo | None:
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        return ProcessInfo(pid=self.pids.get(instance_id, 0), exit_code=inst.exit_code)
