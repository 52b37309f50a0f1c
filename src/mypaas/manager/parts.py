"""How each real part is made from the settings (the composition root, platform.py, wires them): the
engine's driver, the router, the registry and its mirror, the Swarm's nodes, and what the hosts of a
cluster are told to trust. The CLI's offline commands (offline.py) make the engine's driver and the
router here too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mypaas.composer.base import Backend
from mypaas.composer.nodes import Nodes, SwarmNodes
from mypaas.errors import Conflict
from mypaas.iaas.local import LocalEngineConfig
from mypaas.manager.backup.service import Backups
from mypaas.manager.domain_certs import RouterFiles
from mypaas.manager.identity.service import Identity
from mypaas.manager.pki import PlatformCA, ServerFiles, server_names
from mypaas.manager.state.db import Store
from mypaas.manager.state.meta import Setting
from mypaas.manager.vault.crypto import Cipher
from mypaas.registry.client import RegistryApi
from mypaas.registry.distribution import Distribution, Tls, TokenAuth
from mypaas.registry.images import Images
from mypaas.registry.mirror import Mirror
from mypaas.registry.tokens import TokenIssuer
from mypaas.router.base import Router
from mypaas.router.https import Https, UserCert
from mypaas.settings import Settings

if TYPE_CHECKING:
    from mypaas.composer.swarm import SwarmBackend


def make_backend(settings: Settings, timeout: float = 120, *, pool: bool = True) -> SwarmBackend:
    """The engine's driver: the swarm backend, which is the docker one plus Swarm services (it runs
    an app's containers until the platform becomes a cluster, then the services of each app deployed
    or moved). ``pool``: keep networks made ahead for new apps (the manager; not a command's driver)."""
    from mypaas.composer.swarm import SwarmBackend

    backend = SwarmBackend(
        settings.docker_url,
        timeout,
        restart_delay_s=settings.swarm_restart_delay_s,
        update_delay_s=settings.swarm_update_delay_s,
        secret_files=settings.home / "secrets",
        network_pool=settings.network_pool if pool else 0,
    )
    backend.build_network = settings.build_network  # builds' RUN steps: off this machine's addresses
    return backend


def make_router(settings: Settings, certs: Callable[[], Sequence[UserCert]] = tuple) -> Router:
    """The router the setting ``router`` names: Caddy, or HAProxy with a Caddy in front for TLS; the
    users' own certificates ``certs`` gives (``certs add``) are served when HTTPS is on."""
    https = None
    if settings.router_https_port:
        https = Https(
            port=settings.router_https_port,
            base_domain=settings.base_domain,
            acme_ca=settings.acme_ca,
            acme_ca_root=settings.acme_ca_root,
            acme_email=settings.acme_email,
        )
    if settings.router == "haproxy":
        return _haproxy_router(settings, https, certs)
    from mypaas.router.caddy import CaddyRouter

    return CaddyRouter(
        https=https,
        admin=settings.router_admin_address,
        listen_port=settings.router_port,
        config_dir=settings.router_dir,
        log_path=settings.log_dir / "caddy.log",
        user_certs=certs,
    )


def _haproxy_router(
    settings: Settings, https: Https | None, certs: Callable[[], Sequence[UserCert]]
) -> Router:
    from mypaas.router.haproxy import HAProxyRouter
    from mypaas.router.haproxy_config import Files
    from mypaas.router.tls_front import CaddyTlsFront

    files = Files(settings.router_dir)
    front = None
    if https is not None:
        front = CaddyTlsFront(
            files=files,
            http_port=settings.router_port,
            https=https,
            admin=settings.router_admin_address,
            config_dir=settings.router_dir,
            log_path=settings.log_dir / "caddy.log",
            user_certs=certs,
        )
    return HAProxyRouter(
        listen_port=settings.router_port,
        folder=files.folder,
        log_path=settings.log_dir / "haproxy.log",
        front=front,
    )


def router_files(settings: Settings) -> RouterFiles:
    """Where ``domains ls`` finds what the router (Caddy) stored and logged about certificates."""
    return RouterFiles(
        storage_dir=settings.router_dir / "caddy",  # CaddyRouter.storage_dir
        log_path=settings.log_dir / "caddy.log",
        https=bool(settings.router_https_port),
    )


def platform_tls(settings: Settings) -> tuple[PlatformCA, ServerFiles | None]:
    """The platform CA (made at first start) and, when an endpoint listens beyond loopback, the server
    certificate it serves (made, or renewed when it nears expiry or lacks a name, at each start)."""
    pki = PlatformCA(settings.tls_dir)
    addresses = [settings.cluster_addr, settings.api_host]
    files = pki.ensure(server_names(addresses, settings.tls_names))
    return pki, files if settings.tls_listen else None


def backups(settings: Settings, store: Store, platform_id: str, backend: Backend, cipher: Cipher) -> Backups:
    """Backups of this platform; volumes read through this machine's engine with the base image."""
    from mypaas.build.base import BASE_REF, ensure_base_image
    from mypaas.composer.volume_copies import DockerCopies

    def helper_image() -> str:
        ensure_base_image(backend)
        return BASE_REF

    return Backups(
        settings=settings,
        store=store,
        platform_id=platform_id,
        copies=lambda: DockerCopies(settings.docker_url),
        helper_image=helper_image,
        cipher=cipher,
    )


def swarm_nodes(settings: Settings) -> Callable[[], Nodes]:
    """The Swarm's nodes through the local engine, connected at first use."""
    made: list[Nodes] = []

    def connect() -> Nodes:
        if not made:
            made.append(SwarmNodes.connect(settings.docker_url))
        return made[0]

    return connect


def _registry_tls(files: ServerFiles | None, client: tuple[Path, Path] | None = None) -> Tls | None:
    return Tls(cert=files.cert, key=files.key, ca=files.ca, client=client) if files else None


def images(
    settings: Settings,
    backend: Backend,
    identity: Identity,
    admin_token: str,
    api: RegistryApi | None = None,
    tls: ServerFiles | None = None,
) -> Images:
    folder = settings.home / "registry"
    issuer = TokenIssuer(folder)
    auth = TokenAuth(
        realm=settings.token_realm, service=issuer.service, issuer=issuer.issuer, cert=issuer.cert_path
    )
    registry = Distribution(
        name="registry",
        addr=settings.registry_addr,
        folder=folder,
        log_path=settings.log_dir / "registry.log",
        auth=auth,
        listen=f"0.0.0.0:{settings.registry_port}" if settings.cluster_addr else None,
        tls=_registry_tls(tls) if settings.cluster_addr else None,
    )
    return Images(
        registry=registry,
        issuer=issuer,
        pusher=backend,
        push_password=admin_token,
        authorize=identity.registry_grant,
        keep_releases=settings.registry_keep_releases,
        client=api,
    )


class EngineConfig(Protocol):
    """This machine's engine settings MyPaas edits (iaas/local.py LocalEngineConfig)."""

    def registry_mirrors(self) -> list[str]: ...

    def set_registry_mirrors(self, mirrors: list[str]) -> bool: ...

    def insecure_registries(self) -> list[str]: ...

    def set_insecure_registries(self, registries: list[str]) -> bool: ...

    def install_certs(self, certs: dict[str, dict[str, bytes]]) -> bool: ...


def engine_config() -> EngineConfig:
    return LocalEngineConfig()


def mirror_public(settings: Settings) -> str:
    """The mirror's address as the hosts (and, in a cluster, this machine's engine) reach it."""
    port = settings.mirror_addr.rsplit(":", 1)[1]
    return f"{settings.cluster_addr}:{port}" if settings.cluster_addr else settings.mirror_addr


def mirror(
    settings: Settings, upstream: Setting, engine: EngineConfig, pki: PlatformCA | None = None
) -> Mirror:
    """The mirror: on loopback, plain HTTP; in a cluster, on the cluster address only, over TLS, and only
    for clients showing a certificate of the platform CA (the hosts' engines and this one: certs.d)."""
    tls = None
    if settings.cluster_addr and pki is not None:
        tls = _registry_tls(pki.server, pki.hosts_client())
    registry = Distribution(
        name="mirror",
        addr=mirror_public(settings),
        folder=settings.home / "mirror",
        log_path=settings.log_dir / "mirror.log",
        auth=None,
        tls=tls,
    )
    return Mirror(upstream=upstream, registry=registry, engine=engine)


def registries_for_hosts(settings: Settings) -> list[str]:
    """What every host's engine must trust blindly: nothing (it verifies the registry with the platform
    CA, certificates_for_hosts); Conflict when there is no cluster address to reach the registry at."""
    if not settings.cluster_addr:
        raise Conflict(
            "set cluster_addr (this machine's address as the hosts reach it) in "
            f"{settings.home}/settings.yml or MYPAAS_CLUSTER_ADDR, then restart the manager "
            "(mypaas down && mypaas up): hosts pull images from the registry there",
            field="cluster_addr",
        )
    return []


def certificates_for_hosts(settings: Settings, pki: PlatformCA) -> dict[str, dict[str, bytes]]:
    """certs.d for every host's engine: the platform CA for the registry, and for the mirror the CA plus
    the client certificate it asks for."""
    cert, key = pki.hosts_client()  # makes the CA if there is none yet
    ca = pki.ca_cert.read_bytes()
    return {
        settings.registry_public: {"ca.crt": ca},
        mirror_public(settings): {
            "ca.crt": ca,
            "client.cert": cert.read_bytes(),
            "client.key": key.read_bytes(),
        },
    }


def mirrors_for_hosts(settings: Settings, mirror: Mirror) -> list[str] | None:
    """The hosts pull through the mirror too, while it is enabled (at its cluster address)."""
    if not settings.cluster_addr or mirror.upstream() is None:
        return None
    return [mirror.registry.url]


def trust_registry_here(settings: Settings, engine: EngineConfig, pki: PlatformCA | None = None) -> None:
    """The platform just became a cluster. This engine runs tasks too: it pulls from the registry's
    cluster address like the hosts do, so it must trust it (this machine's own address: no network
    between them), and show the mirror the hosts' client certificate (certs.d)."""
    if settings.cluster_addr:
        if pki is not None:
            engine.install_certs(certificates_for_hosts(settings, pki))
        trusted = engine.insecure_registries()
        if settings.registry_public not in trusted:
            engine.set_insecure_registries([*trusted, settings.registry_public])
