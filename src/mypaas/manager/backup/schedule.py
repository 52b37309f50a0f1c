"""Scheduled backups (`mypaas backup schedule --dir DIR --every 24h --keep 7`): the manager writes an
archive into DIR when one is due and removes the oldest beyond ``keep``. The schedule is one ``Meta``
row; the passphrase in it is sealed with the platform key (secrets.key), so the manager can use it
unattended — whoever holds both the state store and that key can open these archives."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mypaas.errors import InvalidSpec, MyPaasError
from mypaas.manager.backup.archive import check_passphrase
from mypaas.manager.state.meta import Setting
from mypaas.manager.vault.crypto import Cipher
from mypaas.monitor.events import parse_duration

log = logging.getLogger("mypaas.backup")

KEY = "backup_schedule"
PREFIX = "mypaas-scheduled-"  # not the CLI's mypaas-backup-…: only these are pruned
MIN_EVERY_S = 60.0
CHECK_S = 30.0
MAX_KEEP = 1000

# (passphrase, with_images, with_volumes) -> the archive in pieces
Make = Callable[[str, bool, bool], Iterator[bytes]]


class Schedule:
    def __init__(self, setting: Setting, cipher: Cipher, make: Make, clock: Callable[[], float] = time.time):
        self._setting = setting
        self._cipher = cipher
        self._make = make
        self._clock = clock
        self._running = threading.Lock()

    def _read(self) -> dict[str, Any] | None:
        raw = self._setting.get()
        return dict(json.loads(raw)) if raw else None

    def _write(self, value: dict[str, Any]) -> None:
        self._setting.set(json.dumps(value))

    def show(self) -> dict[str, Any]:
        """The schedule as the API shows it (never the passphrase)."""
        cur = self._read()
        if cur is None:
            return {"enabled": False}
        shown = {k: v for k, v in cur.items() if k != "passphrase"}
        last = cur.get("last") or 0.0
        return {"enabled": True, **shown, "next": (last + cur["every_s"]) if last else self._clock()}

    def set(
        self, *, folder: str, every: str, keep: int, passphrase: str, with_images: bool, with_volumes: bool
    ) -> dict[str, Any]:
        path = Path(folder)
        if not path.is_absolute():
            raise InvalidSpec(f"the folder must be an absolute path, not {folder!r}", field="dir")
        every_s = parse_duration(every, field="every")
        if every_s < MIN_EVERY_S:
            raise InvalidSpec(f"backups at most every {MIN_EVERY_S:.0f}s", field="every")
        if not 1 <= keep <= MAX_KEEP:
            raise InvalidSpec(f"keep must be between 1 and {MAX_KEEP}", field="keep")
        check_passphrase(passphrase)
        if not path.is_dir():
            raise InvalidSpec(f"no folder {folder} on the manager's machine: make it first", field="dir")
        if not os.access(path, os.W_OK | os.X_OK):
            raise InvalidSpec(f"the manager cannot write into {folder}", field="dir")
        old = self._read() or {}
        self._write(
            {
                "dir": str(path),
                "every_s": every_s,
                "keep": keep,
                "with_images": with_images,
                "with_volumes": with_volumes,
                "passphrase": self._cipher.encrypt(passphrase.encode()),
                "last": old.get("last") if old.get("dir") == str(path) else None,
                "last_file": old.get("last_file"),
                "last_error": None,
            }
        )
        return self.show()

    def off(self) -> dict[str, Any]:
        self._setting.set(None)
        return {"enabled": False}

    def run(self, stop: threading.Event) -> None:
        """The manager's loop: a backup whenever one is due."""
        while not stop.wait(CHECK_S):
            try:
                self.tick()
            except Exception:  # a full disk or a locked database: reported, tried again next round
                log.exception("scheduled backup failed")

    def tick(self) -> str | None:
        """Make a backup when one is due; the file written (None: not due, or no schedule)."""
        cur = self._read()
        if cur is None or (cur.get("last") and self._clock() - cur["last"] < cur["every_s"]):
            return None
        if not self._running.acquire(blocking=False):
            return None
        try:
            return self._backup(cur)
        finally:
            self._running.release()

    def _backup(self, cur: dict[str, Any]) -> str | None:
        folder = Path(cur["dir"])
        name = time.strftime(f"{PREFIX}%Y%m%d-%H%M%S.tar", time.gmtime(self._clock()))
        target, partial = folder / name, folder / f".{name}.part"
        error = None
        try:
            passphrase = self._cipher.open_token(cur["passphrase"]).decode()
            with open(partial, "wb") as out:
                for piece in self._make(passphrase, bool(cur["with_images"]), bool(cur["with_volumes"])):
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
            _prune(folder, int(cur["keep"]))
        except Exception as exc:  # a full disk, a locked database: recorded, tried again next round
            error = _one_line(exc)
            log.error("scheduled backup into %s failed: %s", folder, error)
        finally:
            partial.unlink(missing_ok=True)  # whatever happened, no half-written archive stays
        now = self._read()
        if now is not None and now.get("dir") == cur["dir"]:
            now.update(last=self._clock(), last_error=error, last_file=None if error else str(target))
            self._write(now)
        return None if error else str(target)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, MyPaasError):
        return exc.message
    text = str(exc).strip().splitlines()
    return (
        text[0] if isinstance(exc, OSError) and text else f"{type(exc).__name__}: {text[0] if text else ''}"
    )


def _prune(folder: Path, keep: int) -> None:
    """Remove the oldest scheduled archives beyond ``keep`` (their names sort by time)."""
    made = sorted(p for p in folder.glob(f"{PREFIX}*.tar") if p.is_file())
    for old in made[: max(0, len(made) - keep)]:
        old.unlink(missing_ok=True)
