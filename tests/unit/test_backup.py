"""Backups: the archive's format (sealed parts, a wrong passphrase, truncated or changed archives), a
backup of a platform through the API, its restore into another data folder (staged, then swapped in
whole, also after a crash) and the restore's refusal on a platform that has apps."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.composer.fake import FakeBackend
from mypaas.errors import InvalidSpec
from mypaas.manager.backup import restore, swap
from mypaas.manager.backup.archive import CHUNK, Part, open_archive, read_manifest, write_archive
from mypaas.manager.platform import Platform
from mypaas.settings import Settings

PASS = "correct horse battery"


def archive_of(parts: dict[str, bytes], passphrase: str = PASS) -> bytes:
    made = [
        Part(name, "files", [data[i : i + 1000] for i in range(0, len(data), 1000)])
        for name, data in parts.items()
    ]
    return b"".join(write_archive(passphrase, {"apps": ["web"]}, made))


def read_all(data: bytes, passphrase: str = PASS) -> dict[str, bytes]:
    reader = open_archive(io.BytesIO(data), passphrase)
    return {part["name"]: b"".join(content) for part, content in reader.parts()}


def test_parts_come_back_whole_and_the_manifest_says_what_is_inside() -> None:
    parts = {"empty": b"", "small": b"hello", "big": bytes(range(256)) * (2 * CHUNK // 256) + b"tail"}
    data = archive_of(parts)

    assert read_all(data) == parts
    manifest = read_manifest(io.BytesIO(data))
    assert manifest["format"] == "mypaas-backup" and manifest["apps"] == ["web"]
    assert [p["name"] for p in manifest["parts"]] == ["empty", "small", "big"]
    assert b"hello" not in data and b"tail" not in data  # sealed


def test_a_wrong_passphrase_is_one_line_naming_the_passphrase() -> None:
    data = archive_of({"small": b"hello"})

    with pytest.raises(InvalidSpec) as caught:
        read_all(data, "not the passphrase")

    assert caught.value.message == "wrong passphrase for this backup"
    assert caught.value.field == "passphrase"


def test_a_short_passphrase_is_refused_before_anything_is_written() -> None:
    with pytest.raises(InvalidSpec, match="at least 12 characters"):
        next(write_archive("elevenchars", {}, []))


@pytest.mark.parametrize("cut", [100, 700, 1600, 3000, -1500, -2100])
def test_a_truncated_archive_is_refused(cut: int) -> None:
    data = archive_of({"a": b"x" * 3000, "b": b"y" * 10})

    with pytest.raises(InvalidSpec) as caught:
        read_all(data[:cut])

    assert caught.value.field == "archive"
    assert "\n" not in caught.value.message


def test_a_changed_byte_is_refused() -> None:
    data = bytearray(archive_of({"a": b"x" * 3000}))
    data[2600] ^= 1  # inside the first sealed piece

    with pytest.raises(InvalidSpec, match="damaged or was changed"):
        read_all(bytes(data))


def backup_of(api: TestClient, **options: bool) -> bytes:
    r = api.post("/api/v1/backup", json={"passphrase": PASS, **options})
    assert r.status_code == 200, r.text
    return r.content


def test_the_api_streams_a_backup_holding_the_state_store(api: TestClient, platform: Platform) -> None:
    assert api.post("/api/v1/apps/web/deploys", json={"image": "web:1"}).status_code in (200, 202)

    data = backup_of(api)

    reader = open_archive(io.BytesIO(data), PASS)
    assert reader.manifest["apps"] == ["web"]
    assert reader.manifest["schema"] and reader.manifest["platform"] == platform.platform_id
    got = {part["name"]: b"".join(content) for part, content in reader.parts()}
    assert set(got) == {"state.db", "home"}
    assert got["state.db"].startswith(b"SQLite format 3")


def test_the_api_refuses_a_short_passphrase_with_the_field_named(api: TestClient) -> None:
    r = api.post("/api/v1/backup", json={"passphrase": "short"})

    assert r.status_code == 400
    assert r.json()["field"] == "passphrase"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_a_restore_replaces_the_state_whole(api: TestClient, platform: Platform, tmp_path: Path) -> None:
    api.post("/api/v1/apps/web/deploys", json={"image": "web:1"})
    data = backup_of(api)
    other = Settings(home=tmp_path / "other", registry_enabled=False)
    other.home.mkdir()
    (other.home / "registry-pull-token").write_text("of the old platform")  # the archive has none

    staged = restore.stage(other, io.BytesIO(data), PASS)
    restore.commit(other, staged)

    assert restore.current_apps(other) == (platform.platform_id, ["web"])
    assert (other.home / "secrets.key").read_bytes() == platform.settings.secrets_key_path.read_bytes()
    assert (other.home / "admin-token").read_text() == platform.settings.token_path.read_text()
    assert not (other.home / "registry-pull-token").exists()  # nothing of the old state stays
    assert not swap.staging_dir(other).exists()


def test_a_damaged_archive_changes_nothing(api: TestClient, platform: Platform, tmp_path: Path) -> None:
    data = backup_of(api)
    other = Settings(home=tmp_path / "other", registry_enabled=False)
    other.home.mkdir()
    (other.home / "state.db").write_bytes(b"the old state")

    with pytest.raises(InvalidSpec, match="archive: "):
        restore.stage(other, io.BytesIO(data[: len(data) // 2]), PASS)

    assert (other.home / "state.db").read_bytes() == b"the old state"
    assert not swap.staging_dir(other).exists()


def test_a_crash_leaves_the_old_state_before_the_mark_and_the_new_one_after(
    api: TestClient, tmp_path: Path
) -> None:
    data = backup_of(api)
    other = Settings(home=tmp_path / "other", registry_enabled=False)
    other.home.mkdir()
    (other.home / "state.db").write_bytes(b"the old state")

    restore.stage(other, io.BytesIO(data), PASS)  # crash here: no READY mark
    assert swap.finish_pending(other) is False
    assert (other.home / "state.db").read_bytes() == b"the old state"

    staged = restore.stage(other, io.BytesIO(data), PASS)
    moves = swap.plan(other, staged.root, registry=False)
    (swap.staging_dir(other) / swap.READY).write_text(__import__("json").dumps(moves))
    (other.home / "state.db").rename(swap.staging_dir(other) / "half-moved")  # crash midway
    assert swap.finish_pending(other) is True  # the next start finishes it
    assert (other.home / "state.db").read_bytes().startswith(b"SQLite format 3")


def _staged_swap(home: Path) -> tuple[Settings, list[tuple[str, str]]]:
    """A data folder with an old state.db, admin-token and registry-pull-token (no ssh/, no
    settings.yml) and a staged restore with state.db, admin-token, ssh/ and settings.yml."""
    s = Settings(home=home, registry_enabled=False)
    home.mkdir()
    (home / "state.db").write_text("old db")
    (home / "admin-token").write_text("old token")
    (home / "registry-pull-token").write_text("old pull token")  # the archive has none: goes away
    new = swap.staging_dir(s) / "new"
    (new / "home" / "ssh").mkdir(parents=True)
    (new / "state.db").write_text("new db")
    (new / "home" / "admin-token").write_text("new token")
    (new / "home" / "ssh" / "id").write_text("new ssh key")  # absent on the target
    (new / "home" / "settings.yml").write_text("new settings")  # absent on the target
    moves = swap.plan(s, new, registry=False)
    (swap.staging_dir(s) / swap.READY).write_text(__import__("json").dumps(moves))
    return s, moves


def _swapped_in(home: Path) -> None:
    assert (home / "state.db").read_text() == "new db"
    assert (home / "admin-token").read_text() == "new token"
    assert (home / "ssh" / "id").read_text() == "new ssh key"
    assert (home / "settings.yml").read_text() == "new settings"
    assert not (home / "registry-pull-token").exists()
    assert not swap.staging_dir(Settings(home=home)).exists()


def test_a_swap_interrupted_at_any_step_is_finished_by_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = 0
    real_move, real_mark = swap._move, swap._mark

    def counting(real):  # type: ignore[no-untyped-def]
        def step(*args):  # type: ignore[no-untyped-def]
            nonlocal steps
            steps += 1
            return real(*args)

        return step

    monkeypatch.setattr(swap, "_move", counting(real_move))
    monkeypatch.setattr(swap, "_mark", counting(real_mark))
    s, _ = _staged_swap(tmp_path / "whole")
    assert swap.finish_pending(s) is True
    _swapped_in(s.home)
    total = steps
    assert total >= 7  # moves aside, marks and moves in

    for crash_at in range(total):
        home = tmp_path / f"crash{crash_at}"
        s, _ = _staged_swap(home)
        steps = 0

        def crashing(real, at: int):  # type: ignore[no-untyped-def]
            def step(*args):  # type: ignore[no-untyped-def]
                nonlocal steps
                if steps == at:
                    raise KeyboardInterrupt("power cut")
                steps += 1
                return real(*args)

            return step

        monkeypatch.setattr(swap, "_move", crashing(real_move, crash_at))
        monkeypatch.setattr(swap, "_mark", crashing(real_mark, crash_at))
        with pytest.raises(KeyboardInterrupt):
            swap.finish_pending(s)
        monkeypatch.setattr(swap, "_move", real_move)
        monkeypatch.setattr(swap, "_mark", real_mark)
        assert swap.finish_pending(s) is True  # the next start
        _swapped_in(home)


def test_restore_refuses_a_platform_that_has_apps_unless_yes(
    api: TestClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post("/api/v1/apps/web/deploys", json={"image": "web:1"})
    archive = tmp_path / "backup.tar"
    archive.write_bytes(backup_of(api))
    passfile = tmp_path / "pass"
    passfile.write_text(PASS + "\n")
    monkeypatch.setenv("MYPAAS_HOME", str(platform.settings.home))
    client_module.settings.cache_clear()
    before = sqlite3.connect(platform.settings.db_path).execute("SELECT count(*) FROM releases").fetchone()

    result = CliRunner().invoke(cli_app, ["restore", str(archive), "--passphrase-file", str(passfile)])

    client_module.settings.cache_clear()
    assert result.exit_code == 1
    assert "error: this platform has 1 app(s) (web): restoring replaces them" in result.output
    assert "--yes" in result.output
    assert not swap.staging_dir(platform.settings).exists()
    after = sqlite3.connect(platform.settings.db_path).execute("SELECT count(*) FROM releases").fetchone()
    assert after == before


def test_restore_with_a_wrong_passphrase_is_one_line(
    api: TestClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "backup.tar"
    archive.write_bytes(backup_of(api))
    passfile = tmp_path / "pass"
    passfile.write_text("something else\n")
    monkeypatch.setenv("MYPAAS_HOME", str(tmp_path / "fresh"))
    client_module.settings.cache_clear()

    result = CliRunner().invoke(cli_app, ["restore", str(archive), "--passphrase-file", str(passfile)])

    client_module.settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "error: wrong passphrase for this backup"


def test_the_cli_writes_the_archive_naming_each_part(
    api: TestClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.cli.support import isolate, serve

    isolate(monkeypatch, tmp_path / "cli")
    serve(monkeypatch, api, platform)
    passfile = tmp_path / "pass"
    passfile.write_text(PASS + "\n")
    target = tmp_path / "b.tar"

    result = CliRunner().invoke(cli_app, ["backup", str(target), "--passphrase-file", str(passfile)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("  state.db (") and lines[1].startswith("  home (")
    assert lines[-1].startswith(f"backup written to {target} (")
    assert set(read_all(target.read_bytes())) == {"state.db", "home"}
    assert not target.with_name("b.tar.part").exists()

    short = tmp_path / "short"
    short.write_text("elevenchars\n")
    result = CliRunner().invoke(cli_app, ["backup", str(tmp_path / "c.tar"), "--passphrase-file", str(short)])
    assert result.exit_code == 1
    assert result.output.strip() == "error: the passphrase must have at least 12 characters"
    assert not list(tmp_path.glob("c.tar*"))


def test_the_schedule_refuses_bad_input_naming_the_field(api: TestClient, tmp_path: Path) -> None:
    good = {"dir": str(tmp_path), "every": "24h", "keep": 7, "passphrase": PASS}
    for change, field in (
        ({"dir": "relative/b"}, "dir"),
        ({"dir": str(tmp_path / "missing")}, "dir"),
        ({"every": "10s"}, "every"),
        ({"every": "often"}, "every"),
        ({"keep": 0}, "keep"),
        ({"passphrase": "elevenchars"}, "passphrase"),
    ):
        r = api.put("/api/v1/backup/schedule", json={**good, **change})
        assert r.status_code == 400, (change, r.text)
        assert r.json()["field"] == field
    assert api.get("/api/v1/backup/schedule").json() == {"enabled": False}


def test_scheduled_backups_keep_the_newest_and_never_show_the_passphrase(
    api: TestClient, platform: Platform, tmp_path: Path
) -> None:
    from mypaas.manager.backup.schedule import KEY, Schedule
    from mypaas.manager.backup.service import BackupOptions
    from mypaas.manager.state.meta import Setting
    from mypaas.manager.vault.crypto import Cipher

    folder = tmp_path / "backups"
    folder.mkdir()
    body = {"dir": str(folder), "every": "1h", "keep": 2, "passphrase": PASS}
    shown = api.put("/api/v1/backup/schedule", json=body).json()
    assert shown["enabled"] and shown["every_s"] == 3600 and "passphrase" not in shown
    assert PASS not in (Setting(platform.sessions, KEY).get() or "")  # sealed with the platform key
    now = [1_000_000.0]
    schedule = Schedule(
        Setting(platform.sessions, KEY),
        Cipher.from_file(platform.settings.secrets_key_path),
        lambda pp, _i, _v: platform.backups.start(pp, BackupOptions()),
        clock=lambda: now[0],
    )

    made = [schedule.tick()]
    assert schedule.tick() is None  # not due yet
    for _ in range(2):
        now[0] += 3600
        made.append(schedule.tick())

    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(m or "").name for m in made[1:])
    assert set(read_all(Path(made[-1] or "").read_bytes())) == {"state.db", "home"}
    assert api.get("/api/v1/backup/schedule").json()["last_file"] == made[-1]
    assert api.delete("/api/v1/backup/schedule").json() == {"enabled": False}


def test_the_cli_sets_shows_and_stops_the_schedule(
    api: TestClient, platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.cli.support import isolate, serve

    isolate(monkeypatch, tmp_path / "cli")
    serve(monkeypatch, api, platform)
    passfile = tmp_path / "pass"
    passfile.write_text(PASS + "\n")
    folder = tmp_path / "backups"
    folder.mkdir()
    run = CliRunner().invoke

    set_ = run(
        cli_app,
        [
            "backup",
            "schedule",
            "--dir",
            str(folder),
            "--every",
            "24h",
            "--keep",
            "3",
            "--passphrase-file",
            str(passfile),
        ],
    )
    assert set_.exit_code == 0, set_.output
    assert set_.output.splitlines() == [f"every 1d into {folder}, the newest 3 kept", "last backup: none yet"]
    assert run(cli_app, ["backup", "schedule", "--json"]).output.count('"keep": 3') == 1
    assert run(cli_app, ["backup", "schedule", "--off"]).output.strip() == "no scheduled backups"
    bad = run(cli_app, ["backup", "schedule", "--dir", "here", "--passphrase-file", str(passfile)])
    assert (
        bad.exit_code == 1 and bad.output.strip() == "error: the folder must be an absolute path, not 'here'"
    )
