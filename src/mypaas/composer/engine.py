"""How MyPaas's things are labelled in a Docker engine (the reconcile loop finds them by these labels);
only the composer uses them."""

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
