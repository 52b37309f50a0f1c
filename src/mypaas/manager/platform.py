"""The one place that builds and wires the platform. ``build_platform`` makes every component from the
settings (or takes the ones a test hands over), gives each its collaborators through its constructor,
and returns the ``Platform``: the services the API and the CLI call, and the supervisor that runs the
background loops. Nothing is patched after construction.

The order follows the dependencies: the store; the engine, the router and the Swarm's nodes; what the
reconcile loop shares with its readers (its view, its wake-up, the health verdicts); the registry; the
hosts; the monitor; the reconcile loop; the app services; the monitor's acting half; the supervisor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mypaas import __version__
from mypaas.build.base import ensure_base_image
from mypaas.composer.base import Backend, ServiceBackend
from mypaas.composer.hostside import LIST_TASKS
from mypaas.composer.nodes import Nodes
from mypaas.egress import Egress, internal_ports
from mypaas.errors import NotSupported
from mypaas.homefiles import tighten
from mypaas.iaas.base import HostDriver
from mypaas.manager import parts
from mypaas.manager.app_secrets import AppSecrets
from mypaas.manager.apps import Apps
from mypaas.manager.backup.service import Backups
from mypaas.manager.backup.swap import finish_pending
from mypaas.manager.builds import Builds
from mypaas.manager.certs import UserCerts
from mypaas.manager.declare.service import Declarations
from mypaas.manager.evictable import HostEviction
from mypaas.manager.hosts.accounts import DriverAccounts, MachineCatalog
from mypaas.manager.hosts.hooks import ClusterHooks, Provisioner
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.identity.audit import AuditLog
from mypaas.manager.identity.service import Identity
from mypaas.manager.image_copies import ImageCopies
from mypaas.manager.operations import Operations
from mypaas.manager.pki import PlatformCA, ServerFiles
from mypaas.manager.publishing import Publisher
from mypaas.manager.reconcile.kinds import AppKind, ContainerApps, ServiceApps
from mypaas.manager.reconcile.loop import LoopParts, Reconciler
from mypaas.manager.reconcile.outcomes import Outcomes
from mypaas.manager.reconcile.view import LoopView
from mypaas.manager.records import AppContext
from mypaas.manager.releases import Releases
from mypaas.manager.state.db import Store, open_store
from mypaas.manager.state.meta import Setting, platform_id
from mypaas.manager.status_cache import ComponentChecks
from mypaas.manager.supervisor import Parts, Supervisor
from mypaas.manager.vault import Cipher, Vault
from mypaas.manager.volumes import Volumes
from mypaas.monitor.automation import Automation
from mypaas.monitor.health import HealthTracker, http_probe
from mypaas.monitor.host_events import HostEvents
from mypaas.monitor.pressure import HostPressure
from mypaas.monitor.remote import RemoteSampler
from mypaas.monitor.service import Monitoring, nodes_to_hosts
from mypaas.registry.client import RegistryApi
from mypaas.registry.images import PUSH_USER, Images
from mypaas.registry.mirror import Mirror
from mypaas.router.base import Router
from mypaas.router.config import ACCESS_LOG
from mypaas.settings import Settings
from mypaas.spec.hardening import Hardening
from mypaas.states import BackendMode
from mypaas.uploads import Uploads

UPLOADS_DIR = "uploads"
MIRROR_KEY = "mirror_upstream"  # the Meta row of the mirror's upstream, while it is enabled


@dataclass(frozen=True)
class Platform:
    """The running platform: the services the API and the CLI call."""

    settings: Settings
    store: Store
    platform_id: str
    admin_token: str  # the platform admin's token, kept in settings.token_path
    identity: Identity  # users, teams, tokens
    backend: Backend
    router: Router
    operations: Operations
    reconciler: Reconciler
    apps: Apps
    releases: Releases
    secrets: AppSecrets
    builds: Builds
    hosts: Hosts
    monitoring: Monitoring
    automation: Automation
    pressure: HostPressure
    images: Images | None  # None: the private registry is turned off
    image_copies: ImageCopies  # an image's registry and engine copies, listed and removed together
    mirror: Mirror
    supervisor: Supervisor
    started_at: float
    volumes: Volumes  # the apps' named volumes, those kept after their app included
    audit: AuditLog  # who changed what, denied calls, failed logins
    pki: PlatformCA  # the platform's CA ($MYPAAS_HOME/tls)
    tls: ServerFiles | None  # what listeners beyond loopback serve; None: every endpoint is on loopback
    certs: UserCerts  # the users' own certificates for their apps' domains (certs add)
    declare: Declarations  # `mypaas export` / `mypaas apply`: the platform as one file
    backups: Backups  # `mypaas backup`: the platform in one archive
    checks: ComponentChecks = field(default_factory=ComponentChecks)  # the status's pings, kept a few s

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.store.sessions

    @property
    def uploads(self) -> Uploads:
        """Where a deploy's uploaded parts are written ($MYPAAS_HOME/uploads, owner-only)."""
        return Uploads(self.settings.home / UPLOADS_DIR)

    def start(self) -> None:
        self.uploads.clear()  # parts of builds a stopped manager never finished
        self.supervisor.start()
        self.audit.start()

    def stop(self) -> None:
        self.supervisor.stop()
        self.audit.close()

    def registry(self) -> Images:
        """The private registry; NotSupported when it is turned off."""
        if self.images is None:
            raise NotSupported(
                "the private registry is turned off (setting registry_enabled)", field="registry"
            )
        return self.images

    def status(self) -> dict[str, Any]:
        """Health of each component: manager, engine, router, reconcile loop."""
        view = self.reconciler.view
        engine, router = self.checks.get(lambda: (self.backend.ping(), self.router.healthy()))
        mode = self.hosts.mode() if self.backend.capabilities.services else BackendMode.DOCKER
        return {
            "version": __version__,
            "platform": self.platform_id,
            "components": {
                "manager": {"healthy": True, "api": self.settings.api_url, "since": self.started_at},
                "engine": {"healthy": engine, "backend": mode.value, "url": self.settings.docker_url},
                "router": {"healthy": router, "port": self.settings.router_port},
                "reconcile": {
                    "healthy": view.error is None,
                    "last_pass": view.observed.at,
                    "error": view.error,
                },
            },
            "healthy": engine and router and view.error is None,
            # where `docker login` goes (`mypaas registry login`); None: the private registry is off
            "registry": self.settings.registry_public if self.images is not None else None,
            "tls": self.pki.status(self.tls),
        }


@dataclass(frozen=True)
class Components:
    """Parts to use instead of the real ones: unit tests hand over fakes. ``services`` is the backend
    again when it runs Swarm services; ``probe`` answers whether an address is healthy; ``clock`` is
    the reconcile loop's idea of now."""

    backend: Backend | None = None
    services: ServiceBackend | None = None
    router: Router | None = None
    probe: Callable[[str], bool] | None = None
    nodes: Callable[[], Nodes] | None = None
    drivers: Callable[[str], HostDriver] | None = None
    machines: MachineCatalog | None = None  # the machine drivers `driver add` and `host create` use
    provision: Provisioner | None = None
    engine_config: parts.EngineConfig | None = None
    clock: Callable[[], float] = time.time
    registry: RegistryApi | None = None  # the registry's HTTP API (with registry_enabled)


@dataclass(frozen=True)
class _Core:
    """What the other parts are built on."""

    settings: Settings
    store: Store
    platform_id: str
    backend: Backend
    services: ServiceBackend | None
    router: Router
    operations: Operations
    wakeup: threading.Event
    view: LoopView
    tracker: HealthTracker
    engine_config: parts.EngineConfig
    vault: Vault
    cipher: Cipher  # the platform key's: seals what the manager keeps for itself
    pki: PlatformCA
    tls: ServerFiles | None
    certs: UserCerts


@dataclass(frozen=True)
class _Registry:
    images: Images | None
    publisher: Publisher | None
    mirror: Mirror
    builds: Builds


def build_platform(settings: Settings, given: Components | None = None) -> Platform:
    """Build the platform from the settings, with ``given`` parts instead of the real ones."""
    given = given or Components()
    core = _core(settings, given)
    identity = Identity(core.store.sessions)
    admin_token = identity.bootstrap(settings.token_path)
    reg = _registry(core, identity, admin_token, given.registry)
    hosts = _hosts(core, reg.mirror, given)
    monitoring = _monitoring(core, hosts)
    reconciler = _reconciler(core, reg, monitoring, given.clock, identity)
    ctx = _app_context(core, monitoring, given.clock)
    apps = Apps(ctx)
    releases = Releases(
        ctx, vault=core.vault, make_base=lambda emit: reg.builds.ensure_base("debian:bookworm", emit)
    )
    host_events = HostEvents(hosts, monitoring.events, is_cluster=lambda: hosts.mode() == BackendMode.SWARM)
    automation = Automation(
        engine=core.store.engine,
        apps=apps,
        backend=core.backend,
        monitoring=monitoring,
        settings=settings,
        hosts_down=host_events.down,
    )
    pressure = _pressure(core, hosts, monitoring)
    backups = parts.backups(settings, core.store, core.platform_id, core.backend, core.cipher)
    supervised = Parts(
        sessions=core.store.sessions,
        backend=core.backend,
        router=core.router,
        reconciler=reconciler,
        hosts=hosts,
        builds=reg.builds,
        monitoring=monitoring,
        automation=automation,
        host_events=host_events,
        pressure=pressure,
        images=reg.images,
        publisher=reg.publisher,
        mirror=reg.mirror,
        host_check_s=settings.host_check_s,
        backups=backups,
    )
    secrets = AppSecrets(ctx, vault=core.vault, releases=releases)
    declare = Declarations(
        ctx,
        apps=apps,
        releases=releases,
        secrets=secrets,
        automation=automation,
        hosts=hosts,
        hardening=Hardening.of(settings),
        vault=core.vault,
    )
    return Platform(
        settings=settings,
        store=core.store,
        platform_id=core.platform_id,
        admin_token=admin_token,
        identity=identity,
        backend=core.backend,
        router=core.router,
        operations=core.operations,
        reconciler=reconciler,
        apps=apps,
        releases=releases,
        secrets=secrets,
        builds=reg.builds,
        hosts=hosts,
        monitoring=monitoring,
        automation=automation,
        pressure=pressure,
        images=reg.images,
        image_copies=ImageCopies(
            sessions=core.store.sessions, backend=core.backend, images=reg.images, publisher=reg.publisher
        ),
        mirror=reg.mirror,
        supervisor=Supervisor(supervised, base_image=lambda: ensure_base_image(core.backend)),
        started_at=time.time(),
        volumes=Volumes(ctx),
        audit=AuditLog(core.store.sessions, retention_days=settings.audit_retention_days),
        pki=core.pki,
        tls=core.tls,
        certs=core.certs,
        declare=declare,
        backups=backups,
    )


def _app_context(core: _Core, monitoring: Monitoring, clock: Callable[[], float]) -> AppContext:
    return AppContext(
        sessions=core.store.sessions,
        backend=core.backend,
        operations=core.operations,
        view=core.view,
        tracker=core.tracker,
        events=monitoring.events,
        wake=core.wakeup.set,
        platform_id=core.platform_id,
        deploy_timeout_s=core.settings.deploy_timeout_s,
        base_domain=core.settings.base_domain,
        deploy_lock=threading.Lock(),
        clock=clock,
        build_egress=Egress(
            internal_ports=internal_ports(core.settings),
            allow_private=core.settings.build_allow_private_urls,
            private_hint="an admin may allow it with the setting build_allow_private_urls",
        ),
    )


def _core(settings: Settings, given: Components) -> _Core:
    tighten(settings.home)  # 0700, and owner-only files in a folder an older version made
    settings.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    finish_pending(settings)  # a restore marked ready before a crash: its state goes in first
    cipher = Cipher.from_file(settings.secrets_key_path)
    store = open_store(settings.db_path, cipher)
    backend, services = given.backend, given.services
    if backend is None:
        backend = services = parts.make_backend(settings)
    wakeup = threading.Event()
    pki, tls = parts.platform_tls(settings)
    files = parts.router_files(settings)
    certs = UserCerts(store.sessions, cipher, base_domain=settings.base_domain, files=files, wake=wakeup.set)
    return _Core(
        settings=settings,
        store=store,
        platform_id=platform_id(store.sessions),
        backend=backend,
        services=services,
        router=given.router or parts.make_router(settings, certs.served),
        operations=Operations(store.sessions),
        wakeup=wakeup,
        view=LoopView(),
        tracker=HealthTracker(
            min_running_s=settings.min_running_s, on_change=wakeup.set, probe=given.probe or http_probe
        ),
        engine_config=given.engine_config or parts.engine_config(),
        pki=pki,
        tls=tls,
        vault=Vault(store.sessions, cipher),
        cipher=cipher,
        certs=certs,
    )


def _registry(core: _Core, identity: Identity, admin_token: str, api: RegistryApi | None) -> _Registry:
    settings, sessions = core.settings, core.store.sessions
    images = (
        parts.images(settings, core.backend, identity, admin_token, api, core.tls)
        if settings.registry_enabled
        else None
    )
    publisher = (
        Publisher(sessions=sessions, images=images, public_addr=settings.registry_public) if images else None
    )
    builds = Builds(
        sessions=sessions,
        backend=core.backend,
        operations=core.operations,
        settings=settings,
        published=publisher.enqueue_image if publisher else _nowhere,
        publish_now=publisher.publish_image if publisher else _not_published,
    )
    return _Registry(
        images,
        publisher,
        parts.mirror(settings, Setting(sessions, MIRROR_KEY), core.engine_config, core.pki),
        builds,
    )


def _hosts(core: _Core, mirror: Mirror, given: Components) -> Hosts:
    settings = core.settings

    def on_cluster() -> None:
        parts.trust_registry_here(settings, core.engine_config, core.pki)
        core.wakeup.set()

    return Hosts(
        sessions=core.store.sessions,
        operations=core.operations,
        home=settings.home,
        nodes_factory=given.nodes or parts.swarm_nodes(settings),
        drivers=given.drivers,
        hooks=ClusterHooks(
            registries=lambda: parts.registries_for_hosts(settings),
            certificates=lambda: parts.certificates_for_hosts(settings, core.pki),
            mirrors=lambda: parts.mirrors_for_hosts(settings, mirror),
            instances_per_node=core.view.instances_per_node,
            on_mode_change=on_cluster,
        ),
        advertise_addr=settings.cluster_addr or None,
        provision=given.provision,
        accounts=DriverAccounts(sessions=core.store.sessions, catalog=given.machines),
    )


def _monitoring(core: _Core, hosts: Hosts) -> Monitoring:
    settings = core.settings
    return Monitoring(
        engine=core.store.engine,
        backend=core.backend,
        loop=core.view,
        ready=core.tracker.ready,
        settings=settings,
        access_log=settings.log_dir / ACCESS_LOG,
        counters=core.router.request_counters if settings.router == "haproxy" else None,
        remote=RemoteSampler(
            platform=core.platform_id,
            list_tasks=LIST_TASKS,
            nodes=lambda: nodes_to_hosts(hosts),
            connect=hosts.machine,
            timeout_s=min(10.0, max(1.0, settings.metrics_interval_s * 0.8)),
        ),
    )


def _reconciler(
    core: _Core, reg: _Registry, monitoring: Monitoring, clock: Callable[[], float], identity: Identity
) -> Reconciler:
    settings, sessions, pid = core.settings, core.store.sessions, core.platform_id
    files = core.vault.files
    kinds: dict[BackendMode, AppKind] = {
        BackendMode.DOCKER: ContainerApps(
            backend=core.backend, platform=pid, readiness=core.tracker, view=core.view, secret_files=files
        )
    }
    if core.services is not None:
        pull = identity.ensure_pull_token(settings.home / "registry-pull-token") if reg.images else ""
        kinds[BackendMode.SWARM] = ServiceApps(
            backend=core.services,
            platform=pid,
            readiness=core.tracker,
            publish=reg.publisher.for_hosts if reg.publisher else None,
            registry_auth=lambda: (settings.registry_public, PUSH_USER, pull) if pull else None,
            secret_files=files,
        )
    outcomes = Outcomes(
        sessions=sessions,
        operations=core.operations,
        events=monitoring.events,
        on_active=reg.publisher.enqueue if reg.publisher else _nothing_active,
    )
    loop_parts = LoopParts(
        sessions=sessions,
        backend=core.backend,
        kinds=kinds,
        router=core.router,
        outcomes=outcomes,
        tracker=core.tracker,
        view=core.view,
        wakeup=core.wakeup,
    )
    return Reconciler(
        loop_parts, platform_id=pid, settings=settings, on_observed=monitoring.observe, clock=clock
    )


def _pressure(core: _Core, hosts: Hosts, monitoring: Monitoring) -> HostPressure:
    settings = core.settings
    eviction = HostEviction(
        view=core.view,
        latest=lambda: monitoring.sampler.latest,
        sessions=core.store.sessions,
        hosts=hosts,
    )
    return HostPressure(
        hosts,
        monitoring.events,
        mem_pct=settings.host_mem_pressure_pct,
        disk_pct=settings.host_disk_pressure_pct,
        evict_after_s=settings.host_evict_after_s,
        eviction=eviction if settings.host_evict_after_s > 0 else None,
    )


def _nowhere(_ref: str) -> None:
    return None


def _not_published(_ref: str) -> dict[str, Any] | None:
    return None  # no registry: an imported image stays on the engine


def _nothing_active(_app: str, _version: int) -> None:
    return None
