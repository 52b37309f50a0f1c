"""The platform at boot: the systemd unit that runs the manager (which starts and adopts the router and
the registry), installed and enabled by `mypaas up --boot` where systemd runs; elsewhere, the one line
that says what to add to the machine's init system."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mypaas.errors import BackendError
from mypaas.settings import Settings

UNIT = "mypaas.service"
HEADER = "# Made by `mypaas up --boot` (`mypaas manager unit` prints it): the next one rewrites this file.\n"


def _quoted(value: str, *, exec_line: bool = False) -> str:
    """A word of a unit file in double quotes: C escapes, ``%`` specifiers (and ``$`` in Exec lines)
    doubled, so that systemd reads back exactly ``value``."""
    if "\n" in value or "\0" in value:
        raise BackendError(f"cannot write {value!r} into a systemd unit (a newline or NUL)")
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if exec_line:
        text = text.replace("$", "$$")
    return f'"{text}"'


def environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The settings given as MYPAAS_* variables to `mypaas up`, for the manager at boot too (the data
    folder always; the rest of the settings live in its settings.yml)."""
    names = {f"MYPAAS_{name.upper()}" for name in Settings.model_fields} - {"MYPAAS_HOME"}
    env = {"MYPAAS_HOME": str(settings.home)}
    env.update({key: value for key, value in sorted(environ.items()) if key.upper() in names})
    return env


def render(settings: Settings, python: str, environ: Mapping[str, str]) -> str:
    """The manager's unit: in the foreground (Type=exec), after the engine, restarted when it fails.

    KillMode=process: the router and the registry are detached helpers the manager adopts again when
    it restarts, so a manager restart (or a crash) keeps the apps reachable; `mypaas down` stops them.
    """
    env = "\n".join(f"Environment={_quoted(f'{k}={v}')}" for k, v in environment(settings, environ).items())
    argv = " ".join(_quoted(word, exec_line=True) for word in (python, "-m", "mypaas.cli.main"))
    log = settings.log_dir / "manager.log"
    return (
        HEADER + "[Unit]\n"
        "Description=MyPaas manager (API, reconcile loop; it runs the router and the registry)\n"
        "After=network-online.target docker.service\n"
        "Wants=network-online.target docker.service\n"
        "StartLimitIntervalSec=0\n"
        "\n"
        "[Service]\n"
        "Type=exec\n"
        f"{env}\n"
        f"ExecStart={argv} manager run\n"
        "KillMode=process\n"
        "Restart=on-failure\n"
        "RestartSec=3\n"
        "TimeoutStopSec=30\n"
        f"StandardOutput=append:{str(log).replace('%', '%%')}\n"
        "StandardError=inherit\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


@dataclass
class Systemd:
    """systemd on this machine, through ``systemctl`` (paths injectable for the tests)."""

    unit_dir: Path = Path("/etc/systemd/system")
    running_marker: Path = Path("/run/systemd/system")  # exists once systemd is PID 1 (sd_booted)
    systemctl: Sequence[str] = ("systemctl",)
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / UNIT

    def runs(self) -> bool:
        return self.running_marker.is_dir()

    def manages(self, settings: Settings) -> bool:
        """Is the installed unit the one of this data folder (so systemd starts and stops it)?"""
        if not self.runs():
            return False
        try:
            text = self.unit_path.read_text()
        except OSError:
            return False
        return f"Environment={_quoted(f'MYPAAS_HOME={settings.home}')}\n" in text

    def install(self, text: str) -> bool:
        """Write the unit (when it changed) and enable it; True when the file changed."""
        try:
            changed = self.unit_path.read_text() != text
        except OSError:
            changed = True
        if changed:
            self.unit_dir.mkdir(parents=True, exist_ok=True)
            self.unit_path.write_text(text)
            self.unit_path.chmod(0o644)
            self._systemctl("daemon-reload")
        self._systemctl("enable", "--quiet", UNIT)
        return changed

    def start(self) -> None:
        self._systemctl("start", UNIT)

    def stop(self) -> bool:
        """Stop the unit if it runs; True when it did."""
        active = subprocess.run([*self.systemctl, "is-active", "--quiet", UNIT], check=False)
        if active.returncode != 0:
            return False
        self._systemctl("stop", UNIT)
        return True

    def _systemctl(self, *args: str) -> None:
        try:
            proc = subprocess.run([*self.systemctl, *args], capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BackendError(f"systemctl {' '.join(args)}: {exc}") from exc
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout).strip().splitlines()
            raise BackendError(f"systemctl {' '.join(args)} failed: {why[-1] if why else proc.returncode}")


def at_boot(settings: Settings, systemd: Systemd, environ: Mapping[str, str] | None = None) -> str:
    """Make the platform start at boot where systemd runs; answer the one line that says how it starts."""
    env = os.environ if environ is None else environ
    if not systemd.runs():
        return (
            "at boot: no systemd here, so nothing starts MyPaas after a reboot: add "
            f"`{up_command(settings, env)}` to this machine's init system, after dockerd "
            "(/etc/rc.local, an @reboot crontab line, your supervisor)"
        )
    if not systemd.is_root:
        return (
            f"at boot: nothing starts MyPaas: installing {UNIT} needs root (run `mypaas up --boot` as root)"
        )
    systemd.install(render(settings, sys.executable, env))
    return f"at boot: systemd starts {UNIT} (enabled; {systemd.unit_path})"


def up_command(settings: Settings, environ: Mapping[str, str]) -> str:
    """The shell command that starts this platform: its settings' variables, and this venv's CLI."""
    cli = Path(sys.executable).with_name("mypaas")
    words = [str(cli)] if cli.exists() else [sys.executable, "-m", "mypaas.cli.main"]
    env = [f"{key}={shlex.quote(value)}" for key, value in environment(settings, environ).items()]
    return " ".join([*env, *(shlex.quote(word) for word in words), "up"])
