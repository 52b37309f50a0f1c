"""The structure of a compose file, after the compose-spec's JSON schema: which keys each mapping may hold,
and whether a value is a mapping, a list or a scalar. Errors read like ``docker compose config``'s:
``services.web.ports must be a list``, ``services.web additional property 'foo' is not allowed``.

Only the shape is checked here, loosely for scalars (a number where the schema wants a string passes: the
value's own check comes later, with MyPaas's rules); ``x-*`` keys are allowed wherever the schema allows
them, and null stands for "not set" everywhere. Whether MyPaas supports a key is not this module's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mypaas.errors import InvalidSpec


class Shape:
    kind = "value"  # what the message says a value must be

    def accepts(self, value: Any) -> bool:
        return True

    def check(self, value: Any, where: str) -> None:
        """Raise InvalidSpec naming ``where`` if ``value`` does not have this shape."""


@dataclass(frozen=True)
class _Scalar(Shape):
    kind: str = "string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str | int | float | bool)


@dataclass(frozen=True)
class _List(Shape):
    item: Shape
    kind: str = "list"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list)

    def check(self, value: Any, where: str) -> None:
        for index, item in enumerate(value):
            check_value(item, self.item, f"{where}[{index}]")


@dataclass(frozen=True)
class _Dict(Shape):
    """A mapping of names the user chooses (``key`` is their pattern) to values of one shape."""

    value: Shape
    key: str = ".+"
    kind: str = "mapping"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check(self, value: Any, where: str) -> None:
        for name, item in value.items():
            if not isinstance(name, str) or not re.fullmatch(self.key, name):
                rule = _RULES.get(self.key, f"it must match {self.key}")
                raise InvalidSpec(f"{where}.{name}: invalid name {name!r} ({rule})", field=f"{where}.{name}")
            check_value(item, self.value, f"{where}.{name}")


@dataclass(frozen=True)
class _Object(Shape):
    """A mapping of known keys; ``x-*`` keys too when ``extensions``."""

    keys: dict[str, Shape]
    extensions: bool = True
    kind: str = "mapping"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)

    def check(self, value: Any, where: str) -> None:
        for key, item in value.items():
            shape = self.keys.get(key) if isinstance(key, str) else None
            if shape is None:
                if self.extensions and isinstance(key, str) and key.startswith("x-"):
                    continue
                inside = f"{where} " if where else "the top level: "
                raise InvalidSpec(
                    f"{inside}additional property {key!r} is not allowed", field=f"{where}.{key}".strip(".")
                )
            check_value(item, shape, f"{where}.{key}" if where else str(key))


@dataclass(frozen=True)
class _OneOf(Shape):
    shapes: tuple[Shape, ...] = field(default=())

    @property
    def kind(self) -> str:  # type: ignore[override]
        return " or ".join(sorted({shape.kind for shape in self.shapes}))

    def accepts(self, value: Any) -> bool:
        return any(shape.accepts(value) for shape in self.shapes)

    def check(self, value: Any, where: str) -> None:
        shape = next(shape for shape in self.shapes if shape.accepts(value))
        shape.check(value, where)


def check_value(value: Any, shape: Shape, where: str) -> None:
    if value is None:
        return
    if not shape.accepts(value):
        article = "an" if shape.kind[:1] in "aeiou" else "a"
        raise InvalidSpec(f"{where} must be {article} {shape.kind}", field=where)
    shape.check(value, where)


def _one_of(*shapes: Shape) -> _OneOf:
    return _OneOf(shapes)


def _obj(**keys: Shape) -> _Object:
    return _Object(keys)


def _strict(**keys: Shape) -> _Object:
    """A mapping of known keys where the schema allows no ``x-*`` key."""
    return _Object(keys, extensions=False)


# --- the compose-spec, shape by shape -----------------------------------------------------------------
S = _Scalar("string")
N = _Scalar("number")
B = _Scalar("boolean")
ANY = Shape()
STRINGS = _List(S)
STRING_OR_LIST = _one_of(S, STRINGS)
KEY_VALUES = _one_of(_Dict(S), STRINGS)  # list_or_dict: {K: V} or [K=V]
OPEN = _Dict(ANY)
EXTRA_HOSTS = _one_of(_Dict(STRING_OR_LIST), STRINGS)
ULIMITS = _Dict(_one_of(N, _obj(soft=N, hard=N)), key="[a-z]+")
MOUNTED = _List(_one_of(S, _obj(source=S, target=S, uid=S, gid=S, mode=N)))  # service secrets, configs
HOOK = _obj(command=STRING_OR_LIST, user=S, privileged=B, working_dir=S, environment=KEY_VALUES)
DEVICE_REQUESTS = _List(_obj(capabilities=STRINGS, count=N, device_ids=STRINGS, driver=S, options=KEY_VALUES))
_ROLLOUT = _obj(parallelism=N, delay=S, failure_action=S, monitor=S, max_failure_ratio=N, order=S)
_NAME = "[a-zA-Z0-9._-]+"
_RULES = {_NAME: "use letters, digits, '.', '_' and '-'", ".+": "it must not be empty", "[a-z]+": "use a-z"}

DEPLOY = _obj(
    mode=S,
    endpoint_mode=S,
    replicas=N,
    labels=KEY_VALUES,
    rollback_config=_ROLLOUT,
    update_config=_ROLLOUT,
    resources=_obj(
        limits=_obj(cpus=N, memory=S, pids=N),
        reservations=_obj(cpus=N, memory=S, generic_resources=_List(ANY), devices=DEVICE_REQUESTS),
    ),
    restart_policy=_obj(condition=S, delay=S, max_attempts=N, window=S),
    placement=_obj(constraints=STRINGS, preferences=_List(_obj(spread=S)), max_replicas_per_node=N),
)
BUILD = _one_of(
    S,
    _obj(
        context=S,
        dockerfile=S,
        dockerfile_inline=S,
        entitlements=STRINGS,
        args=KEY_VALUES,
        ssh=KEY_VALUES,
        labels=KEY_VALUES,
        cache_from=STRINGS,
        cache_to=STRINGS,
        no_cache=B,
        additional_contexts=KEY_VALUES,
        network=S,
        provenance=B,
        sbom=B,
        pull=B,
        target=S,
        shm_size=N,
        extra_hosts=EXTRA_HOSTS,
        isolation=S,
        privileged=B,
        secrets=MOUNTED,
        tags=STRINGS,
        ulimits=ULIMITS,
        platforms=STRINGS,
    ),
)
HEALTHCHECK = _obj(
    disable=B, interval=S, retries=N, test=STRING_OR_LIST, timeout=S, start_period=S, start_interval=S
)
PORTS = _List(_one_of(N, _obj(name=S, mode=S, host_ip=S, target=N, published=N, protocol=S, app_protocol=S)))
VOLUME_MOUNTS = _List(
    _one_of(
        S,
        _obj(
            type=S,
            source=S,
            target=S,
            read_only=B,
            consistency=S,
            bind=_obj(propagation=S, create_host_path=B, recursive=S, selinux=S),
            volume=_obj(labels=KEY_VALUES, nocopy=B, subpath=S),
            tmpfs=_obj(size=N, mode=N),
            image=_obj(subpath=S),
        ),
    )
)
SERVICE_NETWORKS = _one_of(
    STRINGS,
    _Dict(
        _obj(
            aliases=STRINGS,
            interface_name=S,
            ipv4_address=S,
            ipv6_address=S,
            link_local_ips=STRINGS,
            mac_address=S,
            driver_opts=_Dict(N),
            priority=N,
            gw_priority=N,
        ),
        key=_NAME,
    ),
)
_BLKIO_RATES = _List(_strict(path=S, rate=N))
SERVICE = _obj(
    develop=_obj(
        watch=_List(
            _obj(
                ignore=STRING_OR_LIST,
                include=STRING_OR_LIST,
                path=S,
                action=S,
                target=S,
                exec=HOOK,
                initial_sync=B,
            )
        )
    ),
    deploy=DEPLOY,
    annotations=KEY_VALUES,
    attach=B,
    build=BUILD,
    blkio_config=_strict(
        device_read_bps=_BLKIO_RATES,
        device_read_iops=_BLKIO_RATES,
        device_write_bps=_BLKIO_RATES,
        device_write_iops=_BLKIO_RATES,
        weight=N,
        weight_device=_List(_strict(path=S, weight=N)),
    ),
    cap_add=STRINGS,
    cap_drop=STRINGS,
    configs=MOUNTED,
    credential_spec=_obj(config=S, file=S, registry=S),
    depends_on=_one_of(STRINGS, _Dict(_obj(restart=B, required=B, condition=S), key=_NAME)),
    devices=_List(_one_of(S, _obj(source=S, target=S, permissions=S))),
    device_cgroup_rules=STRINGS,
    dns=STRING_OR_LIST,
    dns_opt=STRINGS,
    dns_search=STRING_OR_LIST,
    command=STRING_OR_LIST,
    entrypoint=STRING_OR_LIST,
    env_file=_one_of(S, _List(_one_of(S, _strict(path=S, format=S, required=B)))),
    label_file=STRING_OR_LIST,
    environment=KEY_VALUES,
    expose=_List(N),
    extends=_one_of(S, _strict(service=S, file=S)),
    provider=_obj(type=S, options=OPEN),
    external_links=STRINGS,
    extra_hosts=EXTRA_HOSTS,
    gpus=_one_of(S, DEVICE_REQUESTS),
    group_add=_List(N),
    healthcheck=HEALTHCHECK,
    labels=KEY_VALUES,
    links=STRINGS,
    logging=_obj(driver=S, options=OPEN),
    models=_one_of(STRINGS, _Dict(_obj(endpoint_var=S, model_var=S), key=_NAME)),
    networks=SERVICE_NETWORKS,
    ports=PORTS,
    post_start=_List(HOOK),
    pre_stop=_List(HOOK),
    profiles=STRINGS,
    secrets=MOUNTED,
    security_opt=STRINGS,
    storage_opt=OPEN,
    sysctls=KEY_VALUES,
    tmpfs=STRING_OR_LIST,
    ulimits=ULIMITS,
    volumes=VOLUME_MOUNTS,
    volumes_from=STRINGS,
    **{
        key: S
        for key in [
            "cgroup",
            "cgroup_parent",
            "container_name",
            "cpuset",
            "domainname",
            "hostname",
            "image",
            "ipc",
            "isolation",
            "mac_address",
            "network_mode",
            "platform",
            "pull_policy",
            "pull_refresh_after",
            "restart",
            "runtime",
            "stop_grace_period",
            "stop_signal",
            "user",
            "uts",
            "userns_mode",
            "working_dir",
            "pid",
        ]
    },
    **{
        key: N
        for key in [
            "cpu_count",
            "cpu_percent",
            "cpu_shares",
            "cpu_quota",
            "cpu_period",
            "cpu_rt_period",
            "cpu_rt_runtime",
            "cpus",
            "mem_limit",
            "mem_reservation",
            "mem_swappiness",
            "memswap_limit",
            "oom_score_adj",
            "pids_limit",
            "scale",
            "shm_size",
        ]
    },
    **{
        key: B
        for key in [
            "init",
            "oom_kill_disable",
            "privileged",
            "read_only",
            "stdin_open",
            "tty",
            "use_api_socket",
        ]
    },
)
_EXTERNAL = _one_of(B, _obj(name=S))
_RESOURCE = {"name": S, "labels": KEY_VALUES}
TOP = _obj(
    version=S,
    name=S,
    include=_List(_one_of(S, _strict(path=STRING_OR_LIST, env_file=STRING_OR_LIST, project_directory=S))),
    services=_Dict(SERVICE, key=_NAME),
    models=_Dict(_obj(name=S, model=S, context_size=N, runtime_flags=STRINGS), key=_NAME),
    networks=_Dict(
        _obj(
            driver=S,
            driver_opts=_Dict(N),
            ipam=_obj(
                driver=S,
                config=_List(_obj(subnet=S, ip_range=S, gateway=S, aux_addresses=_Dict(S))),
                options=_Dict(S),
            ),
            external=_EXTERNAL,
            internal=B,
            enable_ipv4=B,
            enable_ipv6=B,
            attachable=B,
            **_RESOURCE,
        ),
        key=_NAME,
    ),
    volumes=_Dict(_obj(driver=S, driver_opts=_Dict(N), external=_EXTERNAL, **_RESOURCE), key=_NAME),
    secrets=_Dict(
        _obj(
            environment=S,
            file=S,
            external=_one_of(B, _Dict(ANY)),
            driver=S,
            driver_opts=_Dict(N),
            template_driver=S,
            **_RESOURCE,
        ),
        key=_NAME,
    ),
    configs=_Dict(
        _obj(
            content=S, environment=S, file=S, external=_one_of(B, _Dict(ANY)), template_driver=S, **_RESOURCE
        ),
        key=_NAME,
    ),
)


def check_structure(model: Any) -> None:
    """Raise InvalidSpec for the first place where ``model`` (a compose file) strays from the spec."""
    if not isinstance(model, dict):
        raise InvalidSpec("a compose file must be a mapping with a 'services' key", field="compose")
    check_value(model, TOP, "")
