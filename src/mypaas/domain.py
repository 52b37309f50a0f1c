"""Plain domain types shared by every box: app specs, releases, instances. No I/O here.

An app spec is backend-neutral: the docker and the swarm backends read the same one. States are enums
here, one definition each, compared as members (they are strings in the store and in JSON).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from mypaas.container_options import (
    LogSpec,
    NetworkOptions,
    RestartPolicy,
    Ulimit,
    UpdatePolicy,
)
from mypaas.errors import InvalidSpec
from mypaas.states import InstanceState

# An app or service name is one DNS label: it becomes a host name (APP.<base domain>) and a network alias.
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_DOMAIN = re.compile(
    r"^(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"
)
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PROJECT_FILES_PART = (
    "files:"  # a deploy's upload parts named so hold project files, the others build contexts
)
MAX_REPLICAS = 100


def check_name(value: str, field: str = "app") -> str:
    """Return ``value`` if it is a DNS label (lower case letters, digits, '-', at most 63), else raise."""
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise InvalidSpec(
            f"invalid {field} name {value!r}: use a DNS label (a-z, 0-9 and '-', 1-63 characters, "
            "starting and ending with a letter or digit)",
            field=field,
        )
    return value


def check_domain(value: str) -> str:
    domain = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain) or "." not in domain:
        raise InvalidSpec(
            f"invalid domain {value!r}: expected a host name such as www.example.com", field="domain"
        )
    return domain


def check_env_key(key: str, field: str = "config") -> str:
    if not ENV_KEY.fullmatch(key):
        raise InvalidSpec(f"invalid variable name {key!r}: use letters, digits and '_'", field=field)
    return key


# A secret's or config's name: a file name (it is the default target, /run/secrets/NAME).
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_SECRET_BYTES = 500 * 1024  # Swarm's limit for a secret; configs keep to it too


def check_secret_name(value: str, field: str = "secret") -> str:
    if not isinstance(value, str) or not SECRET_NAME.fullmatch(value):
        raise InvalidSpec(
            f"invalid secret name {value!r}: use letters, digits, '_', '.' and '-' (at most 128, "
            "starting with a letter or digit)",
            field=field,
        )
    return value


# A git branch name as `git check-ref-format --branch` takes it (at most 255 characters here).
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|/\.|\.lock(/|\Z)|[/.]\Z|^@\Z")
_HASHED = re.compile(r"-[0-9a-f]{8}\Z")


def check_branch(value: str, field: str = "preview") -> str:
    """Return ``value`` if git takes it as a branch name, else raise naming ``field``."""
    if not isinstance(value, str) or not value or len(value) > 255 or _BAD_BRANCH.search(value):
        raise InvalidSpec(
            f"invalid git branch name {value!r} (see `git check-ref-format --branch`)", field=field
        )
    return value


def preview_app_name(app: str, branch: str) -> str:
    """The preview app of ``app`` for ``branch``: ``APP-<branch slug>`` (lower case, every other
    character '-'), or, when that is not the branch itself or is too long, the slug shortened and an
    8-hex hash of app and branch added, so that two branches never share a name."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")
    name = f"{app}-{slug}"
    if slug == branch and len(name) <= 63 and not _HASHED.search(name):
        return name
    digest = hashlib.sha256(f"{app}\n{branch}".encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def port_from_image(exposed: tuple[int, ...], service: str) -> int | None:
    """The port to route when the user named none: the image's only exposed TCP port."""
    if len(exposed) > 1:
        ports = ", ".join(str(p) for p in exposed)
        raise InvalidSpec(
            f"the image of {service} exposes several ports ({ports}): choose the one to route with --port",
            field="port",
        )
    return exposed[0] if exposed else None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthCheck(_Frozen):
    """A container health check (the compose ``healthcheck`` key)."""

    test: list[str]  # ["CMD", ...] or ["CMD-SHELL", "..."]
    interval_s: float = 5.0
    timeout_s: float = 3.0
    retries: int = 3
    start_period_s: float = 0.0
    start_interval_s: float | None = None  # checks during the start period (Docker Engine 25+)

    @property
    def disabled(self) -> bool:
        """``[NONE]``: no check at all, not even the image's own."""
        return self.test == ["NONE"]


class ProbeSpec(_Frozen):
    """How the monitor checks a service's instances (compose ``x-mypaas-probe``): an HTTP request to
    ``path`` expecting ``status`` (any answer below 500 when unset), or a TCP connect to ``port``."""

    kind: str = "http"  # http | tcp
    path: str = "/"
    status: int | None = None
    port: int | None = None  # default: the routed port
    interval_s: float = 2.0
    timeout_s: float = 1.0
    retries: int = 2  # failures in a row before an instance counts as unhealthy


class PortSpec(_Frozen):
    container: int
    host: int | None = None  # published on the host (only with one replica)
    protocol: str = "tcp"  # tcp | udp
    host_ip: str | None = None  # published on this host address only (None: all of them)
    name: str | None = None
    app_protocol: str | None = None  # http, grpc, mysql...: a port named for something else is not routed

    @property
    def routable(self) -> bool:
        """Can the router send HTTP to it?"""
        return self.protocol == "tcp" and self.app_protocol in (None, "http")


class VolumeMount(_Frozen):
    # a named volume of the app (or an external one, by its engine name), a host path (admin setting
    # allow_host_mounts), or "" for an anonymous volume: one per instance, removed with it
    source: str
    target: str
    read_only: bool = False
    bind: bool = False  # True for a host path
    no_copy: bool = False  # a new volume is not filled from the image's files at its target
    propagation: str | None = None  # a host path's mount propagation (rprivate, shared, ...)
    consistency: str | None = None  # cached, delegated, consistent: Docker Desktop's, inert on Linux


class TmpfsMount(_Frozen):
    """A memory-backed folder (compose ``tmpfs``, or a ``type: tmpfs`` mount), one per instance."""

    target: str
    size: int | None = None  # bytes; None: the engine's default (half the host's memory)
    mode: int | None = None  # e.g. 0o1777
    read_only: bool = False


class ProjectFiles(_Frozen):
    """Files of the compose project a relative bind mount names (``./conf:/etc/app``): uploaded with the
    deploy and part of the release (a layer of the service's image, see build/project_files.py)."""

    source: str  # the path in the project, normalized: "nginx.conf", "html", "../shared", "."
    target: str
    read_only: bool = False
    create: bool = False  # bind.create_host_path: a missing source is uploaded as an empty folder
    digest: str = ""  # sha256 of the uploaded names, kinds, modes, owners and contents (set at deploy)
    count: int = 0  # files, folders and links uploaded
    size: int = 0  # bytes of file contents

    @property
    def shown(self) -> str:
        """The source as people write it: ./nginx.conf, ./ (the project folder), ../shared."""
        if self.source == ".":
            return "./"
        return self.source if self.source == ".." or self.source.startswith("../") else f"./{self.source}"

    @property
    def part(self) -> str:
        """The name of the deploy upload's part that holds these files (a gzipped tar of the source)."""
        return PROJECT_FILES_PART + self.source


class SecretMount(_Frozen):
    """A secret or config of the app as a read-only file in a service's instances (compose service
    ``secrets``/``configs``): secrets default to /run/secrets/NAME, configs to /NAME."""

    source: str  # the app's secret or config: its top-level compose name
    target: str  # an absolute path in the instance
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


class SecretSource(_Frozen):
    """A top-level compose secret or config: where its value comes from and, in a release, which value.

    ``kind`` is ``file`` (a file the CLI uploads with the deploy; ``name`` is its path as written),
    ``environment`` (a variable of the CLI user's shell or .env; ``name`` is the variable),
    ``content`` (a config's inline text) or ``external`` (``name`` is a secret set with
    ``mypaas secrets set``). A release holds the value's keyed digest, never the value: the manager
    moves an inline ``content`` into its encrypted store and clears it when it records the release."""

    kind: str
    name: str = ""
    content: str | None = None
    digest: str = ""


class BuildSpec(_Frozen):
    context: str  # the name of the uploaded build context
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    detect: bool = False  # no Dockerfile: detect Python, Node or a static site (build/source.py)


class ServiceSpec(_Frozen):
    name: str
    image: str | None = None  # reference as the user wrote it (or the tag MyPaas built)
    image_id: str | None = None  # content digest pinned by the release
    build: BuildSpec | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    expose: list[int] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    depends_on: dict[str, str] = Field(default_factory=dict)  # service -> condition
    healthcheck: HealthCheck | None = None
    replicas: int | None = None  # None: not declared (keep the current scale, 1 for a new service)
    cpus: float | None = None
    memory: int | None = None  # bytes
    reserve_cpus: float | None = None  # reservations: a host must have this much free to run one
    reserve_memory: int | None = None
    placement: list[str] = Field(default_factory=list)  # Swarm constraints: node.labels.zone==east
    restart: str = "unless-stopped"  # no | always | on-failure | unless-stopped
    labels: dict[str, str] = Field(default_factory=dict)
    networks: list[str] = Field(default_factory=list)  # empty: the app's default network
    privileged: bool = False  # only when the admin setting allow_privileged is on
    probe: ProbeSpec | None = None
    # -- container options: what the engine sets on each instance (compose: user, working_dir, ...) --
    aliases: list[str] = Field(default_factory=list)  # more names on each network (container_name, links...)
    network_options: dict[str, NetworkOptions] = Field(default_factory=dict)  # by network ("": default)
    network_mode: str | None = None  # host | none: not on the app's networks (docker backend)
    pid: str | None = None  # host
    ipc: str | None = None  # host | private | shareable
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    init: bool | None = None  # None: MyPaas's default (an init process reaps zombies, forwards signals)
    stop_signal: str | None = None
    stop_grace_s: float | None = None  # None: the platform's default
    ulimits: list[Ulimit] = Field(default_factory=list)
    shm_size: int | None = None  # bytes
    extra_hosts: list[str] = Field(default_factory=list)  # "name:address"
    logging: LogSpec | None = None  # None: json-file, 10 MB x 3
    stdin_open: bool = False
    tty: bool = False
    platform: str | None = None  # os/arch[/variant]: what the image and the hosts must be
    sysctls: dict[str, str] = Field(default_factory=dict)
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    mode: str = "replicated"  # global: one instance per host
    service_labels: dict[str, str] = Field(default_factory=dict)  # deploy.labels: the Swarm service's
    restart_policy: RestartPolicy | None = None
    update: UpdatePolicy | None = None
    security_opt: list[str] = Field(default_factory=list)  # no-new-privileges=true, ...: docker backend
    read_only: bool = False  # the root filesystem (volumes and tmpfs stay writable)
    dns: list[str] = Field(default_factory=list)  # resolver addresses
    dns_search: list[str] = Field(default_factory=list)
    dns_opt: list[str] = Field(default_factory=list)
    domainname: str | None = None  # docker backend only
    group_add: list[str] = Field(default_factory=list)  # more groups of the process (names or GIDs)
    pids_limit: int | None = None  # -1: unlimited
    cpu_shares: int | None = None  # docker backend only
    cpuset: str | None = None  # "0-3,5"; docker backend only
    oom_score_adj: int | None = None  # docker backend only
    mem_swappiness: int | None = None  # docker backend only
    oom_kill_disable: bool = False  # docker backend only
    # -- project files and volumes: files of the compose project, anonymous volumes, tmpfs --
    project_files: list[ProjectFiles] = Field(default_factory=list)  # in the image: image_id has them
    tmpfs: list[TmpfsMount] = Field(default_factory=list)
    # -- secrets and configs: mounted files whose values the platform keeps --
    secrets: list[SecretMount] = Field(default_factory=list)  # compose service-level secrets
    configs: list[SecretMount] = Field(default_factory=list)  # compose service-level configs

    @property
    def http_port(self) -> int | None:
        """The port the router sends HTTP to: the first TCP one of ``ports``, else of ``expose``."""
        routed = next((p.container for p in self.ports if p.routable), None)
        if routed is not None:
            return routed
        if self.expose:
            return self.expose[0]
        return None

    @property
    def published(self) -> list[int]:
        return [p.host for p in self.ports if p.host is not None]

    @property
    def stop_first(self) -> bool:
        """Must an old instance be gone before a new one starts (a host port is held once, or
        deploy.update_config says so)?"""
        ordered = self.update is not None and self.update.order == "stop-first"
        return bool(self.published) or ordered


class AppSpec(_Frozen):
    """What to run: services plus the app's named volumes and networks."""

    services: dict[str, ServiceSpec]
    volumes: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    secrets: dict[str, SecretSource] = Field(default_factory=dict)  # compose top-level secrets
    configs: dict[str, SecretSource] = Field(default_factory=dict)  # compose top-level configs
    # volumes of the platform the app mounts but does not own (compose ``external: true``), by their
    # engine names: they must exist at deploy time, and removing the app leaves them
    external_volumes: list[str] = Field(default_factory=list)

    @property
    def web(self) -> str | None:
        """The routed service: ``web`` if it has an HTTP port, else the first service that has one."""
        web = self.services.get("web")
        if web is not None and web.http_port:
            return "web"
        for name, svc in self.services.items():
            if svc.http_port:
                return name
        return None

    def start_order(self) -> list[str]:
        """Services ordered so that each comes after what it depends on."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in path:
                raise InvalidSpec(f"depends_on cycle: {' -> '.join((*path, name))}", field="depends_on")
            for dep in self.services[name].depends_on:
                visit(dep, (*path, name))
            seen.add(name)
            order.append(name)

        for name in self.services:
            visit(name, ())
        return order


class Instance(_Frozen):
    """One running replica as the backend reports it."""

    id: str
    name: str
    app: str
    service: str
    release: int
    generation: int = 0
    state: InstanceState
    address: str | None = None  # host:port the router can reach (None until it has an address)
    ip: str | None = None
    created: float = 0.0  # unix time
    started: float | None = None  # unix time, when known
    has_healthcheck: bool = False
    exit_code: int | None = None
    restarts: int = 0
    status_text: str = ""
    node: str | None = None  # the Swarm node running it (None on the docker backend)
    host: str | None = None  # that node's host name
    # a Swarm task of a routed service: its address (its node's, and the port Swarm published for it)
    # shows up after the task runs; until then it is not ready, as the router could not reach it
    routed: bool = False


@dataclass(frozen=True)
class ProcessInfo:
    """An instance's main process as the host sees it (for the monitor's file reads)."""

    pid: int  # 0 when it is not running
    restarts: int = 0
    oom_killed: bool = False
    exit_code: int | None = None


@dataclass(frozen=True)
class HealthResult:
    """One run of an instance's container health check, as the engine keeps it."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class InstanceReport:
    """Why an instance is not running well, as the engine tells it (for a failed rollout's message):
    how often its process exited (``exits``, restarts in place included) and with what code, its health
    check's last results, and the engine's own word (a Swarm task's error) when nothing else is known."""

    exits: int = 0
    exit_code: int | None = None
    health: tuple[HealthResult, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class EngineEvent:
    """One engine event about an instance: ``action`` is die, oom, start, restart, kill, ..."""

    instance_id: str
    action: str
    app: str = ""
    service: str = ""
    name: str = ""
    exit_code: int | None = None
    at: float = 0.0
