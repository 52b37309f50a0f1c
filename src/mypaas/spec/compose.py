"""Parse a Compose project (compose-spec) into an AppSpec, strictly: an unsupported key is an error naming it.

Reading the files (several ``-f``, ``include``, ``extends``, interpolation, profiles, the YAML limits) is
:mod:`mypaas.spec.project`'s; this module turns the merged file into the app. Choices where MyPaas differs
from docker compose:

- A key MyPaas cannot honour is an ``InvalidSpec`` naming its dotted path (``services.web.deploy.placement``);
  only ``x-*`` extension keys (anywhere a key is checked) and the obsolete top-level ``version`` are ignored.
- YAML is read as docker compose reads it (YAML 1.2 scalars: ``restart: no`` is a string, ``22:22`` is not
  a number); duplicate keys are an error.
- A build arg without a value takes it from the shell or ``.env``, else it is left out (the Dockerfile
  default applies).
- Containers are named by MyPaas: ``container_name``, ``hostname``, ``links`` and a service name that is not
  a DNS label (``my_service``) are kept as network aliases (spec/networks.py).
- A port bound to a host address is published there on the docker backend only (spec/ports.py).
- Service ``networks`` must be declared at the top level, but for ``default``, the app's own network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mypaas.domain import AppSpec, ServiceSpec, check_env_key, check_name
from mypaas.errors import InvalidSpec
from mypaas.spec import secrets
from mypaas.spec.admission import admit
from mypaas.spec.networks import declare_networks, finish_app
from mypaas.spec.project import ProjectSource, load_project
from mypaas.spec.services import Context, Policy, parse_service
from mypaas.spec.values import as_mapping, as_str, checked_keys, port_number, unsupported
from mypaas.spec.volumes import declare_volumes

__all__ = ["ComposeResult", "Policy", "ProjectSource", "parse_compose", "read_compose", "read_project"]

_TOP_KEYS = {"services", "volumes", "networks", "name", "secrets", "configs"}
_RESOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
LEGACY_NAME = "compose"  # the file of a request that sends one compose text


@dataclass(frozen=True)
class ComposeResult:
    """A compose file read: the app it describes, and what MyPaas maps differently than docker compose."""

    spec: AppSpec
    warnings: tuple[str, ...] = ()


def parse_compose(
    text: str,
    *,
    env_files: Mapping[str, str] | None = None,
    allow_host_mounts: bool = False,
    allow_privileged: bool = False,
) -> AppSpec:
    """The AppSpec of a Compose file (``read_compose`` without its warnings)."""
    policy = Policy(allow_host_mounts=allow_host_mounts, allow_privileged=allow_privileged)
    return read_compose(text, env_files=env_files, policy=policy).spec


def read_compose(
    text: str, *, env_files: Mapping[str, str] | None = None, policy: Policy | None = None
) -> ComposeResult:
    """Turn one Compose file into an AppSpec (see ``read_project``).

    ``env_files`` maps each ``env_file`` path as written in the file to its contents; its ``.env`` entry
    also supplies the variables for ``${VAR}`` interpolation.
    """
    files = {**(env_files or {}), LEGACY_NAME: text}
    return read_project(ProjectSource((LEGACY_NAME,), files), policy)


def read_project(source: ProjectSource, policy: Policy | None = None) -> ComposeResult:
    """Turn a compose project into an AppSpec, with the warnings of what MyPaas maps differently, or raise
    ``InvalidSpec`` naming the field at fault. ``policy``: what the admin allows (host paths as volumes,
    privileged containers)."""
    try:
        project = load_project(source)
    except RecursionError as exc:
        raise InvalidSpec("the compose file is nested too deeply", field=source.compose_files[0]) from exc
    for key in project.model:
        if key not in _TOP_KEYS:
            raise unsupported(str(key), str(key))
    try:
        files = {**source.files, **project.files}
        result = _parse_app(project.model, files, project.variables, policy or Policy())
    except ValidationError as exc:  # a safety net: the checks above should leave pydantic nothing to refuse
        raise InvalidSpec(f"invalid compose file: {exc.errors()[0]['msg']}", field="compose") from exc
    return ComposeResult(result.spec, (*project.warnings, *result.warnings))


def single_image_spec(
    image: str, *, port: int | None, service: str = "web", env: Mapping[str, str] | None = None
) -> AppSpec:
    """One service for ``mypaas deploy APP --image REF [--port N]``; the port is exposed, not published."""
    check_name(service, field="service")
    if not isinstance(image, str) or not image or any(char.isspace() for char in image):
        raise InvalidSpec(f"invalid image reference {image!r}", field="image")
    expose = [] if port is None else [port_number(port, "port")]
    environment = {check_env_key(key, field="env"): str(value) for key, value in (env or {}).items()}
    spec = ServiceSpec(name=service, image=image, expose=expose, environment=environment)
    return AppSpec(services={service: spec})


# --- the app ---------------------------------------------------------------------------------------------
def _parse_app(
    top: dict[str, Any],
    files: Mapping[str, str],
    variables: Mapping[str, str],
    policy: Policy,
) -> ComposeResult:
    if "name" in top:
        as_str(top["name"], "name")  # the project name; the app name comes from the CLI
    volumes = declare_volumes(top.get("volumes"))
    network_warnings: list[str] = []
    networks, pooled = declare_networks(
        top.get("networks"), lambda where, message: network_warnings.append(f"{where}: {message}")
    )
    if "services" not in top:
        raise InvalidSpec("a compose file needs a 'services' key", field="services")
    services = as_mapping(top["services"], "services")
    if not services:
        raise InvalidSpec("'services' is empty: declare at least one service", field="services")
    context = Context(set(services), set(volumes.own), set(networks), files, variables, policy)
    context.warnings.extend([*volumes.warnings, *network_warnings])
    context.external_volumes = volumes.external
    for network in pooled:
        context.warn(
            f"networks.{network}.ipam",
            "the engine picks the subnet of each app network (a fixed one could clash with another app's on "
            "the hosts); services reach each other by name",
        )
    specs: dict[str, ServiceSpec] = {}
    renamed: dict[str, str] = {}
    for name, body in services.items():
        spec = parse_service(name, body, context)
        if spec.name in specs:
            raise InvalidSpec(
                f"services {name!r} and {next(k for k, v in renamed.items() if v == spec.name)!r} are both "
                f"named {spec.name!r} on the platform (service names are DNS labels there)",
                field=f"services.{name}",
            )
        specs[spec.name], renamed[name] = spec, spec.name
    stored = {
        key: secrets.parse_definitions(top.get(key), key[:-1], context.warn) for key in ("secrets", "configs")
    }
    secrets.check_references(specs, stored["secrets"], stored["configs"])
    app = AppSpec(
        services=specs,
        volumes=volumes.own,
        networks=networks,
        external_volumes=sorted(set(volumes.external.values())),
        **stored,
    )
    app = finish_app(app, services, renamed)
    app.start_order()  # raises on a depends_on cycle
    admit(app, policy)  # the checks `mypaas apply` runs too, on the spec as the release will hold it
    return ComposeResult(app, tuple(context.warnings))


def _declarations(value: Any, field: str, key: str, allowed: tuple[str, ...]) -> list[str]:
    """Top-level volumes or networks: ``{name: {}}``, ``{name: null}`` or ``{name: {driver: ...}}``."""
    names: list[str] = []
    for name, body in as_mapping(value, field).items():
        where = f"{field}.{name}"
        if not _RESOURCE_NAME.fullmatch(name):
            raise InvalidSpec(
                f"invalid name {name!r} in {field}: use a-z, 0-9, '_', '.' and '-', starting with a-z or 0-9",
                field=where,
            )
        definition = checked_keys(body, where, {key})
        if key in definition and definition[key] not in allowed:
            raise InvalidSpec(
                f"{where}.{key} {definition[key]!r} is not supported (use {' or '.join(allowed)})",
                field=f"{where}.{key}",
            )
        names.append(name)
    return names
