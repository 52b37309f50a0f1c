"""Image builds: the ``build`` contexts of an app spec, built on the engine, pinned by image id."""

from __future__ import annotations

from collections.abc import Callable

from mypaas.composer.base import Backend
from mypaas.domain import AppSpec, port_from_image
from mypaas.errors import InvalidSpec


def build_services(
    backend: Backend,
    app: str,
    op_id: str,
    spec: AppSpec,
    contexts: dict[str, bytes],
    emit: Callable[[str], None],
) -> AppSpec:
    """Build every service that has ``build``; return the spec with each built image pinned."""
    services = dict(spec.services)
    for name, svc in spec.services.items():
        if svc.build is None:
            continue
        context = contexts.get(svc.build.context)
        if context is None:
            raise InvalidSpec(f"no build context uploaded for service {name}", field=f"services.{name}.build")
        tag = f"mypaas-{app}/{name}:{op_id}"  # never the user's `image:` (that could retag any image)
        emit(f"--- building {name} ({svc.build.dockerfile})")
        info = backend.build_image(
            context,
            tag=tag,
            dockerfile=svc.build.dockerfile,
            buildargs=svc.build.args,
            target=svc.build.target,
            on_line=emit,
        )
        emit(f"--- built {name}: {info.id[:19]}")
        update: dict[str, object] = {"image": tag, "image_id": info.id, "build": None}
        if not svc.ports and not svc.expose and len(spec.services) == 1:
            port = port_from_image(info.exposed_ports, name)
            update["expose"] = [port] if port else []
        services[name] = svc.model_copy(update=update)
    return spec.model_copy(update={"services": services})
