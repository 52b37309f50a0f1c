"""`mypaas restore`: a backup archive made the platform's state again, on this machine, with the manager
stopped. In order: the archive is read whole and checked into a staging folder (a wrong passphrase or a
damaged archive stops here, nothing changed); what can be checked is checked, the releases' images
are pulled from the archive's registry data (served for the occasion by a registry of its own on
loopback), the old platform's containers are removed and the volumes made again (replace.py: in that
order, so the old data goes as late as possible); then the state is swapped in whole (swap.py) and the
manager, started again, redeploys every app."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sqlite3
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mypaas.composer.base import Backend
from mypaas.composer.volume_copies import EngineCopies, VolumeCopy
from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.manager.backup import swap
from mypaas.manager.backup.archive import open_archive
from mypaas.manager.state.db import SCHEMA_HEAD
from mypaas.registry.distribution import Distribution
from mypaas.settings import Settings

# (part's manifest entry, its content) -> the same content, counted for a progress bar
Watch = Callable[[dict[str, Any], Iterator[bytes]], Iterator[bytes]]


def unwatched(_part: dict[str, Any], content: Iterator[bytes]) -> Iterator[bytes]:
    return content


@dataclass
class Staged:
    """A checked archive waiting in the staging folder."""

    manifest: dict[str, Any]
    root: Path
    volumes: list[VolumeCopy] = field(default_factory=list)

    @property
    def apps(self) -> list[str]:
        return [str(a) for a in self.manifest.get("apps", [])]


def current_apps(settings: Settings) -> tuple[str | None, list[str]]:
    """This platform's id and its apps, read from the state store (the manager may be stopped)."""
    if not settings.db_path.exists():
        return None, []
    try:
        db = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=10)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'platform_id'").fetchone()
            apps = sorted(r[0] for r in db.execute("SELECT name FROM apps"))
        finally:
            db.close()
    except sqlite3.Error:
        return None, []
    return (str(row[0]) if row else None), apps


def stage(settings: Settings, src: IO[bytes], passphrase: str, watch: Watch = unwatched) -> Staged:
    """Read and check the whole archive into the staging folder; on any error the folder is removed and
    the error raised (one line), the platform untouched."""
    swap.finish_pending(settings)  # an older unfinished one goes first
    root = swap.staging_dir(settings) / "new"
    root.mkdir(mode=0o700, parents=True)
    try:
        reader = open_archive(src, passphrase)
        _check_schema(reader.manifest)
        staged = Staged(reader.manifest, root)
        for part, content in reader.parts():
            _stage_part(staged, part, watch(part, content))
        _check_db(root / "state.db")
    except BaseException:
        shutil.rmtree(swap.staging_dir(settings), ignore_errors=True)
        raise
    (root / "manifest.json").write_text(json.dumps(reader.manifest))
    return staged


def drop(settings: Settings) -> None:
    """Throw a staged archive away (the restore was not confirmed)."""
    if not (swap.staging_dir(settings) / swap.READY).exists():
        shutil.rmtree(swap.staging_dir(settings), ignore_errors=True)


def _check_schema(manifest: dict[str, Any]) -> None:
    schema = str(manifest.get("schema", ""))
    if schema > SCHEMA_HEAD:
        raise InvalidSpec(
            f"archive: made by a newer MyPaas (schema {schema}, this one knows up to {SCHEMA_HEAD}); "
            "upgrade MyPaas first",
            field="archive",
        )


def _stage_part(staged: Staged, part: dict[str, Any], content: Iterator[bytes]) -> None:
    kind, name, root = part.get("kind"), str(part["name"]), staged.root
    if kind == "state":
        _write(root / "state.db", content)
    elif kind == "files":
        _unpack(content, root / "home")
    elif kind == "registry":
        _unpack(content, root / "registry")
    elif kind == "volume" and name.startswith("volumes/") and "/" not in name[len("volumes/") :]:
        volume = name[len("volumes/") :]
        _write(root / "volumes" / f"{volume}.tar", content)
        labels = {str(k): str(v) for k, v in (part.get("labels") or {}).items()}
        staged.volumes.append(VolumeCopy(volume, labels, part.get("size")))
    else:
        raise InvalidSpec(f"archive: unknown part {name!r}", field="archive")


def _write(path: Path, content: Iterator[bytes]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for piece in content:
            f.write(piece)


def _unpack(content: Iterator[bytes], into: Path) -> None:
    """Unpack a tar part; the data filter refuses absolute paths, links out of the folder, devices."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = into.with_suffix(".tar")
    _write(tmp, content)
    try:
        with tarfile.open(tmp, mode="r:") as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidSpec(f"archive: a part cannot be unpacked ({exc})", field="archive") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _check_db(path: Path) -> None:
    if not path.exists():
        raise InvalidSpec("archive: it holds no state store", field="archive")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise InvalidSpec(f"archive: its state store cannot be read ({exc})", field="archive") from exc
    if not verdict or verdict[0] != "ok":
        raise InvalidSpec(f"archive: its state store is damaged ({verdict})", field="archive")


def release_images(db_path: Path) -> list[tuple[str, str, int, str]]:
    """(app, service, version, registry reference) of each app's target and current releases."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT a.name, r.version, r.images FROM releases r JOIN apps a ON a.id = r.app_id "
            "WHERE r.version = a.target_version OR r.version = a.current_version"
        ).fetchall()
    finally:
        db.close()
    out = []
    for app, version, images in rows:
        for service, ref in sorted((json.loads(images) if images else {}).items()):
            out.append((str(app), str(service), int(version), str(ref)))
    return out


def read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while piece := f.read(1 << 20):
            yield piece


def restore_images(
    settings: Settings, staged: Staged, copies: EngineCopies, say: Callable[[str], None]
) -> int:
    """Pull the releases' images from the archive's registry data into the engine; the count pulled."""
    folder = staged.root / "registry"
    refs = release_images(staged.root / "state.db")
    if not refs or not (folder / "data").is_dir():
        return 0
    port = _free_port()
    registry = Distribution(
        name="restore registry",
        addr=f"127.0.0.1:{port}",
        folder=folder,
        log_path=settings.log_dir / "restore-registry.log",
        auth=None,
    )
    settings.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pulled = 0
    try:
        registry.ensure_running()
        for app, service, version, ref in refs:
            _registry, _, path = ref.partition("/")
            say(f"  image of {app}/{service} (release v{version})")
            copies.pull_image(f"127.0.0.1:{port}/{path}", f"mypaas-{app}/{service}:restored-v{version}")
            pulled += 1
    finally:
        registry.stop()
        with contextlib.suppress(MyPaasError):
            registry.close()
        for leftover in ("config.yml", "registry.pid", "http-secret"):
            (folder / leftover).unlink(missing_ok=True)
    return pulled


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def offline_engine(settings: Settings) -> Iterator[tuple[Backend, EngineCopies, str]]:
    """The engine's driver, its volume copier and the helper image, while the manager is stopped."""
    from mypaas.build.base import BASE_REF, ensure_base_image
    from mypaas.composer.volume_copies import DockerCopies
    from mypaas.manager.parts import make_backend

    backend = make_backend(settings, pool=False)  # the manager it restores keeps the pool
    copies = DockerCopies(settings.docker_url)
    try:
        ensure_base_image(backend)
        yield backend, copies, BASE_REF
    finally:
        copies.close()
        backend.close()


def stop_registries(settings: Settings) -> None:
    from mypaas.manager.offline import stop_registries as stop

    stop(settings)


def commit(settings: Settings, staged: Staged) -> None:
    """Swap the staged state in, whole (swap.py)."""
    registry = (staged.root / "registry" / "data").is_dir()
    swap.commit(settings, swap.plan(settings, staged.root, registry=registry))
