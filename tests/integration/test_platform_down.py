"""`mypaas down` stops what the platform started (the manager, the registry, the router) and leaves the
apps running; `mypaas up` afterwards starts it all again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def registry_processes(home: Path) -> list[int]:
    """The docker-registry processes serving a config under ``home`` (this platform's only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if words and Path(words[0]).name == "docker-registry" and any(str(home) in w for w in words):
            found.append(int(entry.name))
    return found


def test_down_stops_the_registry_and_up_starts_it_again(platform: kit.Platform) -> None:
    assert registry_processes(platform.home), "the platform runs its registry"

    down = platform.cli("down", check=True)

    assert down.out.splitlines() == [
        "manager stopped",
        "registry stopped",
        "router stopped; apps keep running",
    ]
    assert registry_processes(platform.home) == []

    platform.up()

    assert platform.api("GET", "/api/v1/registry/status")["healthy"]
    assert len(registry_processes(platform.home)) == 1
