"""Releases' images into the private registry: after a release rolls out its images are pushed (one at a
time, in the background) and recorded on the release; older releases' images go by the retention setting.
Imported and base images are pushed under their own NAME:TAG. On a cluster, every host pulls the exact
image a service runs, by digest, from the registry's cluster address (``for_hosts``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.domain import AppSpec
from mypaas.errors import MyPaasError
from mypaas.manager.state.models import AppRow, ReleaseRow
from mypaas.registry.images import Images
from mypaas.states import AppState, ReleaseStatus

log = logging.getLogger("mypaas.images")


class Publisher:
    def __init__(self, *, sessions: sessionmaker[Session], images: Images, public_addr: str) -> None:
        self._sessions = sessions
        self._images = images
        self._public = public_addr  # the registry's address as the hosts reach it
        self._queue: queue.Queue[tuple[str, int] | str | _Collect] = queue.Queue()
        self._published: dict[tuple[str, str, str], str] = {}  # (app, service, image id) -> host ref
        self._collect_queued = threading.Event()  # one collection waiting is enough for several removals

    def enqueue(self, app: str, version: int) -> None:
        """Publish a release's images (after its rollout)."""
        self._queue.put((app, version))

    def enqueue_image(self, ref: str) -> None:
        """Publish an imported or base image as the same NAME:TAG in the registry."""
        self._queue.put(ref)

    def enqueue_collect(self) -> None:
        """Garbage-collect the registry, after the pushes queued before (an app's images were deleted)."""
        if not self._collect_queued.is_set():
            self._collect_queued.set()
            self._queue.put(_Collect())

    def publish_image(self, ref: str) -> dict[str, Any]:
        """Publish an imported image now, as the same NAME:TAG; answers the registry's copy
        (repository, tag, digest, compressed size), or why it is not there (``error``)."""
        name, _, tag = ref.rpartition(":")
        try:
            self._images.publish(ref, name, tag)
            m = self._images.manifest(name, tag)
        except MyPaasError as exc:
            log.warning("publishing %s: %s", ref, exc.message)
            return {"repository": name, "tag": tag, "error": exc.message}
        return {"repository": name, "tag": tag, "digest": m.digest, "size": m.size}

    def enqueue_unpublished(self) -> None:
        """After a restart: queue every served release whose images never reached the registry."""
        with self._sessions() as s:
            rows = s.execute(
                select(AppRow.name, ReleaseRow.version, ReleaseRow.images)
                .join(AppRow)
                .where(ReleaseRow.status.in_((ReleaseStatus.ACTIVE, ReleaseStatus.SUPERSEDED)))
            ).all()
        for app, version, images in rows:
            if not images:
                self.enqueue(app, version)

    def for_hosts(self, app: str, service: str, image_id: str) -> str:
        """The reference every host pulls ``image_id`` by (pushed once, then remembered)."""
        key = (app, service, image_id)
        ref = self._published.get(key)
        if ref is None:
            tag = f"id-{image_id.removeprefix('sha256:')[:12]}"
            pushed = self._images.publish(image_id, f"{app}/{service}", tag)
            ref = self._published[key] = self._public + pushed[len(self._images.addr) :]
        return ref

    def forget(self, manifests: Iterable[tuple[str, str]]) -> None:
        """Manifests deleted from the registry, as (repository, digest): ``for_hosts`` pushes their
        images again rather than answer a reference no host can pull (an app removed, then deployed
        again under its name; an image removed by hand)."""
        gone = set(manifests)
        for key, ref in list(self._published.items()):
            if (f"{key[0]}/{key[1]}", ref.rpartition("@")[2]) in gone:
                self._published.pop(key, None)

    def run(self, stop: threading.Event) -> None:
        """Push the queued releases' images one at a time, until ``stop``."""
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if isinstance(item, _Collect):
                    self._collect_queued.clear()
                    self._images.collect()
                elif isinstance(item, str):
                    name, _, tag = item.rpartition(":")
                    self._images.publish(item, name, tag)
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
            if rel is None or rel.images or rel.app.state == AppState.DELETING:
                return  # published already, or its app goes with its images
            spec = AppSpec.model_validate(rel.spec)
        published = {
            name: self._images.publish(svc.image_id, f"{app}/{name}", f"v{version}")
            for name, svc in spec.services.items()
            if svc.image_id
        }
        with self._sessions.begin() as s:
            rel = s.scalar(
                select(ReleaseRow).join(AppRow).where(AppRow.name == app, ReleaseRow.version == version)
            )
            if rel is not None:
                rel.images = published

    def apply_retention(self, app: str) -> list[str]:
        """Delete the images of ``app``'s releases older than the last N, unless a kept one uses them."""
        with self._sessions() as s:
            rows = s.execute(
                select(ReleaseRow.images)
                .join(AppRow)
                .where(AppRow.name == app)
                .order_by(ReleaseRow.version.desc())
            ).all()
        keep = self._images.keep_releases
        kept = {ref for (images,) in rows[:keep] for ref in (images or {}).values()}
        old = [ref for (images,) in rows[keep:] for ref in (images or {}).values() if ref not in kept]
        return self._images.delete_refs(dict.fromkeys(old))


class _Collect:
    """A queued request for a garbage collection."""
