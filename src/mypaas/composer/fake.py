"""In-memory backends for unit tests, behind the same protocols as the real ones: FakeBackend (a
Backend, like the docker one) and FakeSwarmBackend (a ServiceBackend, like the swarm one).

They never touch the network or an engine; the shared contract suites (tests/contract) run them next
to the real backends.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from threading import Event
from typing import TYPE_CHECKING

from mypaas.composer.base import (
    LABEL_APP,
    LABEL_PLATFORM,
    Backend,
    Capabilities,
    ImageInfo,
    InstanceRequest,
    SecretFile,
    ServiceBackend,
    ServiceRequest,
    ServiceState,
    VolumeInfo,
)
from mypaas.composer.engine import (
    instance_networks,
    network_name,
    overlay_name,
    resource_labels,
    service_name,
    service_networks,
    volume_name,
)
from mypaas.container_options import check_swarm
from mypaas.domain import EngineEvent, Instance, InstanceReport, ProcessInfo, ServiceSpec
from mypaas.errors import BuildFailed, Conflict, NotFound
from mypaas.states import InstanceState
from mypaas.uploads import Blob, chunks_of, head_of


class FakeBackend:
    capabilities = Capabilities(multi_host=False, build=True, published_ports=True, healthchecks=True)

    def __init__(self) -> None:
        self.images: dict[str, ImageInfo] = {}
        self.instances: dict[str, Instance] = {}
        self.networks: dict[str, dict[str, str]] = {}  # by engine name, as the engine has them
        self.volumes: dict[str, dict[str, str]] = {}
        self.foreign: dict[str, list[str]] = {}  # network -> containers MyPaas did not make on it (tests)
        self.logs_by_id: dict[str, list[str]] = {}
        self.platform_of: dict[str, str] = {}
        self.calls: list[str] = []
        self.imported_bytes = 0
        self.built_bytes = 0  # the size of the last build context, read through as the engine reads it
        self.pushed: dict[str, str] = {}
        self.pids: dict[str, int] = {}  # instance id -> a host pid, set by tests of the monitor
        self.taken_ports: set[int] = set()  # host ports something else holds, set by tests
        self.reports: dict[str, InstanceReport] = {}  # instance id -> what instance_report says, set by tests
        self.published: dict[str, set[int]] = {}  # instance id -> the TCP host ports it holds
        self.secret_files: dict[str, tuple[SecretFile, ...]] = {}  # instance id -> what it was given
        self.requests: dict[str, InstanceRequest] = {}  # instance id -> what it was created with
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add_image(self, ref: str, exposed: tuple[int, ...] = (), *, has_command: bool = True) -> ImageInfo:
        info = ImageInfo(
            id=f"sha256:{len(self.images) + 1:064x}", ref=ref, exposed_ports=exposed, has_command=has_command
        )
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
                has_healthcheck=_checked(req.service),
            )
            self.instances[inst.id] = inst
            self.platform_of[inst.id] = req.platform
            self.published[inst.id] = ports
            if req.secret_files:
                self.secret_files[inst.id] = req.secret_files
            self.requests[inst.id] = req
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

    def volume_exists(self, name: str) -> bool:
        return name in self.volumes

    def remove_app_resources(
        self, platform: str, app: str, *, volumes: bool = True, force: bool = False
    ) -> None:
        if any(i.app == app for i in self.instances.values()):
            raise Conflict(f"app {app} still has instances")
        mine = [n for n, labels in self.networks.items() if labels.get(LABEL_APP) == app]
        held = [n for n in mine if self.foreign.get(n)]
        if held and not force:
            raise Conflict(f"network {held[0]} has active endpoints (container {self.foreign[held[0]][0]})")
        for name in mine:
            self.foreign.pop(name, None)
            del self.networks[name]
        for name in [n for n, labels in self.volumes.items() if volumes and labels.get(LABEL_APP) == app]:
            del self.volumes[name]

    def _mounts(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for iid, req in self.requests.items():
            if iid in self.instances:
                for mount in req.service.volumes:
                    if mount.source in req.volumes:
                        users.setdefault(volume_name(req.app, mount.source), []).append(req.name)
        return users

    def list_volumes(self, platform: str) -> list[VolumeInfo]:
        users = self._mounts()
        return [
            VolumeInfo(
                n, labels[LABEL_APP], n.removeprefix(f"mypaas_{labels[LABEL_APP]}_"), tuple(users.get(n, []))
            )
            for n, labels in sorted(self.volumes.items())
            if labels.get(LABEL_PLATFORM) == platform and labels.get(LABEL_APP)
        ]

    def remove_volume(self, platform: str, name: str) -> None:
        if name not in {v.name for v in self.list_volumes(platform)}:
            raise NotFound(f"no app volume named {name!r} (mypaas volumes ls lists them)", field="name")
        holders = self._mounts().get(name)
        if holders:
            raise Conflict(f"volume {name} is in use by container {holders[0]}", field="name")
        del self.volumes[name]

    def image(self, ref: str) -> ImageInfo:
        if ref not in self.images:
            raise NotFound(f"image {ref!r} not found on the engine (build or import it first)")
        return self.images[ref]

    def import_image(self, data: bytes | Iterable[bytes], *, ref: str, changes: list[str]) -> ImageInfo:
        if not isinstance(data, bytes):
            self.imported_bytes = sum(len(piece) for piece in data)  # consume it, as the engine would
        command = any(change.split()[:1] in (["CMD"], ["ENTRYPOINT"]) for change in changes)
        return self.add_image(ref, has_command=command)

    def build_image(
        self,
        context: Blob,
        *,
        tag: str,
        dockerfile: str = "Dockerfile",
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        on_line: Callable[[str], None] = print,
    ) -> ImageInfo:
        on_line(f"Step 1/1 : fake build of {tag}")
        self.built_bytes = sum(len(piece) for piece in chunks_of(context))  # read, as the engine would
        if _holds(context, b"FAIL"):
            on_line(" ---> Running in 0123456789ab")
            raise BuildFailed("build failed: the fake was asked to fail")
        return self.add_image(tag)

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        info = self.image(image)
        self.pushed[f"{repository}:{tag}"] = info.id
        return "sha256:" + info.id.removeprefix("sha256:")[::-1]

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        info = self.images.pop(ref, None)
        if info is not None and ref == info.ref:
            self.images.pop(info.id, None)

    def tail(self, instance_id: str, lines: int) -> str:
        return "\n".join(self.logs_by_id.get(instance_id, [])[-lines:])

    def logs(self, instance_ids: list[str], *, tail: int | None, follow: bool, stop: Event) -> Iterator[str]:
        for iid in instance_ids:
            lines = self.logs_by_id.get(iid, [])
            yield from (lines if tail is None else lines[-tail:] if tail else [])

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

    def instance_report(self, instance_id: str) -> InstanceReport | None:
        """What a test set in ``reports``; else the instance's own facts (an exited or restarting
        one has exited once more than it restarted)."""
        inst = self.instances.get(instance_id)
        if inst is None:
            return None
        if instance_id in self.reports:
            return self.reports[instance_id]
        down = inst.state in (InstanceState.EXITED, InstanceState.RESTARTING)
        exits = inst.restarts + (1 if down else 0)
        return InstanceReport(exits=exits, exit_code=inst.exit_code if exits else None)


@dataclass
class FakeService:
    """One service of the fake Swarm: what it was asked to run, what it reports, its tasks' ids."""

    request: ServiceRequest
    state: ServiceState
    tasks: list[str] = field(default_factory=list)


class FakeSwarmBackend(FakeBackend):
    """A Swarm in memory, beside FakeBackend's containers: each service keeps its replicas as tasks
    (instances placed on the fake nodes in turn, reached at a node's address), and an update that
    changes the spec replaces the tasks and completes at once. Tests steer rollouts with
    ``set_update_state`` and instances with ``set_state``."""

    capabilities = Capabilities(
        multi_host=True, build=True, published_ports=True, healthchecks=True, services=True
    )

    def __init__(self, nodes: Sequence[str] = ("node-1", "node-2")) -> None:
        super().__init__()
        # node id -> (address, host name)
        self.nodes = {f"n{i}": (f"10.1.0.{i}", name) for i, name in enumerate(nodes, start=1)}
        self.services: dict[str, FakeService] = {}
        self.overlay_networks: dict[str, dict[str, str]] = {}
        self.logins: set[tuple[str, str, str]] = set()
        self._placed = itertools.count()
        self.failures: dict[str, dict[str, InstanceReport]] = {}  # service id -> its failed tasks

    def fail_task(self, task_id: str, exit_code: int, logs: Sequence[str] = ()) -> None:
        """A task exits with ``exit_code``: Swarm keeps it as failed and starts a new one in its place."""
        with self._lock:
            svc = next(s for s in self.services.values() if task_id in s.tasks)
            svc.tasks.remove(task_id)
            self.instances.pop(task_id, None)
            self.published.pop(task_id, None)
            self.failures.setdefault(svc.state.id, {})[task_id] = InstanceReport(
                exits=1, exit_code=exit_code, message=f"failed: task: non-zero exit ({exit_code})"
            )
            self.logs_by_id[task_id] = list(logs)
            self._scale(svc)

    def set_update_state(self, service_id: str, state: str | None, message: str = "") -> None:
        svc = self.services[service_id]
        svc.state = replace(svc.state, update_state=state, update_message=message)

    # -- services -------------------------------------------------------------------------------

    def list_services(self, platform: str) -> list[ServiceState]:
        with self._lock:
            return [s.state for s in self.services.values() if s.request.platform == platform]

    def service_key(self, req: ServiceRequest) -> str:
        check_swarm(req.service, f"services.{req.service.name}")  # what Swarm cannot run, refused alike
        body = {f.name: getattr(req, f.name) for f in fields(req) if f.name != "replicas"}
        body["service"] = req.service.model_dump(mode="json")
        files = body.pop("secret_files")
        if files:  # the values stand in the key by their digests
            body["secret_files"] = [{**vars(f), "data": None} for f in files]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def ensure_service(self, req: ServiceRequest) -> None:
        self.calls.append(f"ensure {req.app}/{req.service.name}")
        key = self.service_key(req)
        name = service_name(req.app, req.service.name, req.release, req.generation)
        for network in service_networks(req):
            if network not in self.overlay_networks:
                raise NotFound(f"deploying service {name}: network {network} not found")
        with self._lock:
            current = next((s for s in self.services.values() if s.state.name == name), None)
            replicas = 0 if req.service.mode == "global" else req.replicas  # as Swarm reports global ones
            if current is None:
                state = ServiceState(
                    id=f"svc{next(self._ids)}",
                    name=name,
                    app=req.app,
                    service=req.service.name,
                    release=req.release,
                    generation=req.generation,
                    replicas=replicas,
                    spec_key=key,
                )
                current = self.services[state.id] = FakeService(req, state)
            elif current.state.spec_key == key and current.state.replicas == replicas:
                return
            else:
                self._update(current, replace(req, replicas=replicas), key)
            self._scale(current)

    def _update(self, svc: FakeService, req: ServiceRequest, key: str) -> None:
        """Swarm's update: the spec before it is the previous one; a new spec replaces every task."""
        changed = svc.state.spec_key != key
        svc.state = replace(
            svc.state,
            replicas=req.replicas,
            spec_key=key,
            previous=(svc.state.release, svc.state.generation),
            update_state="completed" if changed else svc.state.update_state,
            update_message="update completed" if changed else svc.state.update_message,
        )
        svc.request = req
        if changed:
            self._drop_tasks(svc, len(svc.tasks))

    def _scale(self, svc: FakeService) -> None:
        """Run the service's replicas; a global service one task on each node."""
        want = len(self.nodes) if svc.request.service.mode == "global" else svc.state.replicas
        self._drop_tasks(svc, len(svc.tasks) - want)
        while len(svc.tasks) < want:
            task = self._task(svc, slot=len(svc.tasks) + 1)
            svc.tasks.append(task.id)
            self.instances[task.id] = task
            self.platform_of[task.id] = svc.request.platform
            ports = svc.request.service.ports
            self.published[task.id] = {p.host for p in ports if p.host is not None and p.protocol == "tcp"}

    def _drop_tasks(self, svc: FakeService, count: int) -> None:
        for _ in range(max(0, count)):
            task_id = svc.tasks.pop()
            self.instances.pop(task_id, None)
            self.published.pop(task_id, None)

    def _task(self, svc: FakeService, slot: int) -> Instance:
        req = svc.request
        n = next(self._ids)
        node = list(self.nodes)[next(self._placed) % len(self.nodes)]
        address, host = self.nodes[node]
        fixed = next((p.host for p in req.service.ports if p.container == req.service.http_port), None)
        task_id = f"task{n:021x}"
        if req.service.mode == "global":  # one per node: the node of the slot
            node = list(self.nodes)[(slot - 1) % len(self.nodes)]
            address, host = self.nodes[node]
        return Instance(
            id=task_id,
            name=f"{svc.state.name}.{slot}.{task_id[:6]}",
            app=req.app,
            service=req.service.name,
            release=req.release,
            generation=req.generation,
            state=InstanceState.HEALTHY if _checked(req.service) else InstanceState.STARTING,
            ip=f"10.2.0.{n}",
            address=f"{address}:{fixed or 30000 + n}" if req.service.http_port else None,
            routed=bool(req.service.http_port),
            created=time.time(),
            started=time.time(),
            has_healthcheck=_checked(req.service),
            status_text=f"running on {host}",
            node=node,
            host=host,
        )

    def remove_service(self, service_id: str) -> None:
        self.calls.append(f"remove service {service_id}")
        with self._lock:
            svc = self.services.pop(service_id, None)
            if svc is not None:
                self._drop_tasks(svc, len(svc.tasks))

    def failed_tasks(self, service_id: str) -> dict[str, InstanceReport]:
        with self._lock:
            return dict(self.failures.get(service_id, {})) if service_id in self.services else {}

    def ensure_overlay_network(self, platform: str, app: str, network: str | None = None) -> None:
        self.overlay_networks.setdefault(overlay_name(app, network), resource_labels(platform, app))

    def registry_login(self, registry: str, username: str, password: str) -> None:
        self.logins.add((registry, username, password))

    # -- what differs for tasks -------------------------------------------------------------------

    def remove_instance(self, instance_id: str, grace_s: float) -> None:
        """A task belongs to its service (as on Swarm, where its id names no container): kept."""
        if any(instance_id in s.tasks for s in list(self.services.values())):
            return
        super().remove_instance(instance_id, grace_s)

    def remove_app_resources(
        self, platform: str, app: str, *, volumes: bool = True, force: bool = False
    ) -> None:
        for svc in self.list_services(platform):
            if svc.app == app:
                self.remove_service(svc.id)
        for name in [n for n, labels in self.overlay_networks.items() if labels.get(LABEL_APP) == app]:
            del self.overlay_networks[name]
        super().remove_app_resources(platform, app, volumes=volumes, force=force)


def _checked(svc: ServiceSpec) -> bool:
    """Does the engine run a health check for the service's instances?"""
    return svc.healthcheck is not None and not svc.healthcheck.disabled


if TYPE_CHECKING:  # mypy checks that the fakes implement the whole protocols
    _backend: type[Backend] = FakeBackend
    _services: type[ServiceBackend] = FakeSwarmBackend


def _holds(context: Blob, marker: bytes) -> bool:
    """Does the (gzipped) context hold ``marker``? Read in pieces, as a stream."""
    unzip = zlib.decompressobj(31) if head_of(context, 2) == b"\x1f\x8b" else None
    tail = b""
    for piece in chunks_of(context):
        text = tail + (unzip.decompress(piece) if unzip is not None else piece)
        if marker in text:
            return True
        tail = text[-(len(marker) - 1) :]
    return False
