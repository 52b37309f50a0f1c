"""Data at rest on the running platform: the data folder and everything in it are owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def readable_by_others(home: Path) -> list[str]:
    """Entries under ``home`` (itself included) a group or other user could read, with their modes."""
    found = []
    for path in [
        home,
        *(Path(folder) / name for folder, dirs, files in os.walk(home) for name in dirs + files),
    ]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and not stat.S_ISSOCK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(home)} {stat.filemode(mode)}")
    return found


def test_after_up_no_file_under_home_is_readable_by_others(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    platform.cli("deploy", "atrest", "--image", images["v1"], check=True)
    platform.cli("config", "set", "atrest", "DB_PASSWORD=hunter2-modes", check=True)

    assert readable_by_others(platform.home) == []


def test_a_config_value_is_not_in_the_state_store_files(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    platform.cli("deploy", "atrest2", "--image", images["v1"], check=True)
    platform.cli("config", "set", "atrest2", "DB_PASSWORD=hunter2-at-rest", check=True)

    assert platform.cli("config", "atrest2", "--json", check=True).json() == {
        "DB_PASSWORD": "hunter2-at-rest"
    }
    raw = b"".join(path.read_bytes() for path in platform.home.glob("state.db*"))
    assert b"hunter2-at-rest" not in raw
