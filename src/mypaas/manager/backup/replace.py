"""The engine's part of a restore, ordered so that the old platform's data is destroyed as late as
possible and a failure says exactly what was lost.

Docker volumes can be neither renamed nor set aside, so a volume the archive also has must be removed
before the archive's copy is made under its name. In order:

1. Everything that can be checked is checked, nothing changed yet: each archive volume's name is free
   on the engine or one of the replaced platform's own volumes (a same-named volume of something else
   is refused, not overwritten); with the archive's registry data, every release's image (its manifest
   and the blobs it names) is in it.
2. The releases' images are pulled from that registry data under new tags (nothing is replaced).
3. The volume names are checked again (the last check), then the old platform's containers are removed
   and each archive volume is made: the old volume of that name removed, the new one made and filled.
   From the first removal on, ``Progress`` records which volumes hold the archive's data, which one was
   removed and left unfinished.
4. The engine's resources of the old platform's apps the archive does not have are removed.

Then the state is swapped in (swap.py: the point of no return). A failure before it leaves the old
state, and ``Progress.damage`` names the volumes it no longer has as they were."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mypaas.composer.base import Backend
from mypaas.composer.volume_copies import EngineCopies
from mypaas.errors import Conflict, InvalidSpec
from mypaas.manager.backup.restore import Staged, read_chunks, release_images, unwatched

Watch = Callable[[dict[str, Any], Iterator[bytes]], Iterator[bytes]]
_BLOBS = Path("docker") / "registry" / "v2"


@dataclass
class Progress:
    """What of the old platform the engine no longer has (filled as the steps go)."""

    containers_removed: bool = False
    replaced: list[str] = field(default_factory=list)  # hold the archive's data now
    unfinished: str | None = None  # the old one removed, the new one not made whole

    def damage(self) -> str:
        """'' when the old platform's volumes are all as they were; else what is not, in a sentence."""
        parts = []
        if self.replaced:
            parts.append(f"volume(s) {', '.join(self.replaced)} already hold the archive's data")
        if self.unfinished:
            parts.append(f"volume {self.unfinished} was removed and is incomplete")
        return "; ".join(parts)


def check_volumes(backend: Backend, platform: str | None, staged: Staged) -> None:
    """Each archive volume's name is free or one of the replaced platform's own: else one line."""
    own = {v.name for v in backend.list_volumes(platform)} if platform else set()
    taken = [v.name for v in staged.volumes if v.name not in own and backend.volume_exists(v.name)]
    if taken:
        raise Conflict(
            f"restore: the engine has volume(s) {', '.join(taken)} that are not this platform's; "
            "remove or rename them first (nothing was changed)",
            field="volume",
        )


def check_images(staged: Staged) -> None:
    """With the archive's registry data: every release's image is whole in it, else one line."""
    data = staged.root / "registry" / "data"
    if not data.is_dir():
        return
    root = data / _BLOBS
    for app, service, version, ref in release_images(staged.root / "state.db"):
        _registry, _, path = ref.partition("/")
        repo, _, digest = path.partition("@")
        link = root / "repositories" / repo / "_manifests" / "revisions" / digest.replace(":", "/") / "link"
        if not (link.is_file() and _blob_whole(root, digest)):
            raise InvalidSpec(
                f"archive: its registry data lacks the image of {app}/{service} (release v{version}); "
                "nothing was changed",
                field="archive",
            )


def _blob_whole(root: Path, digest: str, depth: int = 0) -> bool:
    """The blob is there and, for a manifest, the blobs it names too (an index's manifests, once)."""
    algo, _, hexa = digest.partition(":")
    data = root / "blobs" / algo / hexa[:2] / hexa / "data"
    if not hexa or not data.is_file():
        return False
    if depth > 1:
        return True
    try:
        doc = json.loads(data.read_bytes())
    except (ValueError, OSError):
        return True  # a layer, not a manifest
    if not isinstance(doc, dict) or "schemaVersion" not in doc:
        return True  # an image's config (its own "config" key is no descriptor), not a manifest or index
    named = [d for d in [doc.get("config"), *doc.get("layers", []), *doc.get("manifests", [])] if d]
    return all(isinstance(d, dict) and _blob_whole(root, str(d.get("digest", "")), depth + 1) for d in named)


def stop_apps(backend: Backend, platform: str | None, progress: Progress) -> None:
    """Remove the replaced platform's containers (they hold its volumes)."""
    if not platform:
        return
    progress.containers_removed = True
    for inst in backend.list_instances(platform):
        backend.remove_instance(inst.id, grace_s=2.0)


def replace_volumes(
    backend: Backend,
    platform: str | None,
    staged: Staged,
    copies: EngineCopies,
    helper_image: str,
    progress: Progress,
    watch: Watch = unwatched,
) -> None:
    """Each archive volume made again, the old one of that name removed just before."""
    own = {v.name for v in backend.list_volumes(platform)} if platform else set()
    for v in staged.volumes:
        path = staged.root / "volumes" / f"{v.name}.tar"
        if v.name in own:
            progress.unfinished = v.name
            backend.remove_volume(str(platform), v.name)
        part = {"name": f"volumes/{v.name}", "kind": "volume", "size": path.stat().st_size}
        copies.import_volume(v, watch(part, read_chunks(path)), helper_image)
        progress.replaced.append(v.name)
        progress.unfinished = None


def drop_old_apps(backend: Backend, platform: str | None, apps: list[str], staged: Staged) -> None:
    """The networks and image tags of the replaced platform's apps the archive does not have."""
    if not platform:
        return
    for app in sorted(set(apps) - set(staged.apps)):
        backend.remove_app_resources(platform, app, volumes=False, force=True)
