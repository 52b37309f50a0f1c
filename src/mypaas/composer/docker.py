"""The ``docker`` backend: instances are containers on one Docker engine, driven with the Docker SDK.

This is the only place (with its siblings in composer/) that imports ``docker``; its errors become
MyPaas errors here, in ``engine_errors`` (composer/errors.py).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import requests

from mypaas.composer import app_resources
from mypaas.composer.base import (
    LABEL_APP,
    LABEL_PLATFORM,
    Capabilities,
    ImageInfo,
    InstanceRequest,
    VolumeInfo,
)
from mypaas.composer.build_network import ensure_network
from mypaas.composer.containers import (
    container_instance,
    container_report,
    inspected_instance,
    volume_mounts,
)
from mypaas.composer.engine import (
    instance_labels,
    instance_networks,
    network_name,
    resource_labels,
    volume_name,
)
from mypaas.composer.engine_logs import EngineLogs
from mypaas.composer.errors import ENGINE_FAILURES, engine_errors, explain, tidy
from mypaas.composer.network_pool import NetworkPool
from mypaas.composer.options import (
    container_options,
    endpoint,
    exposed_ports,
    healthcheck,
    host_options,
    log_config,
    own_network,
    port_bindings,
    restart_policy,
)
from mypaas.composer.secret_files import HostFiles
from mypaas.domain import Instance, InstanceReport, ProcessInfo
from mypaas.errors import BackendError, BuildFailed, InvalidSpec, NotFound
from mypaas.uploads import Blob, open_blob

_NS = 1_000_000_000


def split_ref(ref: str) -> tuple[str, str]:
    """``host:5000/a/b:tag`` -> (``host:5000/a/b``, ``tag``); no tag means ``latest``."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


class DockerBackend(EngineLogs):
    """One Docker engine. Thread-safe: the SDK's client is shared by the reconcile loop and the API."""

    capabilities = Capabilities(multi_host=False, build=True, published_ports=True, healthchecks=True)

    def __init__(
        self,
        base_url: str = "unix:///var/run/docker.sock",
        timeout: float = 120,
        *,
        secret_files: Path | None = None,
        build_network: str = "",
        network_pool: int = 2,
    ) -> None:
        """``secret_files``: the folder of the instances' secrets and configs (the manager's own);
        ``build_network``: the network of builds' RUN steps, cut off from this machine (composer/
        build_network.py; "": the engine's default bridge); ``network_pool``: how many networks are kept
        made ahead for new apps (composer/network_pool.py; 0: each new app waits for its own)."""
        with engine_errors(f"cannot reach the Docker engine at {base_url}", as_error=BackendError):
            self._client = docker.DockerClient(base_url=base_url, version="auto", timeout=int(timeout))
        self._api = self._client.api
        self._files = HostFiles(secret_files) if secret_files is not None else None
        self.build_network = build_network
        self._pool = NetworkPool(self._api, network_pool)

    # -- engine ---------------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            return bool(self._api.ping())
        except Exception:  # any failure means "not reachable"
            return False

    def close(self) -> None:
        self._client.close()

    def host_port_free(self, port: int) -> bool:
        """The engine runs on this machine: the port is free when this machine can bind it."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))  # noqa: S104 - the question is whether anything holds it
            except OSError:
                return False
        return True

    # -- instances ------------------------------------------------------------------------------

    def list_instances(self, platform: str) -> list[Instance]:
        with engine_errors("listing containers"):
            rows = self._api.containers(all=True, filters={"label": [f"{LABEL_PLATFORM}={platform}"]})
        self._pool.observe(platform, rows)  # whose networks are whose; the first pass fills the pool
        return [container_instance(row) for row in rows]

    def create_instance(self, req: InstanceRequest) -> Instance:
        if not req.secret_files:
            return self._create_instance(req)
        with self._host_files().writing(req.app):
            return self._create_instance(req)

    def _create_instance(self, req: InstanceRequest) -> Instance:
        svc = req.service
        if not svc.image_id:
            raise BackendError(f"service {svc.name}: no image pinned")
        labels = instance_labels(req)
        default = self._pool.network_of(req.platform, req.app) if own_network(svc) else None
        networks = instance_networks(req, default)
        joins = list(zip(networks, req.networks or ("",), strict=True)) if default else []
        with engine_errors(f"creating {req.name}"):
            created = self._api.create_container(
                image=svc.image_id,
                name=req.name,
                command=svc.command,
                entrypoint=svc.entrypoint,
                environment=req.environment,
                labels=labels,
                ports=exposed_ports(svc),
                healthcheck=healthcheck(svc.healthcheck) if svc.healthcheck else None,
                host_config=self._host_config(req),
                networking_config=self._api.create_networking_config(
                    {net: self._api.create_endpoint_config(**endpoint(svc, name)) for net, name in joins[:1]}
                )
                if joins
                else None,
                **container_options(svc),
            )
        cid = created["Id"]
        with engine_errors(f"starting {req.name}"):
            try:
                for net, name in joins[1:]:
                    self._api.connect_container_to_network(cid, net, **endpoint(svc, name))
                self._api.start(cid)
                info = self._api.inspect_container(cid)
            except docker.errors.DockerException as exc:
                with contextlib.suppress(docker.errors.DockerException):
                    self._api.remove_container(cid, force=True)
                if default and default in explain(exc):  # removed by hand: the next pass takes another
                    self._pool.forget(req.platform, req.app)
                raise
        return inspected_instance(info, networks[0])

    def _host_config(self, req: InstanceRequest) -> Any:
        svc = req.service
        mounts = volume_mounts(req) + self._secret_mounts(req)
        return self._api.create_host_config(
            restart_policy=restart_policy(svc),
            port_bindings=port_bindings(svc) or None,
            mounts=mounts or None,
            mem_limit=svc.memory,
            nano_cpus=int(svc.cpus * _NS) if svc.cpus else None,
            log_config=log_config(svc),
            privileged=svc.privileged,
            init=True if svc.init is None else svc.init,
            **host_options(svc),
        )

    def _host_files(self) -> HostFiles:
        if self._files is None:
            raise BackendError("this backend has no folder for secrets and configs")
        return self._files

    def _secret_mounts(self, req: InstanceRequest) -> list[docker.types.Mount]:
        """The service's secrets and configs: files of the manager's, bind-mounted read-only."""
        if not req.secret_files:
            return []
        files = self._host_files()
        return [
            docker.types.Mount(
                target=f.target, source=str(files.write(req.app, f)), type="bind", read_only=True
            )
            for f in req.secret_files
        ]

    def remove_instance(self, instance_id: str, grace_s: float) -> None:
        app = self._app_with_files(instance_id)
        self._remove_container(instance_id, grace_s)
        if app is not None and self._files is not None:
            self._files.prune(app, lambda: self._mounted_sources(app))

    def _app_with_files(self, instance_id: str) -> str | None:
        """The app of a container, when the manager keeps secret files at all (else no need to ask)."""
        if self._files is None or not self._files.has_any():
            return None
        try:
            info = self._api.inspect_container(instance_id)
        except ENGINE_FAILURES:
            return None
        return ((info.get("Config") or {}).get("Labels") or {}).get(LABEL_APP) or None

    def _mounted_sources(self, app: str) -> set[str]:
        """What the containers of ``app`` (on every platform of this engine) bind-mount."""
        with engine_errors(f"listing the containers of {app}"):
            rows = self._api.containers(all=True, filters={"label": [f"{LABEL_APP}={app}"]})
        return {
            str(m.get("Source")) for row in rows for m in row.get("Mounts") or [] if m.get("Type") == "bind"
        }

    def _remove_container(self, instance_id: str, grace_s: float) -> None:
        with engine_errors(f"removing container {instance_id[:12]}"):
            try:
                self._api.stop(instance_id, timeout=self._grace(instance_id, grace_s))
            except docker.errors.NotFound:
                return
            except docker.errors.APIError:
                pass  # already stopping or dead: removal below settles it
            try:
                self._api.remove_container(instance_id, force=True, v=True)  # and its anonymous volumes
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "already in progress" not in explain(exc):
                    raise

    def _grace(self, instance_id: str, grace_s: float) -> int:
        """How long a container may take to stop: its service's stop_grace_period, else ``grace_s``."""
        try:
            timeout = (self._api.inspect_container(instance_id).get("Config") or {}).get("StopTimeout")
        except docker.errors.DockerException:
            timeout = None  # gone already, or the engine will say so to stop
        return max(0, int(grace_s if timeout is None else timeout))

    # -- networks and volumes ------------------------------------------------------------------

    def ensure_network(self, platform: str, app: str, network: str | None = None) -> None:
        if not network:  # the app's default network: one made ahead, taken for it
            self._pool.network_for(platform, app)
            return
        name = network_name(app, network)
        self._create_network(
            f"creating network {name}", name, resource_labels(platform, app), driver="bridge"
        )

    def _create_network(self, what: str, name: str, labels: dict[str, str], **options: Any) -> None:
        """Create network ``name`` unless the engine has it (idempotent). One call either way: the
        engine refuses a second network of the same name (409), which is cheaper than listing the
        networks first (a new app's first deploy waits for this)."""
        with engine_errors(what):
            try:
                self._api.create_network(name, labels=labels, check_duplicate=True, **options)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # 409: there already (made before, or meanwhile)
                    raise

    def ensure_volume(self, platform: str, app: str, volume: str) -> None:
        name = volume_name(app, volume)
        with engine_errors(f"creating volume {name}"):
            self._api.create_volume(name=name, driver="local", labels=resource_labels(platform, app))

    def volume_exists(self, name: str) -> bool:
        with engine_errors(f"looking up volume {name}"):
            try:
                self._api.inspect_volume(name)
            except docker.errors.NotFound:
                return False
        return True

    def remove_app_resources(
        self, platform: str, app: str, *, volumes: bool = True, force: bool = False
    ) -> None:
        filters = {"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
        pooled = self._pool.taken_by(platform, app)
        app_resources.remove_networks(self._api, platform, app, force=force, also=pooled)
        self._pool.forget(platform, app)
        with engine_errors(f"removing the volumes and images of {app}"):
            kept = not volumes  # then a later deploy of the same name mounts them again
            for vol in [] if kept else (self._api.volumes(filters=filters) or {}).get("Volumes") or []:
                with contextlib.suppress(docker.errors.NotFound):
                    self._api.remove_volume(vol["Name"], force=True)
            for image in self._api.images(filters={"reference": f"mypaas-{app}/*"}):
                for tag in image.get("RepoTags") or []:  # the app's builds (they live on in the registry)
                    with contextlib.suppress(docker.errors.APIError):
                        self._api.remove_image(tag)
        if self._files is not None:
            self._files.remove_app(app)

    def list_volumes(self, platform: str) -> list[VolumeInfo]:
        return app_resources.list_volumes(self._api, platform)

    def remove_volume(self, platform: str, name: str) -> None:
        app_resources.remove_volume(self._api, platform, name)

    # -- images ---------------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo:
        with engine_errors(f"image {ref}"):
            try:
                info = self._api.inspect_image(ref)
            except docker.errors.NotFound as exc:
                raise NotFound(f"image {ref!r} not found on the engine (build or import it first)") from exc
            except docker.errors.APIError as exc:
                if exc.status_code == 400:
                    raise InvalidSpec(
                        f"invalid image reference {ref!r}: {explain(exc)}", field="image"
                    ) from exc
                raise
        config = info.get("Config") or {}
        exposed = config.get("ExposedPorts") or {}
        ports = sorted(int(p.split("/")[0]) for p in exposed if p.endswith("/tcp"))
        platform = "/".join(str(info[k]) for k in ("Os", "Architecture", "Variant") if info.get(k))
        return ImageInfo(
            id=info["Id"],
            ref=ref,
            exposed_ports=tuple(ports),
            size=int(info.get("Size", 0)),
            platform=platform,
            has_command=bool(config.get("Cmd") or config.get("Entrypoint")),
        )

    def import_image(self, data: bytes | Iterable[bytes], *, ref: str, changes: list[str]) -> ImageInfo:
        """Import a tar as ``ref``. Pieces are sent as they come (a chunked request body): the engine
        tags the image only once the body ended, so an exception from ``data`` leaves nothing behind."""
        repo, tag = split_ref(ref)
        with engine_errors(f"importing {ref}"):
            try:
                out = self._api.import_image_from_data(data, repository=repo, tag=tag, changes=changes)
            except docker.errors.DockerException:
                raise  # the engine's answer (an HTTP error, which is a RequestException too)
            except requests.RequestException as exc:  # the engine dropped the upload
                raise BackendError(f"importing {ref}: the engine closed the connection: {exc}") from exc
        for line in str(out or "").splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("error"):
                    raise BackendError(f"importing {ref}: {tidy(str(message['error']))}")
        return self.image(ref)

    def build_image(
        self,
        context: Blob,
        *,
        tag: str,
        dockerfile: str = "Dockerfile",
        buildargs: dict[str, str] | None = None,
        target: str | None = None,
        on_line: Callable[[str], None] = print,
    ) -> ImageInfo:
        """Build from a gzipped tar of the context (an upload on disk is sent from its file, as it is
        read), streaming the build's output lines to ``on_line``.

        A failed build raises BuildFailed with the engine's one-line reason: its output went to
        ``on_line`` already (whoever follows the build reads it once, then the error)."""
        network = None
        if self.build_network:
            with engine_errors("making the build network"):
                network = ensure_network(self._api, self.build_network, {"mypaas.role": "build-network"})
        with (
            engine_errors("build failed", as_error=BuildFailed),
            contextlib.closing(open_blob(context)) as fileobj,
        ):
            stream = self._api.build(
                network_mode=network,
                fileobj=fileobj,
                custom_context=True,
                encoding="gzip",
                tag=tag,
                dockerfile=dockerfile,
                buildargs=buildargs or {},
                target=target,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise BuildFailed(f"build failed: {_one_line(str(chunk['error']))}")
                text = chunk.get("stream") or chunk.get("status") or ""
                for line in text.splitlines():
                    if line.strip():
                        on_line(line)
        return self.image(tag)

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        with engine_errors(f"pushing {repository}:{tag}"):
            self._api.tag(image, repository, tag)
            stream = self._api.push(
                repository,
                tag=tag,
                stream=True,
                decode=True,
                auth_config={"username": username, "password": password},
            )
            digest = ""
            for chunk in stream:
                if "error" in chunk:
                    raise BackendError(f"pushing {repository}:{tag}: {chunk['error'].strip()}")
                aux = chunk.get("aux") or {}
                digest = aux.get("Digest", digest)
        if not digest:
            raise BackendError(f"pushing {repository}:{tag}: the engine reported no digest")
        return str(digest)

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        with engine_errors(f"removing image {ref}"), contextlib.suppress(docker.errors.NotFound):
            self._api.remove_image(ref, force=force, noprune=False)

    def instance_process(self, instance_id: str) -> ProcessInfo | None:
        with engine_errors(f"inspecting {instance_id[:12]}"):
            try:
                info = self._api.inspect_container(instance_id)
            except docker.errors.NotFound:
                return None
        state = info.get("State") or {}
        return ProcessInfo(
            pid=int(state.get("Pid") or 0),
            restarts=int(info.get("RestartCount") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            exit_code=None if state.get("Running") else int(state.get("ExitCode") or 0),
        )

    def instance_report(self, instance_id: str) -> InstanceReport | None:
        with engine_errors(f"inspecting {instance_id[:12]}"):
            try:
                return container_report(self._api.inspect_container(instance_id))
            except docker.errors.NotFound:
                return None


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
