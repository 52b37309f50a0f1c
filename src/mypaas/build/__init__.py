"""Image builds: the ``build`` contexts of an app spec, built on the engine, pinned by image id."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mypaas.build import source
from mypaas.build.fetches import check_add_sources
from mypaas.composer.base import Backend
from mypaas.domain import AppSpec, port_from_image
from mypaas.egress import Egress
from mypaas.errors import InvalidSpec, NotSupported
from mypaas.uploads import Blob, discard


def build_services(
    backend: Backend,
    app: str,
    op_id: str,
    spec: AppSpec,
    contexts: Mapping[str, Blob],
    emit: Callable[[str], None],
    make_base: Callable[[], None] | None = None,
    *,
    egress: Egress | None = None,
) -> AppSpec:
    """Build every service that has ``build``; return the spec with each built image pinned.

    ``make_base`` makes the Debian base image when a source build needs it and it is missing; an ``ADD``
    of a URL inside the platform (``egress``) is refused before the engine sees the Dockerfile. An
    uploaded context is read from its file; a source build's context with its generated Dockerfile is
    written next to it and removed once built."""
    services = dict(spec.services)
    for name, svc in spec.services.items():
        if svc.build is None:
            continue
        context = contexts.get(svc.build.context)
        if context is None:
            raise InvalidSpec(f"no build context uploaded for service {name}", field=f"services.{name}.build")
        tag = f"mypaas-{app}/{name}:{op_id}"  # never the user's `image:` (that could retag any image)
        dockerfile = svc.build.dockerfile
        made: list[Blob] = []
        try:
            if svc.build.detect:
                context, dockerfile = _from_source(backend, context, emit, make_base)
                made.append(context)
            check_add_sources(context, dockerfile, egress or Egress(), field=f"services.{name}.build")
            emit(f"--- building {name} ({dockerfile})")
            info = backend.build_image(
                context,
                tag=tag,
                dockerfile=dockerfile,
                buildargs=svc.build.args,
                target=svc.build.target,
                on_line=emit,
            )
        finally:
            discard(made)
        emit(f"--- built {name}: {info.id[:19]}")
        update: dict[str, object] = {"image": tag, "image_id": info.id, "build": None}
        if not svc.ports and not svc.expose and len(spec.services) == 1:
            port = port_from_image(info.exposed_ports, name)
            update["expose"] = [port] if port else []
        services[name] = svc.model_copy(update=update)
    return spec.model_copy(update={"services": services})


def _from_source(
    backend: Backend, context: Blob, emit: Callable[[str], None], make_base: Callable[[], None] | None
) -> tuple[Blob, str]:
    """Detect the app's kind, make its builder image if needed, add the generated Dockerfile."""
    found = source.detect(context)
    emit(f"--- detected a {found.kind} app" + (" (Procfile web)" if found.web else ""))

    def no_base() -> None:
        raise NotSupported(f"no {source.DEBIAN_BASE} image: run `mypaas image base debian:bookworm` first")

    source.ensure_builder(backend, found.kind, emit, make_base or no_base)
    return source.with_dockerfile(context, source.dockerfile(found)), source.GENERATED
