"""The one place that builds and wires the platform. ``build_platform`` makes every component from the
settings (or takes the ones a test hands over), gives each its collaborators through its constructor,
and returns the ``Platform``: the services the API and the CLI call, and the supervisor that runs the
background loops. Nothing is patched after construction.

The order follows the dependencies: the store; the engine, the router and the Swarm's nodes; what the
reconcile loop shares with its readers (its view, its wake-up, the health verdicts); the registry; the
hosts; the monitor; the reconcile loop; the app services; the monitor's acting half; the supervisor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mypaas import __version__
from mypaas.build.base import ensure_base_image
from mypaas.composer.base import Backend, ServiceBackend
from mypaas.composer.nodes import Nodes
from mypaas.errors import NotSupported
from mypaas.iaas.base import HostDriver
from mypaas.manager import parts
from mypaas.manager.app_secrets import AppSecrets
from mypaas.manager.apps import Apps
from mypaas.manager.backup.service import Backups
from mypaas.manager.builds import Builds
from mypaas.manager.certs import UserCerts
from mypaas.manager.declare.service import Declarations
from mypaas.manager.git.sources import GitSources
from mypaas.manager.hosts.accounts import MachineCatalog
from mypaas.manager.hosts.hooks import Provisioner
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.identity.audit import AuditLog
from mypaas.manager.identity.service import Identity
from mypaas.manager.image_copies import ImageCopies
from mypaas.manager.operations import Operations
from mypaas.manager.pki import PlatformCA, ServerFiles
from mypaas.manager.previews import Previews
from mypaas.manager.reconcile.loop import Reconciler
from mypaas.manager.releases import Releases
from mypaas.manager.state.db import Store
from mypaas.manager.status_cache import ComponentChecks
from mypaas.manager.supervisor import Parts, Supervisor
from mypaas.manager.volumes import Volumes
from mypaas.manager.wiring import (
    make_app_context,
    make_core,
    make_hosts,
    make_monitoring,
    make_pressure,
    make_reconciler,
    make_registry,
)
from mypaas.monitor.automation import Automation
from mypaas.monitor.host_events import HostEvents
from mypaas.monitor.pressure import HostPressure
from mypaas.monitor.service import Monitoring
from mypaas.registry.client import RegistryApi
from mypaas.registry.images import Images
from mypaas.registry.mirror import Mirror
from mypaas.router.base import Router
from mypaas.settings import Settings
from mypaas.states import BackendMode
from mypaas.uploads import Uploads

UPLOADS_DIR = "uploads"


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
    previews: Previews  # preview apps per git branch (deploy --preview)
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
    git: GitSources  # deploys from a repository, deploy keys, watches and forge webhooks
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
        self.git.clear_leftovers()  # clones and deploy tokens of git deploys a stopped manager never ended
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


def build_platform(settings: Settings, given: Components | None = None) -> Platform:
    """Build the platform from the settings, with ``given`` parts instead of the real ones."""
    given = given or Components()
    core = make_core(settings, given)
    identity = Identity(core.store.sessions)
    admin_token = identity.bootstrap(settings.token_path)
    reg = make_registry(core, identity, admin_token, given.registry)
    hosts = make_hosts(core, reg.mirror, given)
    monitoring = make_monitoring(core, hosts)
    reconciler = make_reconciler(core, reg, monitoring, given.clock, identity)
    ctx = make_app_context(core, monitoring, given.clock)
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
    pressure = make_pressure(core, hosts, monitoring)
    backups = parts.backups(settings, core.store, core.platform_id, core.backend, core.cipher)
    git = GitSources(
        sessions=core.store.sessions,
        operations=core.operations,
        events=monitoring.events,
        home=settings.home,
        api_url=lambda: settings.api_url,
        max_bytes=settings.git_clone_max_bytes,
        identity=identity,
    )
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
        git=git,
    )
    secrets = AppSecrets(ctx, vault=core.vault, releases=releases)
    declare = Declarations(
        ctx,
        apps=apps,
        releases=releases,
        secrets=secrets,
        automation=automation,
        hosts=hosts,
        settings=settings,
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
        previews=Previews(ctx, vault=core.vault, apps=apps),
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
        git=git,
    )
