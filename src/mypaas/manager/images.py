"""Images in the private registry: publishing releases' images, the token endpoint Distribution
trusts, listings, removal, retention and garbage collection (with the registry read-only meanwhile)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import queue
import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import Backend
from mypaas.domain import AppSpec
from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound, Unauthorized
from mypaas.manager.access import ADMIN, TokenChecker
from mypaas.manager.state.models import AppRow, ReleaseRow
from mypaas.registry.client import RegistryClient
from mypaas.registry.distribution import Distribution
from mypaas.registry.tokens import ALL_ACTIONS, Access, TokenIssuer, parse_scope

log = logging.getLogger("mypaas.images")

PUSH_USER = "mypaas"


class Images:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: Backend,
        tokens: TokenChecker,
        issuer: TokenIssuer,
        registry: Distribution,
        admin_token: str,
        keep_releases: int,
    ) -> None:
        self._sessions = sessions
        self._backend = backend
        self._tokens = tokens
        self.issuer = issuer
        self.registry = registry
        self.client = RegistryClient(registry.url, issuer)
        self._admin_token = admin_token
        self._keep = keep_releases
        self._queue: queue.Queue[tuple[str, int] | str] = queue.Queue()
        self._gc_lock = threading.Lock()  # held by a collection; publishing waits for it

    @property
    def addr(self) -> str:
        return self.registry.addr

    def ensure_running(self) -> None:
        """Start the registry, or adopt the one running; not while a collection has it read-only."""
        if self._gc_lock.acquire(blocking=False):
            try:
                self.registry.ensure_running()
            finally:
                self._gc_lock.release()

    # -- the token endpoint (Docker registry token-auth spec) -------------------------------------

    def token(self, authorization: str | None, service: str | None, scopes: list[str]) -> dict[str, object]:
        """Check Basic credentials (any user name, a MyPaas API token as the password); grant scopes."""
        password = _basic_password(authorization)
        subject, role = self._tokens.identify(f"Bearer {password}")
        if service and service != self.issuer.service:
            raise InvalidSpec(f"unknown service {service!r}", field="service")
        allowed = ALL_ACTIONS if role == ADMIN else ("pull",)  # a cluster's hosts only pull
        granted = []
        for scope in scopes:
            access = parse_scope(scope)
            actions = tuple(a for a in access.actions if a in allowed or (a == "*" and role == ADMIN))
            granted.append(Access(access.type, access.name, actions))
        return self.issuer.issue(subject, granted)

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, image: str, repo: str, tag: str) -> str:
        """Push a local image to the registry as ``repo:tag``; return ``addr/repo@digest``."""
        with self._gc_lock:
            target = f"{self.addr}/{repo}"
            digest = self._backend.push_image(
                image, repository=target, tag=tag, username=PUSH_USER, password=self._admin_token
            )
            # keep the engine's references tidy; the image itself stays for the instances using it
            self._backend.remove_image(f"{target}:{tag}")
            self._backend.remove_image(f"{target}@{digest}")
        return f"{target}@{digest}"

    def enqueue(self, app: str, version: int) -> None:
        """Publish a release's images (after its rollout)."""
        self._queue.put((app, version))

    def enqueue_image(self, ref: str) -> None:
        """Publish an imported or base image as the same NAME:TAG in the registry."""
        self._queue.put(ref)

    def enqueue_unpublished(self) -> None:
        """After a restart: queue every served release whose images never reached the registry."""
        with self._sessions() as s:
            rows = s.execute(
                select(AppRow.name, ReleaseRow.version, ReleaseRow.images)
                .join(AppRow)
                .where(ReleaseRow.status.in_(("active", "superseded")))
            ).all()
        for app, version, images in rows:
            if not images:
                self.enqueue(app, version)

    def run(self, stop: threading.Event) -> None:
        """The publisher: pushes queued releases' images one at a time, until ``stop``."""
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if isinstance(item, str):
                    name, _, tag = item.rpartition(":")
                    self.publish(item, name, tag)
                else:
                    self._publish_release(*item)
                    self.apply_retention(item[0])
            except MyPaasError as exc:
                log.warning("publishing %s: %s", item, exc.message)
            except Exception:  # a locked database or a bug must not end publishing for good
                log.exception("publishing %s failed", item)

    def _publish_release(self, app: str, version: int) -> None:
        with self._sessions() as s:
            rel = s.scalar(
                select(ReleaseRow).join(AppRow).where(AppRow.name == app, ReleaseRow.version == version)
            )
            if rel is None or rel.images:
                return
            spec = AppSpec.model_validate(rel.spec)
        published = {
            name: self.publish(svc.image_id, f"{app}/{name}", f"v{version}")
            for name, svc in spec.services.items()
            if svc.image_id
        }
        with self._sessions.begin() as s:
            rel = s.scalar(
                select(ReleaseRow).join(AppRow).where(AppRow.name == app, ReleaseRow.version == version)
            )
            if rel is not None:
                rel.images = published

    # -- listing and removing -------------------------------------------------------------------

    def catalog(self, repo: str | None = None) -> list[dict[str, Any]]:
        repos = [repo] if repo else self.client.repositories()
        out = []
        for name in repos:
            for tag in self.client.tags(name):
                m = self.client.manifest(name, tag)
                out.append({"repository": name, "tag": tag, "digest": m.digest, "size": m.size})
        if repo and not out:
            raise NotFound(f"no repository {repo!r} in the registry", field="repository")
        return out

    def remove(self, ref: str) -> dict[str, Any]:
        """Delete ``repo:tag`` (its manifest; the blobs go at the next collection)."""
        repo, sep, tag = ref.rpartition(":")
        if not sep or not repo or "/" in tag:
            raise InvalidSpec(f"expected REPOSITORY:TAG, got {ref!r}", field="image")
        m = self.client.manifest(repo, tag)
        sharing = [
            t for t in self.client.tags(repo) if t != tag and self.client.manifest(repo, t).digest == m.digest
        ]
        if sharing:
            raise Conflict(
                f"{ref} shares its manifest with tag(s) {', '.join(sharing)}: remove those too, or keep it",
                field="image",
            )
        self.client.delete(repo, m.digest)
        return {"repository": repo, "tag": tag, "digest": m.digest}

    # -- retention and collection ---------------------------------------------------------------

    def apply_retention(self, app: str) -> list[str]:
        """Delete the images of ``app``'s releases older than the last N, unless a kept one uses them."""
        with self._sessions() as s:
            rows = s.execute(
                select(ReleaseRow.version, ReleaseRow.images)
                .join(AppRow)
                .where(AppRow.name == app)
                .order_by(ReleaseRow.version.desc())
            ).all()
        kept = {ref for _, images in rows[: self._keep] for ref in (images or {}).values()}
        deleted = []
        for _, images in rows[self._keep :]:
            for ref in (images or {}).values():
                if ref in kept or ref in deleted:
                    continue
                name, _, digest = ref.partition("@")
                with contextlib.suppress(NotFound):
                    self.client.delete(name.removeprefix(f"{self.addr}/"), digest)
                deleted.append(ref)
        return deleted

    def collect(self) -> dict[str, Any]:
        """Garbage-collect: registry read-only (pulls go on, pushes are refused), collect, writable."""
        with self._gc_lock:
            before = self.registry.disk_usage()
            self.registry.restart(readonly=True)
            try:
                output = self.registry.garbage_collect()
            finally:
                self.registry.restart(readonly=False)
            after = self.registry.disk_usage()
        deleted = sum(1 for line in output.splitlines() if "blob eligible for deletion" in line)
        return {"freed_bytes": max(0, before - after), "blobs_deleted": deleted, "disk_bytes": after}

    def status(self) -> dict[str, Any]:
        healthy = self.registry.healthy()
        repos = self.client.repositories() if healthy else []
        return {
            "address": self.addr,
            "healthy": healthy,
            "repositories": len(repos),
            "disk_bytes": self.registry.disk_usage(),
            "keep_releases": self._keep,
        }


def _basic_password(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("basic "):
        raise Unauthorized("registry login needs a user name and a MyPaas API token as the password")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    _, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthorized("registry login needs a user name and a MyPaas API token as the password")
    return password
