"""The docker backend's secrets and configs: files the manager writes under its own home and bind-mounts
read-only into the instances. The engine runs on this machine, so the source of such a mount is always
a path of the manager's — never one a user gave.

Layout: ``ROOT/APP/KIND-DIGEST-UID-GID-MODE``, the folders 0700 (root only), each file owned by the
instance's ``uid``/``gid`` with its ``mode``. Files are content-addressed: instances of an unchanged
value share one, a changed value gets a new one, and a file that no container mounts any more is
removed once an instance of its app goes (``prune``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from mypaas.composer.base import SecretFile
from mypaas.errors import BackendError

_DIGEST = re.compile(r"[0-9a-f]{16,64}")
_APP = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class HostFiles:
    """The files under ``root``. Thread-safe: instances are created and removed in parallel; a prune
    never removes what an instance being created is about to mount."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._writing: Counter[str] = Counter()  # app -> instances being created with its files

    def path(self, app: str, file: SecretFile) -> Path:
        if (
            not _APP.fullmatch(app)
            or not _DIGEST.fullmatch(file.digest)
            or file.kind not in ("secret", "config")
        ):
            raise BackendError(f"{file.kind} {file.name}: not a valid app or digest to keep a file for")
        return self.root / app / f"{file.kind}-{file.digest[:32]}-{file.uid}-{file.gid}-{file.mode:o}"

    @contextlib.contextmanager
    def writing(self, app: str) -> Iterator[None]:
        """Hold off prunes of ``app`` while an instance is created with its files."""
        with self._lock:
            self._writing[app] += 1
        try:
            yield
        finally:
            with self._lock:
                self._writing[app] -= 1
                if not self._writing[app]:
                    del self._writing[app]

    def write(self, app: str, file: SecretFile) -> Path:
        """The file of ``file``'s value, owner and mode, written unless it is there already."""
        path = self.path(app, file)
        if path.exists():
            return path
        try:
            _private_dir(self.root)
            _private_dir(path.parent)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, file.data)
                os.fchown(fd, file.uid, file.gid)
                os.fchmod(fd, file.mode)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as exc:
            raise BackendError(f"writing {file.kind} {file.name} for {app}: {exc.strerror or exc}") from exc
        return path

    def has_any(self) -> bool:
        try:
            return any(self.root.iterdir())
        except OSError:
            return False

    def prune(self, app: str, mounted: Callable[[], set[str]]) -> None:
        """Remove ``app``'s files that no container mounts (``mounted``: the sources of the mounts of
        every container of the app, stopped ones included, which would mount them again at a restart)."""
        folder = self.root / app
        with self._lock:
            if self._writing.get(app) or not folder.is_dir():
                return
            used = mounted()
            for path in folder.iterdir():
                if str(path) not in used:
                    with contextlib.suppress(OSError):
                        path.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

    def remove_app(self, app: str) -> None:
        if _APP.fullmatch(app):
            shutil.rmtree(self.root / app, ignore_errors=True)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
