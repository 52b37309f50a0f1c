"""The manager's systemd unit: systemd's own checker accepts it (and refuses a broken one), values are
quoted as systemd reads them, and `up --boot` installs and enables it only where systemd runs, as root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mypaas.cli.units import UNIT, Systemd, at_boot, render
from mypaas.settings import Settings


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (scripts/install.sh --test installs Debian's systemd)"
    # it runs without systemd as PID 1: it loads the unit file and checks each setting and the command
    return subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False)


def test_systemd_accepts_the_manager_unit(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "my home %x")
    environ = {"MYPAAS_API_PORT": "8123", "MYPAAS_BASE_DOMAIN": 'a "b" $c', "MYPAAS_URL": "x", "PATH": "/"}
    unit = tmp_path / UNIT
    unit.write_text(render(settings, sys.executable, environ))

    checked = verify(unit)

    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked
    text = unit.read_text()
    assert 'Environment="MYPAAS_HOME=' + str(tmp_path) + '/my home %%x"\n' in text
    assert 'Environment="MYPAAS_API_PORT=8123"\n' in text
    assert 'Environment="MYPAAS_BASE_DOMAIN=a \\"b\\" $c"\n' in text
    assert "MYPAAS_URL" not in text and "PATH" not in text  # a client's variable, not a setting
    for line in ("Type=exec", "Restart=on-failure", "KillMode=process", "WantedBy=multi-user.target"):
        assert f"\n{line}\n" in text
    assert "After=network-online.target docker.service\nWants=network-online.target docker.service\n" in text
    assert f'ExecStart="{sys.executable}" "-m" "mypaas.cli.main" manager run\n' in text


def test_the_checker_would_see_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / UNIT
    unit.write_text(render(Settings(home=tmp_path), str(tmp_path / "no-python"), {}))
    checked = verify(unit)
    assert checked.returncode != 0 and "no-python" in checked.stderr, checked
    unit.write_text(render(Settings(home=tmp_path), sys.executable, {}).replace("Type=exec", "Type=exce"))
    assert "Failed to parse service type" in verify(unit).stderr


def fake_systemd(tmp_path: Path, *, running: bool = True, root: bool = True) -> tuple[Systemd, Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != is-active ]\n')
    script.chmod(0o755)
    marker = tmp_path / "run-systemd"
    if running:
        marker.mkdir()
    systemd = Systemd(
        unit_dir=tmp_path / "units", running_marker=marker, systemctl=[str(script)], is_root=root
    )
    return systemd, calls


def test_up_boot_installs_and_enables_the_unit_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    systemd, calls = fake_systemd(tmp_path)

    line = at_boot(settings, systemd, {})

    assert line == f"at boot: systemd starts {UNIT} (enabled; {tmp_path}/units/{UNIT})"
    assert systemd.unit_path.read_text() == render(settings, sys.executable, {})
    assert oct(systemd.unit_path.stat().st_mode & 0o777) == "0o644"
    assert calls.read_text().splitlines() == ["daemon-reload", f"enable --quiet {UNIT}"]
    at_boot(settings, systemd, {})  # unchanged: no reload
    assert calls.read_text().splitlines()[2:] == [f"enable --quiet {UNIT}"]
    assert systemd.manages(settings)
    assert not systemd.manages(Settings(home=tmp_path / "another"))
    assert not systemd.stop()  # the fake says it is not active


def test_without_systemd_up_boot_says_what_to_add_to_the_init_system(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    systemd, calls = fake_systemd(tmp_path, running=False)

    line = at_boot(settings, systemd, {"MYPAAS_API_PORT": "8123"})

    assert line.startswith("at boot: no systemd here, so nothing starts MyPaas after a reboot: add `")
    assert f"MYPAAS_HOME={tmp_path}/home MYPAAS_API_PORT=8123 " in line and " up` to this machine's" in line
    assert not calls.exists() and not systemd.unit_path.exists() and not systemd.manages(settings)


def test_installing_the_unit_needs_root(tmp_path: Path) -> None:
    systemd, calls = fake_systemd(tmp_path, root=False)
    line = at_boot(Settings(home=tmp_path), systemd, {})
    assert (
        line
        == f"at boot: nothing starts MyPaas: installing {UNIT} needs root (run `mypaas up --boot` as root)"
    )
    assert not calls.exists()


def test_a_value_systemd_cannot_hold_is_refused(tmp_path: Path) -> None:
    from mypaas.errors import BackendError

    with pytest.raises(BackendError, match="newline"):
        render(Settings(home=tmp_path), sys.executable, {"MYPAAS_BASE_DOMAIN": "a\nb"})
