"""An image's two copies on the platform, told apart: the private registry's (a manifest: digest and
compressed size) and this host's engine's (an image id and uncompressed size). ``mypaas image ls`` lists
both; ``mypaas image rm`` removes both (or one); ``mypaas rm APP`` removes the app's repositories.

An image that a live app's release runs (or rolls out) is kept unless forced: the registry copy is what
a cluster's hosts pull, the engine copy what a restart on this host runs. Other hosts' engines keep what
they pulled (each prunes its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import Backend, ImageInfo
from mypaas.domain import AppSpec
from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound, NotSupported
from mypaas.manager.publishing import Publisher
from mypaas.manager.state.models import AppRow, ReleaseRow
from mypaas.registry.images import Images
from mypaas.registry.refs import Doomed, ImageRef, parse_ref, releases_own
from mypaas.states import AppState


@dataclass(frozen=True)
class Removal:
    """What ``mypaas image rm`` is asked: the names, and which copies go."""

    refs: list[str]
    whole: bool = False  # --all: each name is a repository
    force: bool = False  # even what a live app's release runs
    registry: bool = True
    engine: bool = True


@dataclass(frozen=True)
class _Pins:
    """What live apps' releases run: (repository, manifest digest) and engine image ids -> why."""

    manifests: dict[tuple[str, str], str]
    engine_ids: dict[str, str]


class ImageCopies:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: Backend,
        images: Images | None,
        publisher: Publisher | None,
    ) -> None:
        self._sessions = sessions
        self._backend = backend
        self._images = images
        self._publisher = publisher

    def _registry(self) -> Images:
        if self._images is None:
            raise NotSupported(
                "the private registry is turned off (setting registry_enabled)", field="registry"
            )
        return self._images

    # -- listing ----------------------------------------------------------------------------------

    def listing(self, repository: str | None = None) -> list[dict[str, Any]]:
        """The registry's tags (digest, compressed size) with this host's engine copy where it has one
        (engine_id, engine_size: the same image, by its config's digest)."""
        rows = self._registry().catalog(repository)
        for row in rows:
            info = self._engine_image(str(row.pop("config", "")))
            row["engine_id"] = info.id if info else None
            row["engine_size"] = info.size if info else None
        return rows

    def _engine_image(self, ref: str) -> ImageInfo | None:
        if not ref:
            return None
        try:
            return self._backend.image(ref)
        except (NotFound, InvalidSpec):
            return None

    # -- mypaas image rm --------------------------------------------------------------------------

    def remove(self, ask: Removal) -> dict[str, Any]:
        """Remove the named images' copies; answers what went from the registry and from this host's
        engine. Nothing is removed when a name is unknown, shared with a tag not named, or pinned."""
        if not ask.refs:
            raise InvalidSpec(
                "name at least one image (REPO:TAG, REPO@sha256:..., REPO --all)", field="image"
            )
        if not (ask.registry or ask.engine):
            raise InvalidSpec("--registry-only and --engine-only leave nothing to remove", field="image")
        addr = self._images.addr if self._images else ""
        refs = [parse_ref(text, whole=ask.whole, registry_addr=addr) for text in ask.refs]
        doomed: list[Doomed] = []
        missing = refs
        if self._images is not None:
            doomed, missing = self._images.plan_removal(refs, whole_manifests=ask.registry)
        engine = self._engine_copies(doomed, missing) if ask.engine else {}
        unknown = [r for r in missing if str(r) not in engine]
        if unknown:
            where = "in the registry nor on this host's engine" if ask.engine else "in the registry"
            raise NotFound(f"{', '.join(map(str, unknown))}: not {where}", field="image")
        if not ask.force:
            self._refuse_pinned(doomed if ask.registry else [], engine)
        for ref in engine:  # first: an engine that refuses (a container uses it) leaves the registry as it is
            self._backend.remove_image(ref, force=ask.force)
        registry_gone = self._registry().delete(doomed) if ask.registry and doomed else []
        if self._publisher is not None:
            self._publisher.forget((d.repo, d.digest) for d in registry_gone)
        return {
            "registry": [_manifest_dict(d) for d in registry_gone],
            "engine": [{"ref": ref, "id": info.id, "size": info.size} for ref, info in engine.items()],
            "registry_enabled": self._images is not None,
        }

    def _engine_copies(self, doomed: list[Doomed], missing: list[ImageRef]) -> dict[str, ImageInfo]:
        """This host's engine references of the same names (REPO:TAG) as the tags removed."""
        names = [f"{d.repo}:{t}" for d in doomed for t in d.tags]
        names += [str(r) for r in missing if r.tag is not None]
        found = {}
        for name in dict.fromkeys(names):
            info = self._engine_image(name)
            if info is not None:
                found[name] = info
        return found

    def _refuse_pinned(self, doomed: list[Doomed], engine: dict[str, ImageInfo]) -> None:
        pins = self._pins()
        for d in doomed:
            why = pins.manifests.get((d.repo, d.digest))
            if why:
                what = ", ".join(f"{d.repo}:{t}" for t in d.tags) or f"{d.repo}@{d.digest}"
                raise Conflict(f"{what} is pinned: {why}; {_FORCE}", field="image")
        for ref, info in engine.items():
            why = pins.engine_ids.get(info.id)
            if why:
                raise Conflict(f"{ref} is in use: {why}; {_FORCE}", field="image")

    def _pins(self) -> _Pins:
        manifests: dict[tuple[str, str], str] = {}
        engine_ids: dict[str, str] = {}
        with self._sessions() as s:
            rows = s.execute(
                select(AppRow.name, ReleaseRow.version, ReleaseRow.images, ReleaseRow.spec)
                .join(AppRow)
                .where(AppRow.state != AppState.DELETING)
                .where(
                    (ReleaseRow.version == AppRow.target_version)
                    | (ReleaseRow.version == AppRow.current_version)
                )
            ).all()
        prefix = f"{self._images.addr}/" if self._images else ""
        for app, version, images, raw in rows:
            for svc, ref in (images or {}).items():
                repo, _, digest = ref.removeprefix(prefix).partition("@")
                manifests[(repo, digest)] = f"app {app} runs it (release v{version}, service {svc})"
            for svc, spec in AppSpec.model_validate(raw).services.items():
                if spec.image_id:
                    engine_ids[spec.image_id] = f"app {app} runs it (release v{version}, service {svc})"
        return _Pins(manifests, engine_ids)

    # -- an app's repositories, removed with it -----------------------------------------------------

    def app_repositories(self, name: str) -> list[str]:
        """The registry repositories of app ``name`` (APP/SERVICE, for each service of its releases);
        none for an app that does not exist (removing it says so)."""
        services: set[str] = set()
        with self._sessions() as s:
            app = s.scalar(select(AppRow).where(AppRow.name == name))
            for rel in app.releases if app is not None else []:
                services.update(rel.spec.get("services") or {})
                services.update(rel.images or {})
        return sorted(f"{name}/{svc}" for svc in services)

    def remove_repositories(self, repos: list[str]) -> dict[str, Any]:
        """Delete the manifests of ``repos`` that the app's releases tagged (vN, id-…; a tag pushed or
        imported by hand is kept with its manifest), then have the registry collected in the background:
        their blobs and the emptied repositories go. A registry that fails is reported, not raised."""
        if self._images is None or not repos:
            return {"repositories": [], "manifests": [], "kept": []}
        doomed: list[Doomed] = []
        kept: list[str] = []
        try:
            there = set(self._images.repositories())
            for repo in (r for r in repos if r in there):
                mine, others = releases_own(repo, self._images.listing(repo))
                doomed += mine
                kept += others
            gone = self._images.delete(doomed)
        except MyPaasError as exc:
            return {"repositories": [], "manifests": [], "kept": [], "error": exc.message}
        if gone and self._publisher is not None:
            self._publisher.forget((d.repo, d.digest) for d in gone)
            self._publisher.enqueue_collect()
        return {
            "repositories": sorted({d.repo for d in gone}),
            "manifests": [_manifest_dict(d) for d in gone],
            "kept": kept,
            "collecting": bool(gone and self._publisher is not None),
        }


_FORCE = "deploy another image first, or pass --force to remove it anyway"


def _manifest_dict(d: Doomed) -> dict[str, Any]:
    return {"repository": d.repo, "digest": d.digest, "tags": list(d.tags), "size": d.size}
