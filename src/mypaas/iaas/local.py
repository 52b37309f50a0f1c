"""This machine as a host: the Docker engine's own settings (``/etc/docker/daemon.json``), changed
in place and applied with a reload, for what the platform needs of the engine (registry mirrors)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from mypaas.errors import BackendError

DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PID = Path("/var/run/docker.pid")


class LocalEngineConfig:
    """Reads and edits daemon.json, keeping every key MyPaas does not own as it was."""

    def __init__(self, path: Path = DAEMON_JSON, pid_path: Path = DOCKER_PID) -> None:
        self.path = path
        self.pid_path = pid_path

    def read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self.path} is not valid JSON ({exc.msg}); fix it by hand first") from exc
        if not isinstance(data, dict):
            raise BackendError(f"{self.path} must hold a JSON object")
        return data

    def registry_mirrors(self) -> list[str]:
        return [str(m) for m in self.read().get("registry-mirrors", [])]

    def set_registry_mirrors(self, mirrors: list[str]) -> bool:
        """Make the engine use exactly ``mirrors``; return True if anything changed (and reloaded)."""
        data = self.read()
        if data.get("registry-mirrors", []) == mirrors and "registry-mirrors" in data:
            return False
        data["registry-mirrors"] = mirrors  # an empty list, not a missing key: a reload then clears it
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.mypaas-tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)
        self.reload()
        return True

    def reload(self) -> None:
        """SIGHUP makes dockerd re-read its reloadable settings (registry-mirrors is one)."""
        try:
            pid = int(self.pid_path.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot reload the Docker engine (pid file {self.pid_path}): {exc}") from exc
        with contextlib.suppress(OSError):
            time.sleep(0.3)  # dockerd applies the reload asynchronously; give it a moment
