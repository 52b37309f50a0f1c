"""The engine's part of a restore (replace.py, driven by the CLI's _put_in_place): what can be checked is
checked before anything of the old platform goes, its volumes go one by one as late as possible, and a
failure says which of them no longer hold the old data."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mypaas.cli import backup as cli_backup
from mypaas.composer.engine import resource_labels
from mypaas.composer.fake import FakeBackend
from mypaas.composer.volume_copies import VolumeCopy
from mypaas.errors import BackendError, Conflict, InvalidSpec
from mypaas.manager.backup import replace, restore
from mypaas.settings import Settings

OLD = "old-platform"


class FakeCopies:
    def __init__(self, backend: FakeBackend, fail_on: str = "") -> None:
        self.backend, self.fail_on, self.content = backend, fail_on, {}  # type: dict[str, bytes]

    def import_volume(self, copy: VolumeCopy, data: Iterable[bytes], helper_image: str) -> None:
        if self.backend.volume_exists(copy.name):
            raise Conflict(f"the engine has a volume {copy.name} already", field="volume")
        self.backend.volumes[copy.name] = dict(copy.labels)
        if copy.name == self.fail_on:
            raise BackendError(f"restoring volume {copy.name}: no space left on device")
        self.content[copy.name] = b"".join(data)

    def pull_image(self, ref: str, keep_as: str) -> str:
        return "sha256:x"

    def close(self) -> None:
        pass


def _setup(tmp_path: Path, names: list[str]) -> tuple[Settings, FakeBackend, restore.Staged]:
    s = Settings(home=tmp_path / "home", registry_enabled=False)
    backend = FakeBackend()
    staged = restore.Staged({"apps": ["web"]}, tmp_path / "staged")
    (staged.root / "volumes").mkdir(parents=True)
    for name in names:
        backend.volumes[name] = resource_labels(OLD, "web")  # the old platform's own
        (staged.root / "volumes" / f"{name}.tar").write_bytes(b"archive data of " + name.encode())
        staged.volumes.append(VolumeCopy(name, resource_labels("new-platform", "web")))
    _schema(staged).close()
    return s, backend, staged


def _run(
    monkeypatch: pytest.MonkeyPatch, s: Settings, backend: FakeBackend, copies: FakeCopies, staged: Any
) -> replace.Progress:
    @contextlib.contextmanager
    def offline(_s: Settings) -> Iterator[tuple[Any, Any, str]]:
        yield backend, copies, "helper"

    monkeypatch.setattr(restore, "offline_engine", offline)
    progress = replace.Progress()
    with pytest.raises((Conflict, BackendError, InvalidSpec)) as caught:
        cli_backup._put_in_place(s, staged, OLD, ["web"], progress)
    assert "\n" not in str(caught.value)
    return progress


def test_a_same_named_volume_of_something_else_is_refused_before_any_volume_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, backend, staged = _setup(tmp_path, ["mypaas_web_db"])
    backend.volumes["mypaas_web_data"] = {}  # not the platform's: no label
    staged.volumes.append(VolumeCopy("mypaas_web_data", resource_labels("new-platform", "web")))
    (staged.root / "volumes" / "mypaas_web_data.tar").write_bytes(b"x")

    progress = _run(monkeypatch, s, backend, FakeCopies(backend), staged)

    assert backend.volumes["mypaas_web_db"] == resource_labels(OLD, "web")  # the old one is still there
    assert progress.damage() == "" and not progress.containers_removed


def test_a_failure_midway_names_the_replaced_volumes_and_leaves_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, backend, staged = _setup(tmp_path, ["mypaas_web_a", "mypaas_web_b", "mypaas_web_c"])
    copies = FakeCopies(backend, fail_on="mypaas_web_b")

    progress = _run(monkeypatch, s, backend, copies, staged)

    assert copies.content == {"mypaas_web_a": b"archive data of mypaas_web_a"}
    assert backend.volumes["mypaas_web_c"] == resource_labels(OLD, "web")  # not reached: as it was
    assert progress.damage() == (
        "volume(s) mypaas_web_a already hold the archive's data; "
        "volume mypaas_web_b was removed and is incomplete"
    )


def _schema(staged: restore.Staged) -> sqlite3.Connection:
    (staged.root / "state.db").unlink(missing_ok=True)
    db = sqlite3.connect(staged.root / "state.db")
    db.executescript(
        "CREATE TABLE apps (id INTEGER, name TEXT, target_version INTEGER, current_version INTEGER);"
        "CREATE TABLE releases (app_id INTEGER, version INTEGER, images TEXT);"
        "INSERT INTO apps VALUES (1, 'web', 2, 2);"
    )
    return db


def _with_release(staged: restore.Staged, ref: str) -> None:
    db = _schema(staged)
    db.execute("INSERT INTO releases VALUES (1, 2, ?)", (json.dumps({"web": ref}),))
    db.commit()
    db.close()


def _manifest(config: str, layer: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": config},
            "layers": [{"digest": layer}],
        }
    )


def _blob(root: Path, data: bytes) -> str:
    hexa = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / hexa[:2] / hexa / "data"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return f"sha256:{hexa}"


def test_an_image_missing_from_the_registry_data_is_refused_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, backend, staged = _setup(tmp_path, ["mypaas_web_db"])
    root = staged.root / "registry" / "data" / "docker" / "registry" / "v2"
    layer = _blob(root, b"a layer")
    manifest = _manifest("sha256:" + "0" * 64, layer)
    digest = _blob(root, manifest.encode())  # its config blob is missing
    link = root / "repositories" / "web/web" / "_manifests" / "revisions" / "sha256" / digest[7:] / "link"
    link.parent.mkdir(parents=True)
    link.write_text(digest)
    _with_release(staged, f"registry:5000/web/web@{digest}")

    with pytest.raises(InvalidSpec, match="registry data lacks the image of web/web"):
        replace.check_images(staged)
    progress = _run(monkeypatch, s, backend, FakeCopies(backend), staged)
    assert backend.volumes["mypaas_web_db"] == resource_labels(OLD, "web")
    assert progress.damage() == ""

    # an image config as the engine writes it: its own "config" key holds Env/Cmd, no descriptor
    config = json.dumps({"architecture": "amd64", "config": {"Cmd": ["httpd"]}, "rootfs": {}}).encode()
    manifest = _manifest(_blob(root, config), layer)
    digest = _blob(root, manifest.encode())
    link = root / "repositories" / "web/web" / "_manifests" / "revisions" / "sha256" / digest[7:] / "link"
    link.parent.mkdir(parents=True)
    link.write_text(digest)
    _with_release(staged, f"registry:5000/web/web@{digest}")
    replace.check_images(staged)  # whole: accepted


class FakeSystemd:
    def __init__(self, manages: bool = True, on_stop: Any = None) -> None:
        self.calls: list[str] = []
        self._manages, self._on_stop = manages, on_stop

    def manages(self, _settings: Settings) -> bool:
        return self._manages

    def stop(self) -> bool:
        self.calls.append("stop")
        if self._on_stop:
            self._on_stop()
        return True

    def start(self) -> None:
        self.calls.append("start")


def _manager(s: Settings) -> Any:
    """A process standing for the manager, its pid in the pid file, reaped by a thread once it ends."""
    import subprocess
    import threading

    proc = subprocess.Popen(["sleep", "30"])
    threading.Thread(target=proc.wait, daemon=True).start()
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / "manager.pid").write_text(str(proc.pid))
    return proc


def test_restore_stops_and_starts_the_manager_through_its_systemd_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mypaas.cli import client as client_module
    from mypaas.cli import daemon, units
    from mypaas.cli.main import app as cli_app

    home = tmp_path / "home"
    monkeypatch.setenv("MYPAAS_HOME", str(home))
    client_module.settings.cache_clear()
    systemd = FakeSystemd()
    started: list[Any] = []
    monkeypatch.setattr(units, "Systemd", lambda: systemd)
    monkeypatch.setattr(daemon, "stop_manager", lambda s: pytest.fail("stopped by pid under systemd"))
    monkeypatch.setattr(daemon, "start_manager", lambda s, sd=None: started.append(sd) or True)
    monkeypatch.setattr(daemon, "stop_router", lambda s: None)
    monkeypatch.setattr(restore, "stop_registries", lambda s: None)
    monkeypatch.setattr(restore, "stage", lambda *a: restore.Staged({"apps": []}, tmp_path))
    monkeypatch.setattr(cli_backup, "_put_in_place", lambda *a: None)
    archive, passfile = tmp_path / "a.tar", tmp_path / "pass"
    archive.write_bytes(b"")
    passfile.write_text("x" * 20)

    result = CliRunner().invoke(cli_app, ["restore", str(archive), "--passphrase-file", str(passfile)])

    client_module.settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert systemd.calls == ["stop"]
    assert started == [systemd]


def test_the_manager_is_gone_before_the_engine_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mypaas.cli import daemon

    s = Settings(home=tmp_path / "home")
    proc = _manager(s)
    systemd = FakeSystemd(on_stop=proc.terminate)
    monkeypatch.setattr(daemon, "stop_manager", lambda _s: pytest.fail("stopped by pid under systemd"))
    assert daemon.halt_manager(s, systemd) is True
    assert proc.poll() is not None

    stubborn = _manager(s)  # the unit stopped, but the process is still there
    try:
        with pytest.raises(BackendError, match=rf"^the manager \(pid {stubborn.pid}\) did not stop;[^\n]*$"):
            daemon.halt_manager(s, FakeSystemd(), wait_s=0.3)
    finally:
        stubborn.kill()


def test_a_manager_that_exited_but_was_not_reaped_counts_as_stopped(tmp_path: Path) -> None:
    import subprocess

    from mypaas.cli import daemon

    s = Settings(home=tmp_path / "home")
    proc = subprocess.Popen(["sleep", "30"])  # never waited for until the end: a zombie once killed
    s.run_dir.mkdir(parents=True, exist_ok=True)
    (s.run_dir / "manager.pid").write_text(str(proc.pid))
    try:
        proc.send_signal(9)
        _wait_for_zombie(proc.pid)
        assert daemon.halt_manager(s, FakeSystemd(manages=False), wait_s=2) is True
    finally:
        proc.wait()


def _wait_for_zombie(pid: int, timeout_s: float = 10.0) -> None:
    """Until the kernel shows ``pid`` as exited but not reaped (state Z in /proc/PID/stat)."""
    import time

    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, f"process {pid} did not become a zombie"
        time.sleep(0.005)
