"""The manager process: opens the state store, wires backend, router, reconcile loop and services,
and runs the background threads (reconcile, health probes, engine events, router supervision)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.build.base import BASE_REF, ensure_base_image
from mypaas.composer.base import Backend
from mypaas.composer.nodes import SwarmNodes
from mypaas.domain import InstanceState, ServiceSpec
from mypaas.errors import Conflict, MyPaasError
from mypaas.iaas.local import LocalEngineConfig
from mypaas.manager.access import TokenChecker, ensure_admin_token, ensure_pull_token
from mypaas.manager.apps import Apps
from mypaas.manager.automation import Automation
from mypaas.manager.base_images import BaseImages
from mypaas.manager.hosts.jobs import ClusterHooks
from mypaas.manager.hosts.service import SWARM, Hosts, read_mode
from mypaas.manager.images import PUSH_USER, Images
from mypaas.manager.mirror import Mirror
from mypaas.manager.monitoring import Monitoring
from mypaas.manager.operations import Operations
from mypaas.manager.pressure import Evictable, HostPressure
from mypaas.manager.reconcile.loop import Reconciler
from mypaas.manager.state.db import open_store
from mypaas.manager.state.desired import load_desired
from mypaas.manager.state.models import AppRow, Meta, OperationRow
from mypaas.registry.distribution import Distribution, TokenAuth
from mypaas.registry.tokens import TokenIssuer
from mypaas.router.base import Router
from mypaas.settings import Settings

log = logging.getLogger("mypaas.manager")

RESTART_GRACE_S = 15.0  # a rollout interrupted by a restart gets at least this long to finish
ROUTER_CHECK_S = 2.0


def platform_id(sessions: sessionmaker[Session]) -> str:
    """This platform's id, made at first start; every engine resource is labelled with it."""
    with sessions.begin() as s:
        row = s.get(Meta, "platform_id")
        if row is None:
            row = Meta(key="platform_id", value=secrets.token_hex(6))
            s.add(row)
        return row.value


class Platform:
    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        router: Router | None = None,
        probe: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        self.sessions = open_store(settings.db_path)
        self.platform_id = platform_id(self.sessions)
        self.admin_token = ensure_admin_token(self.sessions, settings.token_path)
        self.tokens = TokenChecker(self.sessions)
        if backend is None:
            # The swarm backend is the docker one plus Swarm services: it runs an app's containers
            # until the platform becomes a cluster, then the services of each app deployed or moved.
            from mypaas.composer.swarm import SwarmBackend

            backend = SwarmBackend(
                settings.docker_url,
                restart_delay_s=settings.swarm_restart_delay_s,
                update_delay_s=settings.swarm_update_delay_s,
            )
        if router is None:
            from mypaas.router.caddy import CaddyRouter

            router = CaddyRouter(
                admin=settings.router_admin,
                listen_port=settings.router_port,
                config_dir=settings.home / "router",
                log_path=settings.log_dir / "caddy.log",
            )
        self.backend: Backend = backend
        self.router: Router = router
        self.operations = Operations(self.sessions)
        self.reconciler = Reconciler(
            sessions=self.sessions,
            backend=backend,
            router=router,
            operations=self.operations,
            platform_id=self.platform_id,
            settings=settings,
            probe=probe,
        )
        self.images = self._images(settings, backend) if settings.registry_enabled else None
        self.mirror = Mirror(
            sessions=self.sessions,
            registry=Distribution(
                name="mirror",
                addr=settings.mirror_addr,
                folder=settings.home / "mirror",
                log_path=settings.log_dir / "mirror.log",
                auth=None,
                listen=f"0.0.0.0:{settings.mirror_addr.rsplit(':', 1)[1]}" if settings.cluster_addr else None,
            ),
            engine=LocalEngineConfig(),
        )
        if self.images is not None:
            self.reconciler.on_active = self.images.enqueue
            self.reconciler.publisher = self._publish_for_hosts
            pull = ensure_pull_token(self.sessions, settings.home / "registry-pull-token")
            self.reconciler.registry_auth = lambda: (settings.registry_public, PUSH_USER, pull)
        self.base_images = BaseImages(
            sessions=self.sessions, backend=backend, operations=self.operations, settings=settings
        )
        if self.images is not None:
            self.base_images.on_built = self.images.enqueue_image
        self.apps = Apps(
            sessions=self.sessions,
            backend=backend,
            reconciler=self.reconciler,
            operations=self.operations,
            deploy_timeout_s=settings.deploy_timeout_s,
            base_domain=settings.base_domain,
            make_base=lambda emit: self.base_images.ensure("debian:bookworm", emit),
        )
        self.monitoring = Monitoring(
            engine=self.sessions.kw["bind"], backend=backend, reconciler=self.reconciler, settings=settings
        )
        self.automation = Automation(
            engine=self.sessions.kw["bind"],
            apps=self.apps,
            backend=backend,
            monitoring=self.monitoring,
            settings=settings,
        )
        self.hosts = self._hosts(settings)
        self.monitoring.read_other_hosts(self.hosts)
        self._host_states: dict[str, str] = {}  # host name -> state, as last seen (cluster only)
        self.pressure = HostPressure(
            self.hosts,
            self.monitoring.events,
            mem_pct=settings.host_mem_pressure_pct,
            disk_pct=settings.host_disk_pressure_pct,
            evict_after_s=settings.host_evict_after_s,
            instances_on=self._instances_on if settings.host_evict_after_s > 0 else None,
        )
        self.automation.hosts_down = lambda: {n: st == "down" for n, st in self._host_states.items()}
        self.started_at = time.time()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _hosts(self, settings: Settings) -> Hosts:
        nodes: list[SwarmNodes] = []

        def nodes_factory() -> SwarmNodes:
            if not nodes:
                nodes.append(SwarmNodes.connect(settings.docker_url))
            return nodes[0]

        return Hosts(
            sessions=self.sessions,
            operations=self.operations,
            home=settings.home,
            nodes_factory=nodes_factory,
            hooks=ClusterHooks(
                registries=self._registries_for_hosts,
                mirrors=self._mirrors_for_hosts,
                instances_per_node=self._instances_per_node,
                on_mode_change=self._on_cluster,
            ),
            advertise_addr=settings.cluster_addr or None,
        )

    def _registries_for_hosts(self) -> list[str]:
        """What every host's engine must trust: the registry at its cluster address."""
        if not self.settings.cluster_addr:
            raise Conflict(
                "set cluster_addr (this machine's address as the hosts reach it) in "
                f"{self.settings.home}/settings.yml or MYPAAS_CLUSTER_ADDR, then restart the manager "
                "(mypaas down && mypaas up): hosts pull images from the registry there",
                field="cluster_addr",
            )
        return [self.settings.registry_public]

    def _mirrors_for_hosts(self) -> list[str] | None:
        """The hosts pull through the mirror too, while it is enabled (at its cluster address)."""
        if not self.settings.cluster_addr or self.mirror.upstream() is None:
            return None
        return [f"http://{self.settings.cluster_addr}:{self.settings.mirror_addr.rsplit(':', 1)[1]}"]

    def _instances_per_node(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for insts in self.reconciler.observed.instances.values():
            for inst in insts:
                if inst.node:
                    counts[inst.node] = counts.get(inst.node, 0) + 1
        return counts

    def _instances_on(self, node_id: str) -> list[Evictable]:
        """The running instances of Swarm node ``node_id``, weighed for eviction (the loop's last view)."""
        running = [
            inst
            for insts in self.reconciler.observed.instances.values()
            for inst in insts
            if inst.state in (InstanceState.STARTING, InstanceState.HEALTHY, InstanceState.UNHEALTHY)
        ]
        replicas = Counter((inst.app, inst.service) for inst in running)
        latest = self.monitoring.sampler.latest  # instance id -> its newest sample
        with self.sessions() as s:
            desired, _ = load_desired(s)
        services = {
            (app.name, svc.name): svc
            for app in desired.values()
            if app.spec is not None
            for svc in app.spec.services.values()
        }
        return [
            Evictable(
                task=inst.id,
                name=inst.name,
                app=inst.app,
                service=inst.service,
                mem_bytes=latest[inst.id].mem_bytes if inst.id in latest else 0,
                replicas=replicas[inst.app, inst.service],
                movable=_movable(services.get((inst.app, inst.service))),
                constraints=tuple(svc.placement) if (svc := services.get((inst.app, inst.service))) else (),
            )
            for inst in running
            if inst.node == node_id
        ]

    def _on_cluster(self) -> None:
        """The platform just became a cluster. This engine runs tasks too: it pulls from the
        registry's cluster address like the hosts do, so it must trust it."""
        if self.settings.cluster_addr:
            engine = LocalEngineConfig()
            trusted = engine.insecure_registries()
            if self.settings.registry_public not in trusted:
                engine.set_insecure_registries([*trusted, self.settings.registry_public])
        self.reconciler.wake()

    def _publish_for_hosts(self, app: str, service: str, _version: int, image_id: str) -> str:
        """Push an image for Swarm: the hosts pull it by digest from the registry's public address."""
        assert self.images is not None
        ref = self.images.publish(image_id, f"{app}/{service}", f"id-{image_id.removeprefix('sha256:')[:12]}")
        return self.settings.registry_public + ref[len(self.images.addr) :]

    def _images(self, settings: Settings, backend: Backend) -> Images:
        folder = settings.home / "registry"
        issuer = TokenIssuer(folder)
        auth = TokenAuth(
            realm=settings.token_realm,
            service=issuer.service,
            issuer=issuer.issuer,
            cert=issuer.cert_path,
        )
        registry = Distribution(
            name="registry",
            addr=settings.registry_addr,
            folder=folder,
            log_path=settings.log_dir / "registry.log",
            auth=auth,
            listen=f"0.0.0.0:{settings.registry_port}" if settings.cluster_addr else None,
        )
        return Images(
            sessions=self.sessions,
            backend=backend,
            tokens=self.tokens,
            issuer=issuer,
            registry=registry,
            admin_token=self.admin_token,
            keep_releases=settings.registry_keep_releases,
        )

    def start(self) -> None:
        """Recover from a previous run, then start the background threads."""
        self._recover()
        self._supervise_registry()
        try:
            ensure_base_image(self.backend)
        except MyPaasError as exc:
            log.warning("base image %s: %s", BASE_REF, exc.message)
        self._supervise_router()
        targets = {
            "reconcile": lambda: self.reconciler.run(self._stop),
            "probes": lambda: self.reconciler.tracker.run(self._stop),
            "events": lambda: self.backend.watch(
                self.platform_id, self.reconciler.wake, self._stop, self.monitoring.on_engine_event
            ),
            "router": self._router_loop,
            "hosts": self._hosts_loop,
            **self.monitoring.threads(self._stop),
            **self.automation.threads(self._stop),
        }
        if self.images is not None:
            self.images.enqueue_unpublished()
            targets["publisher"] = lambda: self.images.run(self._stop) if self.images else None
        for name, target in targets.items():
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.reconciler.wake()
        for thread in self._threads:
            thread.join(timeout=5)

    def _recover(self) -> None:
        """Builds and host changes cannot resume after a restart; rollouts can, with a fresh grace
        period."""
        self.hosts.recover()
        now = time.time()
        with self.sessions.begin() as s:
            for op in s.scalars(select(OperationRow).where(OperationRow.status == "building")):
                op.status, op.message, op.finished_at = (
                    "failed",
                    "the manager restarted during the build",
                    now,
                )
                app = s.scalar(select(AppRow).where(AppRow.name == op.app))
                if app is not None and app.target_version is None:
                    app.state = "deleting"
                if app is not None and app.operation_id == op.id:
                    app.operation_id = None
            s.execute(
                update(OperationRow)
                .where(OperationRow.status == "running", OperationRow.deadline < now + RESTART_GRACE_S)
                .values(deadline=now + RESTART_GRACE_S)
            )

    def _supervise_registry(self) -> None:
        if self.images is None:
            return
        try:
            self.images.ensure_running()
            self.mirror.ensure_running()
        except MyPaasError as exc:
            log.error("registry: %s", exc.message)

    def _supervise_router(self) -> None:
        if self.router.healthy():
            return
        try:
            self.router.ensure_running()
            self.reconciler.wake()
        except MyPaasError as exc:
            log.error("router: %s", exc.message)

    def _router_loop(self) -> None:
        while not self._stop.wait(ROUTER_CHECK_S):
            self._supervise_router()
            self._supervise_registry()

    def _hosts_loop(self) -> None:
        """A cluster's hosts: their state changes every few seconds, their resources less often."""
        last_check = 0.0
        while not self._stop.wait(ROUTER_CHECK_S):
            try:
                if not self._watch_hosts():
                    continue
                if time.monotonic() - last_check >= self.settings.host_check_s:
                    last_check = time.monotonic()
                    self.pressure.check()
            except Exception:  # a locked database or an engine hiccup: the loop goes on next round
                log.exception("watching the hosts failed")

    def _watch_hosts(self) -> bool:
        """Record a cluster's hosts going down and coming back (Swarm moves their instances).
        Returns whether the platform is a cluster."""
        with self.sessions() as s:
            if read_mode(s) != SWARM:
                return False
        try:
            states = {h["name"]: str(h["state"]) for h in self.hosts.list()}
        except MyPaasError as exc:
            log.warning("listing hosts: %s", exc.message)
            return True
        record = self.monitoring.events.record
        first = not self._host_states
        for name, state in states.items():
            before = self._host_states.get(name)
            if before is None and not first:
                record(None, "host_added", f"host {name} joined ({state})", {"host": name})
            if state == "down" and before != "down":
                message = f"host {name} is down: Swarm moves its instances to the other hosts"
                record(None, "host_down", message, {"host": name})
            elif before == "down" and state != "down":
                record(None, "host_up", f"host {name} is back ({state})", {"host": name})
        for name in self._host_states.keys() - states.keys():
            record(None, "host_removed", f"host {name} left the cluster", {"host": name})
        self._host_states = states
        return True

    def router_healthy(self) -> bool:
        return self.router.healthy()


def _movable(svc: ServiceSpec | None) -> bool:
    """Whether a stopped instance of ``svc`` comes back elsewhere: not when its data is a volume on
    its host, nor when Swarm does not restart it (restart "no", or "on-failure" and a clean exit)."""
    return svc is not None and not svc.volumes and svc.restart not in ("no", "on-failure")
