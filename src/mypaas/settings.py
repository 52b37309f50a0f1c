"""Platform settings: one YAML file in the data folder, overridden by MYPAAS_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mypaas.clientconf import (
    DEFAULT_API_HOST,
    DEFAULT_API_PORT,
    TOKEN_FILE,
    default_home,
    is_loopback,
    read_settings_file,
)


class _YamlFile(PydanticBaseSettingsSource):
    """Reads ``$MYPAAS_HOME/settings.yml`` (missing file = no settings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return read_settings_file(default_home())


class Settings(BaseSettings):
    """Every knob of the platform, with the default a single host needs."""

    model_config = SettingsConfigDict(env_prefix="MYPAAS_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="data folder: state, tokens, logs")
    api_host: str = DEFAULT_API_HOST
    api_port: int = DEFAULT_API_PORT
    router_port: int = 80
    # which program routes: "caddy" (one Caddy: routes, TLS, a JSON access log) or "haproxy" (HAProxy
    # routes and counts per app; the Caddy behind it only terminates TLS and gets the certificates)
    router: Literal["caddy", "haproxy"] = "caddy"
    # Caddy's admin API: "" = a unix socket in $MYPAAS_HOME/router (owner-only); "host:port" = TCP
    router_admin: str = ""
    # HTTPS for apps (0: plain HTTP only): certificates from the ACME CA for custom domains, from Caddy's
    # internal CA for the base domain's hosts when it has no public DNS (see router/https.py)
    router_https_port: int = 443
    acme_ca: str = ""  # an ACME directory URL; "" = Let's Encrypt
    acme_ca_root: str = ""  # a PEM file with the ACME server's root, when it is not a public one
    acme_email: str = ""  # given to the ACME CA (expiry notices)
    base_domain: str = "localhost"
    docker_url: str = "unix:///var/run/docker.sock"
    deploy_timeout_s: float = 60.0
    min_running_s: float = 2.0
    drain_s: float = 1.0
    stop_grace_s: float = 10.0
    resync_s: float = 10.0
    registry_addr: str = "127.0.0.1:5000"
    # many hosts (Swarm): this machine's address as the hosts reach it. When set, the registry and the
    # API also listen on it (hosts pull images and fetch registry tokens there) and Swarm advertises it.
    cluster_addr: str = ""
    # TLS: once an endpoint listens beyond loopback (cluster_addr set, or api_host not a loopback
    # address) it serves TLS with a certificate of the platform's CA ($MYPAAS_HOME/tls, see
    # manager/pki.py). More names/addresses the server certificate covers (e.g. a public DNS name):
    tls_names: list[str] = Field(default_factory=list)
    swarm_restart_delay_s: float = 1.0  # a failed task is restarted (or moved) after this long
    swarm_update_delay_s: float = 2.0  # between the tasks of a rolling update
    # hosts short of memory or disk (% used) take no new instances until they recover
    host_mem_pressure_pct: float = 95.0
    host_disk_pressure_pct: float = 95.0
    host_check_s: float = 30.0
    # a host still short of memory this long after it was paused has one instance moved off, and
    # another after each such wait (0 never: hosts are only paused)
    host_evict_after_s: float = 60.0
    registry_keep_releases: int = 10
    registry_enabled: bool = True
    mirror_addr: str = "127.0.0.1:5001"
    # rootfs archives (image import/snapshot/base): refused past these limits, see build/archive.py
    archive_max_bytes: int = 20 * 2**30  # uncompressed, all entries together
    archive_max_file_bytes: int = 8 * 2**30
    archive_max_entries: int = 1_000_000
    archive_max_ratio: int = 200  # uncompressed : compressed, checked once past a few MB
    # request bodies, refused (413) past these before they are parsed; an import's body: archive_max_bytes
    body_max_json: int = Field(default=2**20, ge=1024)  # any JSON route
    body_max_deploy: int = Field(default=64 * 2**20, ge=1024)  # a deploy's JSON (compose and project files)
    body_max_upload: int = Field(default=512 * 2**20, ge=1024)  # a deploy's upload (its build contexts)
    debian_mirror: str = "http://deb.debian.org/debian"  # for `mypaas image base debian:SUITE`
    ubuntu_mirror: str = "http://archive.ubuntu.com/ubuntu"
    # the key that encrypts secrets and config vars at rest; keep it apart from state.db (another disk,
    # a mounted secret) so a copy of the database alone reveals nothing. Default: $MYPAAS_HOME/secrets.key
    secrets_key_file: Path | None = None
    # container hardening, written into each new release's spec (spec/hardening.py); 0: none. A service
    # sets its own pids_limit / memory limit; no-new-privileges:false only with allow_new_privileges
    default_pids_limit: int = Field(default=1024, ge=0)
    default_memory: int = Field(default=2**30, ge=0)  # bytes
    no_new_privileges: bool = True
    allow_new_privileges: bool = False
    allow_host_mounts: bool = False
    allow_privileged: bool = False
    allow_docker_socket: bool = False  # the Docker socket as a mount: root on the host, its own setting
    # monitor: events and metrics (see monitor/)
    events_keep: int = 1000  # newest events kept per app (and for the platform)
    metrics_enabled: bool = True
    metrics_interval_s: float = 5.0
    metrics_raw_keep_s: float = 3600.0  # raw points; then one-minute averages
    metrics_minute_keep_s: float = 7 * 86400.0
    # monitor: autoscaling and alerts (see monitor/autoscale.py, monitor/alerts.py)
    monitor_eval_s: float = 5.0  # how often policies and alert rules are evaluated
    autoscale_window_s: float = 30.0  # CPU is averaged over this long
    webhook_timeout_s: float = 3.0
    webhook_retries: int = 3  # then the notification is dropped (and logged)
    # builds (see build/fetches.py, composer/build_network.py): a Dockerfile's `ADD <url>` may fetch from
    # private addresses (10/8, 192.168/16 ...; never loopback, link-local or the platform's ports)
    build_allow_private_urls: bool = False
    # the network RUN steps of builds use, cut off from this machine and private addresses ("": the
    # engine's default bridge, as before)
    build_network: str = "mypaas-build"
    # deploys from a repository (`deploy --git`, `git watch`): a clone larger than this is refused
    git_clone_max_bytes: int = Field(default=512 * 2**20, ge=2**20)
    # networks made ahead for new apps, so a new app's first deploy does not wait for one (0: none)
    network_pool: int = Field(default=2, ge=0, le=32)
    # the audit log (who changed what, denied calls, failed logins): entries older than this are deleted
    # (0: kept for ever)
    audit_retention_days: float = Field(default=90.0, ge=0)
    # `git push` deploys (manager/git): the SSH endpoint's port (0: off), the address it listens on ("":
    # every address), and the largest push it receives, in MB (0: no limit)
    git_ssh_port: int = Field(default=2222, ge=0, le=65535)
    git_ssh_host: str = ""
    git_max_push_mb: int = Field(default=500, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFile(settings_cls))

    @property
    def api_url(self) -> str:
        scheme = "http" if is_loopback(self.api_host) else "https"
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host  # noqa: S104
        return f"{scheme}://{host}:{self.api_port}"

    @property
    def registry_port(self) -> int:
        return int(self.registry_addr.rsplit(":", 1)[1])

    @property
    def registry_public(self) -> str:
        """The registry's address in image references every host pulls."""
        return f"{self.cluster_addr}:{self.registry_port}" if self.cluster_addr else self.registry_addr

    @property
    def tls_listen(self) -> bool:
        """Whether an endpoint listens beyond loopback (then it serves TLS only)."""
        return bool(self.cluster_addr) or not is_loopback(self.api_host)

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def token_realm(self) -> str:
        if self.cluster_addr:
            return f"https://{self.cluster_addr}:{self.api_port}/api/v1/registry/token"
        scheme = "http" if is_loopback(self.api_host) else "https"
        return f"{scheme}://{self.api_host}:{self.api_port}/api/v1/registry/token"

    @property
    def router_dir(self) -> Path:
        return self.home / "router"

    @property
    def router_admin_address(self) -> str:
        """Where Caddy's admin API listens: ``unix//PATH`` (the default) or ``host:port``."""
        return self.router_admin or f"unix/{(self.router_dir / 'caddy-admin.sock').absolute()}"

    @property
    def db_path(self) -> Path:
        return self.home / "state.db"

    @property
    def secrets_key_path(self) -> Path:
        return self.secrets_key_file or self.home / "secrets.key"

    @property
    def token_path(self) -> Path:
        return self.home / TOKEN_FILE

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"
