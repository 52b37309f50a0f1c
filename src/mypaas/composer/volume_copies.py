"""Copies of the apps' named volumes and of release images, for backups and restores: a volume is read
and written through the engine (a helper container that mounts it and is never started: the engine's
archive API copies files out of and into its mounts), an image is pulled by digest from a registry.

``EngineCopies`` is the interface the manager's backup uses; ``DockerCopies`` drives the engine."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import docker

from mypaas.composer.base import LABEL_PLATFORM
from mypaas.composer.errors import engine_errors
from mypaas.errors import BackendError, Conflict

MOUNT = "/volume"  # where the helper container mounts the volume; the archive's entries start volume/
LABEL_HELPER = "mypaas.backup-helper"


@dataclass(frozen=True)
class VolumeCopy:
    name: str  # the engine's name
    labels: dict[str, str] = field(default_factory=dict)
    size: int | None = None  # bytes, as the engine counted them (None: unknown)


class EngineCopies(Protocol):
    def volumes(self, platform: str) -> list[VolumeCopy]:
        """The platform's volumes with their labels and sizes."""
        ...

    def export_volume(self, name: str, helper_image: str, platform: str) -> Iterator[bytes]:
        """The volume's files as a tar (entries under ``volume/``), read as it is sent."""
        ...

    def import_volume(self, copy: VolumeCopy, data: Iterable[bytes], helper_image: str) -> None:
        """Make the volume (its labels kept) and unpack ``data`` (what export_volume gave) into it.
        Conflict when the engine has a volume of that name already."""
        ...

    def pull_image(self, ref: str, keep_as: str) -> str:
        """Pull ``ref`` (a registry reference by digest), tag it ``keep_as``, drop the pulled name; the
        image's id."""
        ...

    def has_image(self, image_id: str) -> bool: ...

    def close(self) -> None: ...


class DockerCopies:
    def __init__(self, base_url: str, timeout: float = 600) -> None:
        with engine_errors(f"cannot reach the Docker engine at {base_url}", as_error=BackendError):
            self._api = docker.APIClient(base_url=base_url, version="auto", timeout=int(timeout))

    def close(self) -> None:
        self._api.close()

    def volumes(self, platform: str) -> list[VolumeCopy]:
        with engine_errors("listing volumes"):
            rows = (self._api.volumes(filters={"label": [f"{LABEL_PLATFORM}={platform}"]}) or {}).get(
                "Volumes"
            ) or []
            sizes = self._sizes() if rows else {}
        return [
            VolumeCopy(str(r["Name"]), dict(r.get("Labels") or {}), sizes.get(str(r["Name"])))
            for r in sorted(rows, key=lambda r: str(r["Name"]))
        ]

    def _sizes(self) -> dict[str, int]:
        """Each volume's size as the engine's disk usage report counts it (-1 there: not known)."""
        with engine_errors("measuring volumes"):
            report = self._api.df()
        return {
            str(v["Name"]): int(v["UsageData"]["Size"])
            for v in report.get("Volumes") or []
            if (v.get("UsageData") or {}).get("Size", -1) >= 0
        }

    @contextlib.contextmanager
    def _helper(self, volume: str, image: str, platform: str) -> Iterator[str]:
        """A container mounting ``volume`` at MOUNT, never started; removed afterwards."""
        name = f"mypaas-backup-{secrets.token_hex(4)}"
        with engine_errors(f"making a helper container for volume {volume}"):
            cid = self._api.create_container(
                image=image,
                name=name,
                command=["true"],
                labels={LABEL_PLATFORM: platform, LABEL_HELPER: "1"},
                network_disabled=True,
                host_config=self._api.create_host_config(
                    mounts=[docker.types.Mount(MOUNT, volume, type="volume")]
                ),
            )["Id"]
        try:
            yield str(cid)
        finally:
            with contextlib.suppress(docker.errors.DockerException):
                self._api.remove_container(cid, force=True)

    def export_volume(self, name: str, helper_image: str, platform: str) -> Iterator[bytes]:
        with self._helper(name, helper_image, platform) as cid, engine_errors(f"reading volume {name}"):
            stream, _stat = self._api.get_archive(cid, MOUNT, chunk_size=1 << 20)
            yield from stream

    def import_volume(self, copy: VolumeCopy, data: Iterable[bytes], helper_image: str) -> None:
        with engine_errors(f"restoring volume {copy.name}"):
            try:
                self._api.inspect_volume(copy.name)
            except docker.errors.NotFound:
                pass
            else:
                raise Conflict(f"the engine has a volume {copy.name} already", field="volume")
            self._api.create_volume(copy.name, labels=copy.labels)
        platform = copy.labels.get(LABEL_PLATFORM, "")
        with self._helper(copy.name, helper_image, platform) as cid, engine_errors(f"restoring {copy.name}"):
            if not self._api.put_archive(cid, "/", iter(data)):
                raise BackendError(f"the engine refused the files of volume {copy.name}")

    def pull_image(self, ref: str, keep_as: str) -> str:
        repo, _, digest = ref.partition("@")
        with engine_errors(f"pulling {ref}"):
            for _ in self._api.pull(repo, tag=digest, stream=True, decode=True):
                pass
            image_id = str(self._api.inspect_image(ref)["Id"])
            name, _, tag = keep_as.rpartition(":")
            self._api.tag(image_id, name, tag)
            with contextlib.suppress(docker.errors.APIError):
                self._api.remove_image(ref)
        return image_id

    def has_image(self, image_id: str) -> bool:
        with engine_errors(f"image {image_id}"):
            try:
                self._api.inspect_image(image_id)
            except docker.errors.NotFound:
                return False
        return True
