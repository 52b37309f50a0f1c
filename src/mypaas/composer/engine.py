"""How MyPaas's things are named and labelled in a Docker engine; only the composer uses these names.

Engine names join parts with "_", which app names (DNS labels) cannot hold: no two apps collide.
They are what running platforms already have: changing one orphans every deployed app's networks
and volumes. The reconcile loop finds what it runs by the labels.
"""

from __future__ import annotations

from mypaas.composer.base import (
    LABEL_APP,
    LABEL_GENERATION,
    LABEL_PLATFORM,
    LABEL_PORT,
    LABEL_RELEASE,
    LABEL_SERVICE,
    InstanceRequest,
    ServiceRequest,
)


def instance_labels(req: InstanceRequest | ServiceRequest) -> dict[str, str]:
    """The labels of an instance (a container, or a Swarm service's tasks): the service's own, then
    MyPaas's, by which the reconcile loop finds what it runs."""
    labels = dict(req.service.labels)
    labels.update(
        {
            LABEL_PLATFORM: req.platform,
            LABEL_APP: req.app,
            LABEL_SERVICE: req.service.name,
            LABEL_RELEASE: str(req.release),
            LABEL_GENERATION: str(req.generation),
        }
    )
    if req.service.http_port:
        labels[LABEL_PORT] = str(req.service.http_port)
    return labels


def resource_labels(platform: str, app: str) -> dict[str, str]:
    """The labels of an app's networks and volumes, by which ``remove_app_resources`` finds them."""
    return {LABEL_PLATFORM: platform, LABEL_APP: app}


def network_name(app: str, network: str | None = None) -> str:
    """The bridge network of an app's compose network (None or "": the app's default network as apps
    made before the network pool have it; new apps take a pooled one, composer/network_pool.py)."""
    return f"mypaas_{app}_{network}" if network else f"mypaas_{app}"


def overlay_name(app: str, network: str | None = None) -> str:
    """An app's network on Swarm, apart from the bridge network it had before (Swarm wants names
    that are DNS labels but for "_")."""
    return f"mypaasov_{app}_{network}" if network else f"mypaasov_{app}"


def volume_name(app: str, volume: str) -> str:
    """The engine volume of an app's named (compose top-level) volume."""
    return f"mypaas_{app}_{volume}"


def service_name(app: str, service: str, release: int, generation: int) -> str:
    """The Swarm service of one revision of an app's service (a rollout runs the new next to the old)."""
    return f"{app}_{service}_{release}_{generation}"


def instance_networks(req: InstanceRequest, default: str | None = None) -> tuple[str, ...]:
    """The bridge networks a container joins; the first is the one the router reaches it on.
    ``default``: the engine's name of the app's default network (the one it took from the pool)."""
    own = default or network_name(req.app)
    return tuple(network_name(req.app, n) if n else own for n in req.networks) or (own,)


def service_networks(req: ServiceRequest) -> tuple[str, ...]:
    """The overlay networks a Swarm service's tasks join."""
    return tuple(overlay_name(req.app, n) for n in req.networks) or (overlay_name(req.app),)


def mount_source(req: InstanceRequest | ServiceRequest, source: str) -> str:
    """A volume mount's source in the engine: one of the app's named volumes by its engine name,
    anything else as it is."""
    return volume_name(req.app, source) if source in req.volumes else source
