"""The ``swarm`` backend: each service of an app is a Docker Swarm service on the cluster.

Swarm places the tasks (spread over the hosts, within placement constraints), restarts them, moves
them off a host that died, and rolls updates out start-first, rolling back by itself when the new
tasks fail. The manager talks only to its local engine, the Swarm manager. Apps the platform ran
before it became a cluster are containers: this backend still runs those (it extends the docker one).

Routing: every routed port is published in ``host`` mode without a fixed number, so each task gets a
port on its own host and the router reaches it at ``HOST_ADDRESS:PORT``. That needs no IPVS (VIP mode
and the ingress mesh do); service discovery between an app's services uses DNS round-robin where
IPVS is missing and the usual virtual IP where it exists.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from threading import Event

import docker.errors

from mypaas.composer.base import (
    LABEL_APP,
    LABEL_PLATFORM,
    Capabilities,
    ServiceRequest,
    ServiceState,
)
from mypaas.composer.containers import container_host_ports, container_instance
from mypaas.composer.docker import DockerBackend
from mypaas.composer.engine import overlay_name, resource_labels, service_name
from mypaas.composer.errors import engine_errors
from mypaas.composer.hostside import TASK_LABEL
from mypaas.composer.options import platform_constraints
from mypaas.composer.swarm_secrets import SwarmFiles
from mypaas.composer.swarm_spec import LABEL_SPEC, Rollout, service_key, service_spec
from mypaas.composer.swarm_tasks import (
    NodeTable,
    node_table,
    service_host_ports,
    service_state,
    task_instance,
    task_report,
)
from mypaas.domain import EngineEvent, Instance, InstanceReport, ProcessInfo

log = logging.getLogger("mypaas.swarm")


IPVS = Path("/proc/sys/net/ipv4/vs")
SWARM_RECHECK_S = 5.0


class SwarmBackend(DockerBackend):
    """The local engine as a Swarm manager. Thread-safe like the docker backend."""

    capabilities = Capabilities(
        multi_host=True, build=True, published_ports=True, healthchecks=True, services=True
    )

    def __init__(  # noqa: PLR0913 - one keyword per setting of the engine's driver
        self,
        base_url: str = "unix:///var/run/docker.sock",
        timeout: float = 120,
        *,
        restart_delay_s: float = 1.0,
        update_delay_s: float = 2.0,
        update_monitor_s: float = 5.0,
        poll_s: float = 1.0,
        ipvs: bool | None = None,
        secret_files: Path | None = None,
        network_pool: int = 2,
    ) -> None:
        super().__init__(base_url, timeout, secret_files=secret_files, network_pool=network_pool)
        self._rollout = Rollout(
            restart_delay_s=restart_delay_s,
            update_delay_s=update_delay_s,
            update_monitor_s=update_monitor_s,
            ipvs=IPVS.exists() if ipvs is None else ipvs,
        )
        self._poll_s = poll_s
        self._logins: set[tuple[str, str, str]] = set()
        self._nodes: NodeTable = {}
        self._containers: dict[str, str] = {}  # task id -> container id (for tasks on this host)
        self._remote: set[str] = set()  # ids of the tasks on other hosts
        self._node_id: str | None = None  # this engine's node id in the Swarm
        self._swarm_on = False
        self._swarm_checked = 0.0
        self._lock = threading.Lock()
        self._swarm_files = SwarmFiles(self._api)

    # -- the swarm itself -----------------------------------------------------------------------

    def swarm_active(self) -> bool:
        """Is the engine a Swarm manager? (GET /swarm: far cheaper than the engine's whole info.)"""
        with engine_errors("reading the engine's swarm state"):
            try:
                self._api.inspect_swarm()
            except docker.errors.APIError as exc:
                if exc.status_code == 503:  # not in a Swarm, or a worker
                    return False
                raise
        return True

    def host_port_free(self, port: int) -> bool:
        """In a Swarm a task may run on any host: the port is free unless a Swarm service publishes it
        or a running container of this engine does (apps from before the Swarm, say). Outside a
        Swarm the engine is this machine's, as on the docker backend."""
        if not self.swarm_active():
            return super().host_port_free(port)
        with engine_errors(f"checking host port {port}"):
            services = self._api.services()
            containers = self._api.containers()
        taken = {p for s in services for p in service_host_ports(s)}
        taken.update(p for c in containers for p in container_host_ports(c))
        return port not in taken

    def registry_login(self, registry: str, username: str, password: str) -> None:
        """Keep the credentials in the client: the SDK sends them with every service create and
        update (X-Registry-Auth), and Swarm hands them to the hosts that pull the image."""
        key = (registry, username, password)
        if key in self._logins:
            return
        with engine_errors(f"logging in to the registry {registry}"):
            self._api.login(username=username, password=password, registry=registry, reauth=True)
        self._logins.add(key)

    # -- instances: containers of docker-mode apps plus the tasks of Swarm services --------------

    def list_instances(self, platform: str) -> list[Instance]:
        with engine_errors("listing containers"):
            rows = self._api.containers(all=True, filters={"label": [f"{LABEL_PLATFORM}={platform}"]})
        self._pool.observe(platform, rows)  # as the docker backend's listing does
        # the containers of Swarm tasks on this host are listed as tasks, below
        containers = [container_instance(r) for r in rows if TASK_LABEL not in (r.get("Labels") or {})]
        if not self._in_swarm():
            return containers
        return containers + self._task_instances(platform)

    def _in_swarm(self) -> bool:
        """Is the engine a Swarm manager? Asked at most every few seconds while it is not (a plain
        engine pays nothing more for this backend); once it is, until the engine says otherwise."""
        now = time.monotonic()
        if self._swarm_on or now - self._swarm_checked < SWARM_RECHECK_S:
            return self._swarm_on
        self._swarm_checked = now
        self._swarm_on = self.swarm_active()
        return self._swarm_on

    def _not_a_manager(self, exc: docker.errors.APIError) -> bool:
        """A 503 means the engine left the Swarm (or lost its quorum): look again later."""
        if exc.status_code == 503:
            self._swarm_on, self._swarm_checked = False, time.monotonic()
            return True
        return False

    def _task_instances(self, platform: str) -> list[Instance]:
        with engine_errors("listing tasks"):
            for attempt in range(3):
                try:
                    services = self._api.services(filters={"label": f"{LABEL_PLATFORM}={platform}"})
                    ids = [s["ID"] for s in services]
                    tasks = (
                        self._api.tasks(filters={"service": ids, "desired-state": "running"}) if ids else []
                    )
                    break
                except docker.errors.NotFound:  # a service removed between the two calls: again
                    if attempt == 2:
                        raise
                except docker.errors.APIError as exc:
                    if self._not_a_manager(exc):
                        return []
                    raise
        names = {s["ID"]: s["Spec"]["Name"] for s in services}
        self._refresh_nodes({t.get("NodeID", "") for t in tasks})
        out = []
        containers: dict[str, str] = {}
        remote: set[str] = set()
        local_node = self._local_node()
        for task in tasks:
            inst = task_instance(task, names.get(task.get("ServiceID", ""), "?"), self._nodes)
            if inst is None:
                continue
            out.append(inst)
            cid = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
            if cid and inst.node == local_node:
                containers[inst.id] = cid
            else:
                remote.add(inst.id)
        with self._lock:
            self._containers, self._remote = containers, remote
        return out

    def _local_node(self) -> str:
        if not self._node_id:  # asked again until the engine is in a Swarm
            with engine_errors("reading the engine's node id"):
                self._node_id = str((self._api.info().get("Swarm") or {}).get("NodeID") or "")
        return self._node_id or ""

    def _refresh_nodes(self, wanted: set[str]) -> None:
        if wanted <= set(self._nodes):
            return
        with engine_errors("listing nodes"):
            self._nodes = node_table(self._api.nodes())

    # -- services -------------------------------------------------------------------------------

    def list_services(self, platform: str) -> list[ServiceState]:
        if not self._in_swarm():
            return []
        with engine_errors("listing services"):
            try:
                rows = self._api.services(filters={"label": f"{LABEL_PLATFORM}={platform}"})
            except docker.errors.APIError as exc:
                if self._not_a_manager(exc):
                    return []
                raise
        return [service_state(row) for row in rows]

    def service_key(self, req: ServiceRequest) -> str:
        with engine_errors(f"describing service {req.service.name}"):
            return service_key(req, self._rollout, self._constraints(req))

    def ensure_service(self, req: ServiceRequest) -> None:
        key = self.service_key(req)
        name = service_name(req.app, req.service.name, req.release, req.generation)
        ids = self._swarm_files.ensure(req.platform, req.app, req.secret_files) if req.secret_files else None
        with engine_errors(f"deploying service {name}"):
            body = service_spec(
                req, self._rollout, self._constraints(req), replicas=req.replicas, key=key, secret_ids=ids
            )
            found = self._api.services(filters={"name": name})
            current = next((s for s in found if s["Spec"]["Name"] == name), None)
            self._swarm_on = True  # it answered a Swarm call
            if current is None:
                self._api.create_service(**body)
                return
            spec = current["Spec"]
            replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
            scaled = replicas == req.replicas or req.service.mode == "global"  # global: one per host
            if (spec.get("Labels") or {}).get(LABEL_SPEC) == key and scaled:
                return
            self._api.update_service(current["ID"], current["Version"]["Index"], **body)

    def _constraints(self, req: ServiceRequest) -> list[str]:
        """Where the service's tasks may run. A volume (named, or a host path) is a folder on one
        host: a service that mounts one and says nowhere else runs on this machine, where the app's
        volumes were made (also before it became a cluster), so its tasks never start on an empty copy."""
        constraints = [*req.constraints, *req.service.placement, *platform_constraints(req.service)]
        if any(v.source for v in req.service.volumes) and not constraints:  # anonymous ones go anywhere
            constraints.append(f"node.id=={self._local_node()}")
        return constraints

    def remove_service(self, service_id: str) -> None:
        with (
            engine_errors(f"removing service {service_id[:12]}"),
            contextlib.suppress(docker.errors.NotFound),
        ):
            labels = self._api.inspect_service(service_id)["Spec"].get("Labels") or {}
            self._api.remove_service(service_id)
            if labels.get(LABEL_APP) and labels.get(LABEL_PLATFORM):  # its secrets may go with it
                self._swarm_files.prune(labels[LABEL_PLATFORM], labels[LABEL_APP])

    def failed_tasks(self, service_id: str) -> dict[str, InstanceReport]:
        with engine_errors(f"listing the tasks of service {service_id[:12]}"):
            try:
                tasks = self._api.tasks(filters={"service": service_id})
            except docker.errors.NotFound:
                return {}
        return {
            t["ID"]: task_report(t)
            for t in tasks
            if (t.get("Status") or {}).get("State") in ("failed", "rejected")
        }

    def ensure_overlay_network(self, platform: str, app: str, network: str | None = None) -> None:
        name = overlay_name(app, network)
        labels = resource_labels(platform, app)
        self._create_network(
            f"creating overlay network {name}", name, labels, driver="overlay", attachable=True
        )

    def remove_app_resources(
        self, platform: str, app: str, *, volumes: bool = True, force: bool = False
    ) -> None:
        """Its services, their secrets and configs, then its networks and (with ``volumes``) its
        volumes: those of this host, where a service that mounts one runs (``_constraints``)."""
        for svc in self.list_services(platform):
            if svc.app == app:
                self.remove_service(svc.id)
        if self._in_swarm():
            self._swarm_files.remove_app(platform, app)
        super().remove_app_resources(platform, app, volumes=volumes, force=force)

    # -- per-instance facts: tasks on this host map to their containers -------------------------

    def _container(self, instance_id: str) -> str | None:
        """The container of a task on this host; the id itself for a plain container; None for a
        task on another host."""
        with self._lock:
            if instance_id in self._containers:
                return self._containers[instance_id]
            return None if instance_id in self._remote else instance_id

    def tail(self, instance_id: str, lines: int) -> str:
        cid = self._container(instance_id)
        if cid is not None:
            text = super().tail(cid, lines)
            if text:
                return text
        return self._task_logs(instance_id, lines)  # a task elsewhere, or one that is gone (failed)

    def _task_logs(self, task_id: str, lines: int) -> str:
        """A task's last lines through the Swarm manager (it fetches them from the task's host)."""
        try:
            res = self._api._get(  # the SDK has no call for GET /tasks/{id}/logs
                self._api._url("/tasks/{0}/logs", task_id),
                params={"stdout": 1, "stderr": 1, "tail": str(lines)},
                stream=False,
            )
            self._api._raise_for_status(res)
            raw = bytes(res.content)
        except (docker.errors.DockerException, OSError):
            return ""
        return _demux(raw)

    def instance_process(self, instance_id: str) -> ProcessInfo | None:
        cid = self._container(instance_id)
        if cid is None:
            return None  # a task on another host: its files are not readable here
        return super().instance_process(cid)

    def instance_report(self, instance_id: str) -> InstanceReport | None:
        """A task's container when it is on this host (its health check's results), else what the
        Swarm manager says of the task."""
        cid = self._container(instance_id)
        if cid is not None:
            report = super().instance_report(cid)
            if report is not None or cid == instance_id:
                return report
        with engine_errors(f"inspecting task {instance_id[:12]}"):
            try:
                return task_report(self._api.inspect_task(instance_id))
            except docker.errors.NotFound:
                return None

    def watch(
        self,
        platform: str,
        on_event: Callable[[], None],
        stop: Event,
        on_detail: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        """Container events of this host, plus a cheap poll of the cluster's tasks and nodes (Swarm
        sends no task events): any change wakes the reconcile loop within ``poll_s``."""
        containers = threading.Thread(
            target=super().watch, args=(platform, on_event, stop, on_detail), daemon=True
        )
        containers.start()
        last: object = None
        while not stop.wait(self._poll_s):
            try:
                snapshot = self._snapshot(platform)
            except Exception as exc:  # the engine is restarting; the container watch reports that
                log.debug("swarm poll: %s", exc)
                continue
            if snapshot != last:
                last = snapshot
                on_event()
        containers.join(timeout=2)

    def _snapshot(self, platform: str) -> object:
        if not self._in_swarm():
            return ()
        services = self._api.services(filters={"label": f"{LABEL_PLATFORM}={platform}"})
        if not services:
            return ()
        tasks = self._api.tasks(filters={"service": [s["ID"] for s in services]})
        nodes = self._api.nodes()
        return (
            tuple(
                sorted((t["ID"], (t.get("Status") or {}).get("State"), t.get("DesiredState")) for t in tasks)
            ),
            tuple(sorted((n["ID"], (n.get("Status") or {}).get("State")) for n in nodes)),
            tuple(sorted((s["ID"], s["Version"]["Index"], str(s.get("UpdateStatus"))) for s in services)),
        )


def _demux(raw: bytes) -> str:
    """Docker's multiplexed log stream (8-byte frame headers) to text."""
    out = []
    pos = 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out.append(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size
    if pos == 0 and raw:
        return raw.decode("utf-8", "replace")
    return b"".join(out).decode("utf-8", "replace")
