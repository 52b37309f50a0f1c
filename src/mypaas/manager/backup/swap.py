"""Replacing the platform's state with a restored one, whole: either the old state stands or the new one.

The restored files wait in ``$MYPAAS_HOME/restore/new`` with a plan of where each goes. Writing the
``READY`` mark (a rename: atomic) is the moment the restore happens; before it, a crash leaves the old
state and the staging folder is thrown away at the next start; after it, the next start (or the restore
itself) finishes moving the files in. Each move is a rename, and redoing the plan after a crash skips
what was done, so finishing twice is harmless. The old files go to ``restore/old`` and are removed last.
Each step leaves a record before its restored item moves in: the old item set aside as ``old/<i>``, or
an ``old/<i>.absent`` mark when the target had none (a fresh machine has no ``ssh/``, no
``settings.yml``); a redo that finds the staged item gone and one of the two knows the item in place is
the restored one and leaves it; neither means the archive has none and the old item goes aside.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from mypaas.manager.backup.contents import HOME_ITEMS, KEY_ITEM, REGISTRY_DATA
from mypaas.settings import Settings

log = logging.getLogger("mypaas.backup")

STAGING = "restore"
READY = "READY"
_DB_SIDE_FILES = ("-wal", "-shm", "-journal")


def staging_dir(settings: Settings) -> Path:
    return settings.home / STAGING


def plan(settings: Settings, staged: Path, *, registry: bool) -> list[tuple[str, str]]:
    """(staged path, where it goes) for every item a restore replaces; a staged path that does not
    exist means the item is removed (the archive had none)."""
    home = settings.home
    moves = [(str(staged / "state.db"), str(settings.db_path))]
    moves += [(str(staged / "state.db") + side, str(settings.db_path) + side) for side in _DB_SIDE_FILES]
    moves.append((str(staged / "home" / KEY_ITEM), str(settings.secrets_key_path)))
    moves += [(str(staged / "home" / item), str(home / item)) for item in HOME_ITEMS]
    if registry:
        moves.append((str(staged / "registry" / "data"), str(home / REGISTRY_DATA)))
    return moves


def commit(settings: Settings, moves: list[tuple[str, str]]) -> None:
    """Mark the staged state ready (the point of no return), then move it in."""
    root = staging_dir(settings)
    tmp = root / "plan.json.tmp"
    tmp.write_text(json.dumps(moves))
    _fsync(tmp)
    os.replace(tmp, root / READY)
    _fsync_dir(root)
    finish_pending(settings)


def finish_pending(settings: Settings) -> bool:
    """At start: finish a restore that was marked ready, or drop one that was not. True when the state
    was replaced."""
    root = staging_dir(settings)
    if not root.exists():
        return False
    ready = root / READY
    if not ready.exists():
        log.warning("dropping an unfinished restore in %s (the state stays as it was)", root)
        shutil.rmtree(root, ignore_errors=True)
        return False
    moves = [(Path(a), Path(b)) for a, b in json.loads(ready.read_text())]
    old = root / "old"
    old.mkdir(exist_ok=True)
    for index, (src, dst) in enumerate(moves):
        kept, absent = old / str(index), old / f"{index}.absent"
        done = _there(kept) or absent.exists()  # this step's record: the restored item went in
        if _there(src):
            if not done:
                if _there(dst):
                    _move(dst, kept)
                else:
                    _mark(absent)
            dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _move(src, dst)
        elif not done and _there(dst):
            _move(dst, kept)  # the archive has none: nothing of the old state stays
    ready.unlink()
    shutil.rmtree(root, ignore_errors=True)
    log.info("the restored state is in place")
    return True


def _there(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _move(src: Path, dst: Path) -> None:
    shutil.move(str(src), str(dst))


def _mark(path: Path) -> None:
    path.write_bytes(b"")
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
