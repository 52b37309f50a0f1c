"""The compose reader's checks, run on an AppSpec: ``admit(spec, policy)`` reads each key of each service
back in the compose form its handler takes and runs that same handler (the admin's policy on host paths,
the Docker socket, privileged containers, capabilities and namespaces; volume and network names; labels;
ports; the options' values), then the checks on the whole app. `mypaas deploy -f` runs it on what the
reader made, and `mypaas apply` on each spec its file changes: a spec that never was a compose file
gets no more than a compose file would. Errors name ``prefix`` + the spec's path
(``apps.shop.spec.services.web.volumes[0]: ...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mypaas.domain import AppSpec, PortSpec, ServiceSpec, TmpfsMount, VolumeMount, check_name
from mypaas.errors import InvalidSpec
from mypaas.spec import secrets
from mypaas.spec.networks import declare_networks
from mypaas.spec.options import check_service
from mypaas.spec.services import Context, Policy, handler_of
from mypaas.spec.volumes import declare_volumes, engine_volume_name

__all__ = ["admit"]

_FIELDS = ServiceSpec.model_fields
_DEFAULTS = {name: field.get_default(call_default_factory=True) for name, field in _FIELDS.items()}

# fields whose value the compose key of the same name takes as it is
_SAME = (
    "image", "command", "entrypoint", "environment", "expose", "labels", "privileged", "restart", "hostname",
    "user", "working_dir", "init", "stop_signal", "shm_size", "extra_hosts", "stdin_open", "tty", "platform",
    "sysctls", "cap_add", "cap_drop", "network_mode", "pid", "ipc", "security_opt", "read_only", "dns",
    "dns_search", "dns_opt", "domainname", "group_add", "pids_limit", "cpu_shares", "cpuset", "oom_score_adj",
    "mem_swappiness", "oom_kill_disable", "cpus",
)  # fmt: skip


def _ports(ports: list[PortSpec]) -> list[dict[str, Any]]:
    keys = {"target": "container", "published": "host", "protocol": "protocol", "host_ip": "host_ip"}
    keys |= {"name": "name", "app_protocol": "app_protocol"}
    return [{k: getattr(p, f) for k, f in keys.items() if getattr(p, f) is not None} for p in ports]


def _volume(v: VolumeMount) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "bind" if v.bind else "volume", "target": v.target}
    if v.source:
        body["source"] = v.source
    if v.read_only:
        body["read_only"] = True
    if v.consistency:
        body["consistency"] = v.consistency
    if v.propagation and v.bind:
        body["bind"] = {"propagation": v.propagation}
    if v.no_copy and not v.bind:
        body["volume"] = {"nocopy": True}
    return body


def _tmpfs(t: TmpfsMount) -> dict[str, Any]:
    options = {k: v for k, v in (("size", t.size), ("mode", t.mode)) if v is not None}
    body: dict[str, Any] = {"type": "tmpfs", "target": t.target, "read_only": t.read_only}
    return {**body, "tmpfs": options} if options else body


def _healthcheck(svc: ServiceSpec) -> dict[str, Any]:
    check = svc.healthcheck
    assert check is not None
    if check.disabled:
        return {"test": ["NONE"]}
    body: dict[str, Any] = {"test": check.test, "interval": check.interval_s, "timeout": check.timeout_s}
    body |= {"retries": check.retries, "start_period": check.start_period_s}
    return body if check.start_interval_s is None else {**body, "start_interval": check.start_interval_s}


def _deploy(svc: ServiceSpec) -> dict[str, Any]:
    body: dict[str, Any] = {"mode": svc.mode}
    if svc.placement:
        body["placement"] = {"constraints": svc.placement}
    if svc.service_labels:
        body["labels"] = svc.service_labels
    if svc.reserve_cpus is not None:
        body["resources"] = {"reservations": {"cpus": svc.reserve_cpus}}
    return body


# field -> (compose key, the field's value in the form that key takes)
_READ_BACK: dict[str, tuple[str, Callable[[ServiceSpec], Any]]] = {
    "ports": ("ports", lambda s: _ports(s.ports)),
    "volumes": ("volumes", lambda s: [_volume(v) for v in s.volumes]),
    "tmpfs": ("volumes", lambda s: [_tmpfs(t) for t in s.tmpfs]),
    "networks": ("networks", lambda s: [n or "default" for n in s.networks]),
    "depends_on": ("depends_on", lambda s: {n: {"condition": c} for n, c in s.depends_on.items()}),
    "healthcheck": ("healthcheck", _healthcheck),
    "stop_grace_s": ("stop_grace_period", lambda s: s.stop_grace_s),
    "ulimits": ("ulimits", lambda s: {u.name: {"soft": u.soft, "hard": u.hard} for u in s.ulimits}),
    "logging": ("logging", lambda s: s.logging and s.logging.model_dump()),
    "memory": ("mem_limit", lambda s: s.memory),
    "reserve_memory": ("mem_reservation", lambda s: s.reserve_memory),
    "placement": ("deploy", _deploy),
    "service_labels": ("deploy", _deploy),
    "mode": ("deploy", _deploy),
    "reserve_cpus": ("deploy", _deploy),
    **{name: (name, lambda s, name=name: getattr(s, name)) for name in _SAME},  # type: ignore[misc]
}
# fields no compose key reads back: what they may hold is their type's, or another check's
TYPED_ONLY = {
    "name": "check_name",
    "image_id": "pinned by the platform",
    "build": "apply carries the release's as it is; a deploy reads it from the compose file",
    "project_files": "apply carries the release's as it is; a deploy uploads them",
    "replicas": "the scale, checked apart",
    "probe": "typed",
    "aliases": "names on the app's own networks only",
    "network_options": "addresses on the app's own networks only",
    "restart_policy": "typed",
    "update": "typed",
    "secrets": "secrets.check_references",
    "configs": "secrets.check_references",
}


def admit(spec: AppSpec, policy: Policy, prefix: str = "") -> None:
    """Raise InvalidSpec, naming ``prefix`` + the path at fault, for what `mypaas deploy -f` would refuse."""
    for index, name in enumerate(spec.external_volumes):
        engine_volume_name(name, f"{prefix}external_volumes[{index}]")
    try:
        declare_volumes({name: None for name in spec.volumes})
        networks, _ = declare_networks({name: None for name in spec.networks}, lambda where, message: None)
        secrets.check_references(spec.services, spec.secrets, spec.configs)
    except InvalidSpec as exc:
        where = prefix.rstrip(".")
        raise InvalidSpec(f"{where}: {exc.message}" if where else exc.message, field=exc.field) from exc
    context = Context(set(spec.services), set(spec.volumes), set(networks), {}, {}, policy)
    context.external_volumes = {name: name for name in spec.external_volumes}
    for name, svc in spec.services.items():
        _service(name, svc, context, f"{prefix}services.{name}")


def _service(name: str, svc: ServiceSpec, context: Context, where: str) -> None:
    check_name(name, f"{where} service")
    if svc.name != name:
        raise InvalidSpec(f"{where}: the service is named {svc.name!r}, not {name!r}", field=where)
    read = set()
    for field_name, (key, value_of) in _READ_BACK.items():
        if getattr(svc, field_name) == _DEFAULTS[field_name] or (key == "deploy" and key in read):
            continue
        read.add(key)
        where_key = f"{where}.{key if key == 'deploy' else field_name}"
        handler_of(key)(value_of(svc), where_key, context)
    check_service(svc, where)
