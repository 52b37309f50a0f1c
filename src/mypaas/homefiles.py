"""The data folder's modes: ``MYPAAS_HOME`` and everything the platform writes in it are readable by
its owner only (the state store holds every app's config vars, the registry's config its HTTP secret,
the keys and tokens are there too). ``private_umask`` makes new files so; ``tighten`` fixes a folder
made by an older version (an upgrade tightens modes at the next start)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
_OPEN = 0o077  # group and other bits


def private_umask() -> int:
    """Files made from now on by this process (and what it starts) are owner-only; the old umask."""
    return os.umask(PRIVATE_UMASK)


def tighten(home: Path) -> int:
    """Make ``home`` 0700 and drop the group/other bits of everything under it (symlinks are not
    followed); the number of entries changed."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = _tighten_one(home)
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            changed += _tighten_one(Path(folder) / name)
    return changed


def _tighten_one(path: Path) -> int:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:  # gone meanwhile (a temporary file)
        return 0
    if stat.S_ISLNK(mode) or not mode & _OPEN:
        return 0
    try:
        path.chmod(stat.S_IMODE(mode) & ~_OPEN)  # not a symlink: checked above
    except (FileNotFoundError, PermissionError):  # gone, or not ours (its owner's start fixes it)
        return 0
    return 1
