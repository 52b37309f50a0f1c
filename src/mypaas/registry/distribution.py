"""Running CNCF Distribution (``docker-registry``): its config rendered by MyPaas, storage in the
data folder, deletes enabled, token auth against the manager; started, health-checked and restarted
like the router. The same class runs the pull-through mirror (``proxy.remoteurl``)."""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from mypaas import process
from mypaas.errors import BackendError

PROGRAM = "docker-registry"
PID_FILE = "registry.pid"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TokenAuth:
    realm: str  # the manager's token endpoint
    service: str
    issuer: str
    cert: Path


@dataclass(frozen=True)
class Tls:
    """TLS for a registry listening beyond loopback: its certificate and key, the CA that signed them
    and, when only clients with a certificate of that CA may call (the mirror), the manager's own."""

    cert: Path
    key: Path
    ca: Path
    client: tuple[Path, Path] | None = None  # (cert, key): client certificates required

    def context(self) -> ssl.SSLContext:
        """What the manager's own calls verify the registry with (and show it, with ``client``)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.client is not None:
            context.load_cert_chain(str(self.client[0]), str(self.client[1]))
        return context


def render(
    *,
    addr: str,
    storage: Path,
    secret: str,
    auth: TokenAuth | None,
    readonly: bool = False,
    proxy_url: str | None = None,
    tls: Tls | None = None,
) -> dict[str, Any]:
    """Distribution's config as a dict (written as YAML)."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {
                "uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
                "readonly": {"enabled": readonly},
            },
        },
        "http": {"addr": addr, "secret": secret, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    if auth is not None:
        config["auth"] = {
            "token": {
                "realm": auth.realm,
                "service": auth.service,
                "issuer": auth.issuer,
                "rootcertbundle": str(auth.cert),
            }
        }
    if proxy_url:
        config["proxy"] = {"remoteurl": proxy_url}
    if tls is not None:
        config["http"]["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
        if tls.client is not None:
            config["http"]["tls"]["clientcas"] = [str(tls.ca)]
    return config


def stop_in(folder: Path) -> bool:
    """Stop the registry whose folder is ``folder``; True when one was running."""
    return process.terminate(folder / PID_FILE, PROGRAM)


class Distribution:
    """One ``docker-registry serve`` process with its folder: config.yml, data/, pid and log."""

    def __init__(
        self,
        *,
        name: str,
        addr: str,
        folder: Path,
        log_path: Path,
        auth: TokenAuth | None,
        listen: str | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.name = name
        self.addr = addr  # where this machine reaches it
        self.listen = listen or addr  # where it listens (all addresses when a cluster's hosts pull)
        self.folder = folder
        self.storage = folder / "data"
        self.config_path = folder / "config.yml"
        self.pid_path = folder / PID_FILE
        self.log_path = log_path
        self.auth = auth
        self.proxy_url: str | None = None
        self.tls = tls
        self._http = httpx.Client(
            timeout=httpx.Timeout(3.0, connect=1.0), trust_env=False, verify=self.verify()
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.addr}"

    def verify(self) -> ssl.SSLContext | bool:
        """How a client of this machine checks the registry's certificate."""
        return self.tls.context() if self.tls is not None else True

    def _secret(self) -> str:
        path = self.folder / "http-secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(24))
        return path.read_text().strip()

    def write_config(self, *, readonly: bool = False) -> None:
        self.config_path.write_text(self._config(readonly=readonly))

    def _config(self, *, readonly: bool = False) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        config = render(
            addr=self.listen,
            storage=self.storage,
            secret=self._secret(),
            auth=self.auth,
            readonly=readonly,
            proxy_url=self.proxy_url,
            tls=self.tls,
        )
        return yaml.safe_dump(config, sort_keys=False)

    def healthy(self) -> bool:
        """The API answers /v2/ (401 when token auth is on is an answer)."""
        try:
            return self._http.get(f"{self.url}/v2/").status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        pid = process.read_pid(self.pid_path)
        return pid is not None and process.is_program(pid, PROGRAM)

    def ensure_running(self, *, readonly: bool = False) -> None:
        """Adopt the registry that answers, or (re)write the config and start one."""
        if self.healthy() and self.running() and self._current(readonly):
            return
        self.stop()
        self.write_config(readonly=readonly)
        proc = process.spawn(
            [PROGRAM, "serve", str(self.config_path)],
            log_path=self.log_path,
            pid_path=self.pid_path,
            cwd=self.folder,
            what=self.name,
        )
        self._wait_started(proc)

    def _current(self, readonly: bool) -> bool:
        """Is the running one's config what it should be now (the cluster address may have changed)?"""
        try:
            return self.config_path.read_text() == self._config(readonly=readonly)
        except OSError:
            return False

    def _wait_started(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.healthy():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        tail = process.tail(self.log_path)
        raise BackendError(
            f"{self.name}: did not start on {self.addr}; last lines of {self.log_path}:\n{tail}"
        )

    def stop(self) -> None:
        stop_in(self.folder)

    def restart(self, *, readonly: bool = False) -> None:
        self.stop()
        self.ensure_running(readonly=readonly)

    def garbage_collect(self) -> str:
        """Run Distribution's collector on the storage (the registry must be read-only or stopped)."""
        argv = [PROGRAM, "garbage-collect", "--delete-untagged", str(self.config_path)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"{self.name}: garbage-collect failed: {exc}") from exc
        if done.returncode != 0:
            raise BackendError(
                f"{self.name}: garbage-collect failed: {(done.stderr or done.stdout).strip()[-500:]}"
            )
        return done.stdout

    def remove_empty_repositories(self) -> list[str]:
        """Remove the repositories left with no tag (the registry must be read-only or stopped): the
        catalog lists a repository as long as its folder is there. Answers their names."""
        root = self.storage / "docker" / "registry" / "v2" / "repositories"
        removed = []
        for manifests in sorted(root.glob("**/_manifests")) if root.is_dir() else []:
            repo = manifests.parent
            tags = manifests / "tags"
            if tags.is_dir() and any(tags.iterdir()):
                continue
            for part in ("_manifests", "_layers", "_uploads"):
                shutil.rmtree(repo / part, ignore_errors=True)
            removed.append(repo.relative_to(root).as_posix())
            folder = repo
            while folder != root and not any(folder.iterdir()):  # a/b's folder a may hold repo a/c
                folder.rmdir()
                folder = folder.parent
        return removed

    def disk_usage(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.storage):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue
        return total

    def close(self) -> None:
        self._http.close()
