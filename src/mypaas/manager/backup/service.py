"""Backups of the running platform (`mypaas backup`, GET/POST /api/v1/backup, the schedule): the parts
are planned first (their sizes known, shown before each starts) and read as the archive is streamed, so
a backup holds no more than a piece in memory and deploys go on meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from mypaas import __version__
from mypaas.composer.volume_copies import EngineCopies
from mypaas.manager.backup import contents
from mypaas.manager.backup.archive import Part, check_passphrase, write_archive
from mypaas.manager.backup.schedule import KEY, Schedule
from mypaas.manager.state.db import SCHEMA_HEAD, Store, current_revision
from mypaas.manager.state.meta import Setting
from mypaas.manager.state.models import AppRow
from mypaas.manager.vault.crypto import Cipher
from mypaas.settings import Settings

log = logging.getLogger("mypaas.backup")


@dataclass(frozen=True)
class BackupOptions:
    with_images: bool = False
    with_volumes: bool = False


class Backups:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        platform_id: str,
        copies: Callable[[], EngineCopies],
        helper_image: Callable[[], str],
        cipher: Cipher,
    ) -> None:
        self._settings = settings
        self._store = store
        self._platform = platform_id
        self._copies = copies  # the engine's volumes, opened for one backup
        self._helper_image = helper_image  # the image of the helper container that reads a volume
        self.schedule = Schedule(Setting(store.sessions, KEY), cipher, self._scheduled)

    def _scheduled(self, passphrase: str, with_images: bool, with_volumes: bool) -> Iterator[bytes]:
        return self.start(passphrase, BackupOptions(with_images=with_images, with_volumes=with_volumes))

    def start(self, passphrase: str, options: BackupOptions) -> Iterator[bytes]:
        """Check the passphrase and plan the parts (the state store copied now), then answer the archive
        in pieces, each part read as it is reached. Errors before the first piece are raised here."""
        check_passphrase(passphrase)
        copies = self._copies() if options.with_volumes else None
        try:
            parts = self._parts(options, copies)
            facts = self._facts(options)
        except BaseException:
            if copies is not None:
                copies.close()
            raise
        return self._stream(passphrase, facts, parts, copies)

    def _stream(
        self, passphrase: str, facts: dict[str, Any], parts: list[Part], copies: EngineCopies | None
    ) -> Iterator[bytes]:
        try:
            yield from write_archive(passphrase, facts, parts)
        finally:
            if copies is not None:
                copies.close()

    def _facts(self, options: BackupOptions) -> dict[str, Any]:
        with self._store.sessions() as s:
            apps = sorted(s.scalars(select(AppRow.name)))
        return {
            "mypaas": __version__,
            "schema": current_revision(self._store.engine) or SCHEMA_HEAD,
            "platform": self._platform,
            "apps": apps,
            "with_images": options.with_images,
            "with_volumes": options.with_volumes,
        }

    def _parts(self, options: BackupOptions, copies: EngineCopies | None) -> list[Part]:
        s = self._settings
        entries = contents.home_entries(s.home, s.secrets_key_path)
        parts = [
            Part(
                "state.db", "state", contents.db_pieces(s.db_path, s.home / "tmp"), s.db_path.stat().st_size
            ),
            Part("home", "files", contents.tar_pieces(entries), contents.tree_size(entries)),
        ]
        if options.with_images:
            data = [(s.home / contents.REGISTRY_DATA, "data")]
            if data[0][0].is_dir():
                parts.append(
                    Part("registry", "registry", contents.tar_pieces(data), contents.tree_size(data))
                )
        if copies is not None:
            image = self._helper_image()
            for v in copies.volumes(self._platform):
                pieces = copies.export_volume(v.name, image, self._platform)
                parts.append(Part(f"volumes/{v.name}", "volume", pieces, v.size, {"labels": v.labels}))
        return parts
