"""Bounds of backups: a forged manifest cannot make the reader's key derivation eat the machine, the
writer's cost and passphrase minimum, and scheduled backups that prune only their own archives and
never leave a half-written one behind."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.errors import InvalidSpec
from mypaas.manager.backup.archive import KDF, MIN_PASSPHRASE, open_archive, write_archive
from mypaas.manager.backup.schedule import Schedule
from mypaas.manager.vault.crypto import Cipher

PASS = "correct horse battery"


def _with_kdf(data: bytes, **kdf: int) -> bytes:
    """The archive with its (unauthenticated) manifest's key derivation parameters changed."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            content = src.extractfile(member)
            raw = content.read() if content else b""
            if member.name == "manifest.json":
                manifest = json.loads(raw)
                manifest["kdf"].update(kdf)
                raw = json.dumps(manifest).encode()
                member.size = len(raw)
            dst.addfile(member, io.BytesIO(raw))
    return out.getvalue()


@pytest.mark.parametrize(
    "kdf",
    [{"n": 2**20, "r": 32}, {"n": 2**21}, {"n": 2**17, "r": 8, "p": 64}, {"n": 1000}, {"r": 0}, {"n": -4}],
)
def test_a_manifest_asking_for_a_huge_or_odd_key_derivation_is_one_line(kdf: dict[str, int]) -> None:
    data = b"".join(write_archive(PASS, {}, []))
    with pytest.raises(InvalidSpec) as caught:
        open_archive(io.BytesIO(_with_kdf(data, **kdf)), PASS)
    assert caught.value.message == "archive: unsupported key derivation parameters"


def test_the_writer_costs_more_and_wants_a_longer_passphrase() -> None:
    assert KDF["n"] == 2**17 and MIN_PASSPHRASE == 12
    data = b"".join(write_archive("x" * 12, {}, []))
    assert open_archive(io.BytesIO(data), "x" * 12).manifest["kdf"]["n"] == 2**17


class _Setting:
    def __init__(self) -> None:
        self.value: str | None = None

    def get(self) -> str | None:
        return self.value

    def set(self, value: str | None) -> None:
        self.value = value


def test_scheduled_backups_prune_only_their_own_and_leave_no_part_file(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    manual = folder / "mypaas-backup-20200101-000000.tar"  # `mypaas backup`'s default name
    manual.write_bytes(b"a manual backup")
    now, fail = [1_000_000.0], [False]

    def make(_pp: str, _i: bool, _v: bool) -> Iterator[bytes]:
        yield b"half an archive"
        if fail[0]:
            raise RuntimeError("(sqlite3.OperationalError) database is locked\n[SQL: SELECT 1]")
        yield b" and the rest"

    schedule = Schedule(_Setting(), Cipher(os.urandom(32)), make, clock=lambda: now[0])  # type: ignore[arg-type]
    schedule.set(
        folder=str(folder), every="1h", keep=1, passphrase=PASS, with_images=False, with_volumes=False
    )
    for _ in range(3):
        made = schedule.tick()
        now[0] += 3600
    assert made is not None and Path(made).name.startswith("mypaas-scheduled-")
    assert sorted(p.name for p in folder.iterdir()) == sorted([manual.name, Path(made).name])

    fail[0] = True
    assert schedule.tick() is None
    assert sorted(p.name for p in folder.iterdir()) == sorted([manual.name, Path(made).name])  # no .part
    assert schedule.show()["last_error"] == "RuntimeError: (sqlite3.OperationalError) database is locked"
