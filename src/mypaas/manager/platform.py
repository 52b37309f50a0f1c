"""The manager process: opens the state store, wires backend, router, reconcile loop and services,
and runs the background threads (reconcile, health probes, engine events, router supervision)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mypaas.build.base import BASE_REF, ensure_base_image
from mypaas.composer.base import Backend
from mypaas.errors import MyPaasError
from mypaas.iaas.local import LocalEngineConfig
from mypaas.manager.apps import Apps
from mypaas.manager.auth import TokenChecker, ensure_admin_token
from mypaas.manager.automation import Automation
from mypaas.manager.base_images import BaseImages
from mypaas.manager.db import open_store
from mypaas.manager.images import Images
from mypaas.manager.mirror import Mirror
from mypaas.manager.models import AppRow, Meta, OperationRow
from mypaas.manager.monitoring import Monitoring
from mypaas.manager.operations import Operations
from mypaas.manager.reconcile import Reconciler, Router
from mypaas.registry.distribution import Distribution, TokenAuth
from mypaas.registry.tokens import TokenIssuer
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
        router: Any = None,
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
            from mypaas.composer.docker import DockerBackend

            backend = DockerBackend(settings.docker_url)
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
            ),
            engine=LocalEngineConfig(),
        )
        if self.images is not None:
            self.reconciler.on_active = self.images.enqueue
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
        self.started_at = time.time()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _images(self, settings: Settings, backend: Backend) -> Images:
        folder = settings.home / "registry"
        issuer = TokenIssuer(folder)
        auth = TokenAuth(
            realm=f"{settings.api_url}/api/v1/registry/token",
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
        """Builds cannot resume after a restart; rollouts can, with a fresh grace period."""
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
        ensure = getattr(self.router, "ensure_running", None)
        if ensure is None:
            return
        healthy = getattr(self.router, "healthy", None)
        if healthy is not None and healthy():
            return
        try:
            ensure()
            self.reconciler.wake()
        except MyPaasError as exc:
            log.error("router: %s", exc.message)

    def _router_loop(self) -> None:
        while not self._stop.wait(ROUTER_CHECK_S):
            self._supervise_router()
            self._supervise_registry()

    def router_healthy(self) -> bool:
        healthy = getattr(self.router, "healthy", None)
        return bool(healthy()) if healthy is not None else True
