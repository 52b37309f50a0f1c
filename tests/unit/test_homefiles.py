"""The data folder's modes: an install made by an older version (0755 folder, world-readable state
store and registry config) is tightened when the manager starts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mypaas.composer.fake import FakeBackend
from mypaas.homefiles import PRIVATE_UMASK, private_umask, tighten
from mypaas.manager.platform import Components, build_platform
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings


def _old_install(home: Path) -> None:
    """What an older version left: everything 0755/0644."""
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    for name in ("state.db", "state.db-wal", "state.db-shm", "registry/config.yml", "logs/manager.log"):
        path = home / name
        path.parent.mkdir(exist_ok=True)
        path.parent.chmod(0o755)
        path.write_text("" if name.startswith("state.db") else "secret")  # an empty database is one
        path.chmod(0o644)


def _open_entries(home: Path) -> list[str]:
    found = [] if not home.stat().st_mode & 0o077 else ["."]
    for folder, dirs, files in os.walk(home):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if not path.is_symlink() and path.lstat().st_mode & 0o077:
                found.append(str(path.relative_to(home)))
    return found


def test_tighten_makes_the_folder_and_every_file_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _old_install(home)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)

    assert tighten(home) == 8  # the folder, 2 sub-folders, 5 files; the link is not followed
    assert _open_entries(home) == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "state.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert tighten(home) == 0


def test_the_manager_tightens_an_old_install_at_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _old_install(home)
    parts = Components(backend=FakeBackend(), router=FakeRouter(), probe=lambda _: True)
    build_platform(Settings(home=home, registry_enabled=False), parts)
    assert _open_entries(home) == []


def test_private_umask_makes_new_files_owner_only(tmp_path: Path) -> None:
    old = private_umask()
    try:
        (tmp_path / "new").write_text("x")
        (tmp_path / "dir").mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o666 & ~PRIVATE_UMASK
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == 0o700


def test_an_entry_that_is_not_ours_is_left_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    _old_install(home)

    def refused(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refused)
    assert tighten(home) == 0  # no traceback: the owner's own start tightens it
