"""Images made on the platform's engine: base images (``mypaas image base debian:bookworm``) built as
operations a client follows (debootstrap's output goes to the operation's log while it runs in the
background), and root filesystem archives imported as they stream in (``mypaas image import``). Each
image made is handed to ``published`` (the registry takes it, in the background)."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mypaas.build.debootstrap import BaseSpec, build_base, check_host, parse_base, remove_tree
from mypaas.build.rootfs import archive_limits, import_rootfs
from mypaas.composer.base import Backend, ImageInfo
from mypaas.errors import Conflict, MyPaasError, NotFound
from mypaas.manager.operations import Operations
from mypaas.manager.state.models import OperationRow
from mypaas.settings import Settings
from mypaas.states import OperationStatus

log = logging.getLogger("mypaas.build")

KIND = "base-image"


def _nowhere(_ref: str) -> None:
    return None


def _not_now(_ref: str) -> dict[str, Any] | None:
    return None


class Builds:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        backend: Backend,
        operations: Operations,
        settings: Settings,
        published: Callable[[str], None] = _nowhere,
        publish_now: Callable[[str], dict[str, Any] | None] = _not_now,
    ) -> None:
        self._sessions = sessions
        self._backend = backend
        self._ops = operations
        self._settings = settings
        self._lock = threading.Lock()
        self._building: set[str] = set()
        self._published = published  # an image was made: the registry takes it
        self._publish_now = publish_now  # the same, answering the registry's copy (None: no registry)
        self.workdir = settings.home / "tmp" / "base-images"

    def leftovers(self) -> list[Path]:
        """The build folders a previous manager left (it was stopped in the middle of a build)."""
        return list(self.workdir.iterdir()) if self.workdir.is_dir() else []

    def sweep(self, leftovers: list[Path]) -> None:
        """Remove ``leftovers`` (slow for a whole root filesystem: the supervisor runs it on a thread)."""
        for leftover in leftovers:
            try:
                remove_tree(leftover)
            except MyPaasError as exc:
                log.warning("%s", exc.message)

    def import_archive(
        self, chunks: Iterable[bytes], *, ref: str, changes: Sequence[str]
    ) -> tuple[ImageInfo, dict[str, Any] | None, list[str]]:
        """Import a root filesystem archive streamed in ``chunks`` as image ``ref`` (see
        build/rootfs.py: checked while it streams; a refused one leaves nothing behind), then push it
        to the registry. Answers the engine's image, the registry's copy (None: no registry) and
        warnings (what the archive held that was left out, such as device nodes)."""
        warnings: list[str] = []
        info = import_rootfs(
            self._backend,
            chunks,
            ref=ref,
            changes=changes,
            limits=archive_limits(self._settings),
            warn=warnings.append,
        )
        return info, self._publish_now(info.ref), warnings

    def start_base(self, image: str, user: str, *, if_missing: bool = False) -> OperationRow:
        """Validate, then build in the background; with ``if_missing``, an image already there is kept."""
        spec = self._spec(image)
        if if_missing:
            try:
                info = self._backend.image(spec.ref)
            except NotFound:
                pass
            else:
                return self._new(
                    spec,
                    user,
                    status=OperationStatus.SUCCEEDED,
                    message=f"{spec.ref} is there: {info.id[:19]}",
                )
        self._claim(spec, "")
        try:
            op = self._new(spec, user, status=OperationStatus.BUILDING)
            threading.Thread(
                target=self._run, args=(spec, op.id), name=f"base {spec.ref}", daemon=True
            ).start()
        except BaseException:
            self._release(spec)
            raise
        return op

    def _spec(self, image: str) -> BaseSpec:
        mirrors = {"debian": self._settings.debian_mirror, "ubuntu": self._settings.ubuntu_mirror}
        return parse_base(image, mirrors)

    def _claim(self, spec: BaseSpec, hint: str) -> None:
        """Start building ``spec``'s image: this machine can, and no other build of it runs."""
        check_host()
        with self._lock:
            if spec.ref in self._building:
                raise Conflict(f"{spec.ref} is being built already{hint}", field="image")
            self._building.add(spec.ref)

    def _release(self, spec: BaseSpec) -> None:
        with self._lock:
            self._building.discard(spec.ref)

    def _new(self, spec: BaseSpec, user: str, *, status: OperationStatus, message: str = "") -> OperationRow:
        with self._sessions.begin() as s:
            op = self._ops.new(s, app="", kind=KIND, user=user, status=status)
            op.message = message
            if status == OperationStatus.SUCCEEDED:
                op.finished_at = time.time()
        return op

    def ensure_base(self, image: str, emit: Callable[[str], None]) -> None:
        """Build ``image`` (e.g. debian:bookworm) now unless the engine has it; for source builds."""
        spec = self._spec(image)
        try:
            self._backend.image(spec.ref)
            return
        except NotFound:
            pass
        self._claim(spec, ": try again when it is done")
        try:
            self._build(spec, emit)
        finally:
            self._release(spec)

    def _build(self, spec: BaseSpec, emit: Callable[[str], None]) -> ImageInfo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix=f"{spec.distro}-{spec.suite}-", dir=self.workdir)
        info = build_base(self._backend, spec, Path(workdir), emit, archive_limits(self._settings))
        self._published(spec.ref)
        return info

    def _run(self, spec: BaseSpec, op_id: str) -> None:
        def emit(line: str) -> None:
            self._ops.append_log(op_id, line + "\n")

        ok, message = False, ""
        try:
            info = self._build(spec, emit)
            ok, message = True, f"built {spec.ref}: {info.id[:19]}, {info.size / 1e6:.0f} MB"
        except MyPaasError as exc:
            message = exc.message
        except Exception as exc:  # every failure ends the operation, whatever raised it
            log.exception("building %s", spec.ref)
            message = f"building {spec.ref} failed: {exc}"
        finally:
            self._release(spec)
        with self._sessions.begin() as s:
            self._ops.finish(s, op_id, ok=ok, message=message)
        self._ops.notify()
