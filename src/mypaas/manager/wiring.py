"""The parts ``build_platform`` (manager/platform.py) wires, each made by one function here: the core
(the store, the engine, the router, what the reconcile loop shares with its readers), the registry and
its publisher, the hosts, the monitor, the reconcile loop and the hosts' pressure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mypaas.composer.base import Backend, ServiceBackend
from mypaas.composer.hostside import LIST_TASKS
from mypaas.egress import Egress, internal_ports
from mypaas.homefiles import tighten
from mypaas.manager import parts
from mypaas.manager.backup.swap import finish_pending
from mypaas.manager.builds import Builds
from mypaas.manager.certs import UserCerts
from mypaas.manager.evictable import HostEviction
from mypaas.manager.hosts.accounts import DriverAccounts
from mypaas.manager.hosts.hooks import ClusterHooks
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.identity.service import Identity
from mypaas.manager.operations import Operations
from mypaas.manager.pki import PlatformCA, ServerFiles
from mypaas.manager.publishing import Publisher
from mypaas.manager.reconcile.kinds import AppKind, ContainerApps, ServiceApps
from mypaas.manager.reconcile.loop import LoopParts, Reconciler
from mypaas.manager.reconcile.outcomes import Outcomes
from mypaas.manager.reconcile.view import LoopView
from mypaas.manager.records import AppContext
from mypaas.manager.state.db import Store, open_store
from mypaas.manager.state.meta import Setting, platform_id
from mypaas.manager.vault import Cipher, Vault
from mypaas.monitor.health import HealthTracker, http_probe
from mypaas.monitor.pressure import HostPressure
from mypaas.monitor.remote import RemoteSampler
from mypaas.monitor.service import Monitoring, nodes_to_hosts
from mypaas.registry.client import RegistryApi
from mypaas.registry.images import PUSH_USER, Images
from mypaas.registry.mirror import Mirror
from mypaas.router.base import Router
from mypaas.router.config import ACCESS_LOG
from mypaas.settings import Settings
from mypaas.states import BackendMode

if TYPE_CHECKING:
    from mypaas.manager.platform import Components

MIRROR_KEY = "mirror_upstream"  # the Meta row of the mirror's upstream, while it is enabled


@dataclass(frozen=True)
class Core:
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
class RegistryParts:
    images: Images | None
    publisher: Publisher | None
    mirror: Mirror
    builds: Builds


def make_app_context(core: Core, monitoring: Monitoring, clock: Callable[[], float]) -> AppContext:
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


def make_core(settings: Settings, given: Components) -> Core:
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
    return Core(
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


def make_registry(core: Core, identity: Identity, admin_token: str, api: RegistryApi | None) -> RegistryParts:
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
    return RegistryParts(
        images,
        publisher,
        parts.mirror(settings, Setting(sessions, MIRROR_KEY), core.engine_config, core.pki),
        builds,
    )


def make_hosts(core: Core, mirror: Mirror, given: Components) -> Hosts:
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


def make_monitoring(core: Core, hosts: Hosts) -> Monitoring:
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


def make_reconciler(
    core: Core, reg: RegistryParts, monitoring: Monitoring, clock: Callable[[], float], identity: Identity
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


def make_pressure(core: Core, hosts: Hosts, monitoring: Monitoring) -> HostPressure:
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
