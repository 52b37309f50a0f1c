"""The vsphere driver's account options (sizes, extraConfig, the URL) and a machine's first-boot data
(cloud-init in guestinfo); no SDK here."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from urllib.parse import urlsplit

from mypaas.errors import InvalidSpec
from mypaas.iaas.base import MachineRequest, MachineSize

DEFAULT_SIZES = (
    MachineSize("small", cpus=1, memory_mb=1024),
    MachineSize("medium", cpus=2, memory_mb=4096),
    MachineSize("large", cpus=4, memory_mb=8192),
)
TAG_KEY = "mypaas.account"  # extraConfig key naming the driver account that made the VM
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


def guestinfo(request: MachineRequest) -> dict[str, str]:
    """cloud-init's VMware data source: user data (root's SSH key) and meta data (the host name)."""
    user_data = "#cloud-config\n" + json.dumps(
        {"disable_root": False, "users": [{"name": "root", "ssh_authorized_keys": [request.ssh_public_key]}]}
    )
    meta_data = json.dumps({"instance-id": request.name, "local-hostname": request.name})
    return {
        "guestinfo.userdata": base64.b64encode(user_data.encode()).decode(),
        "guestinfo.userdata.encoding": "base64",
        "guestinfo.metadata": base64.b64encode(meta_data.encode()).decode(),
        "guestinfo.metadata.encoding": "base64",
    }


def parse_extra_config(value: Mapping[str, str] | str) -> dict[str, str]:
    """``k=v`` lines (or ``;``-separated), or a JSON object, into extraConfig pairs."""
    if isinstance(value, Mapping):
        return _untagged({str(k): str(v) for k, v in value.items()})
    text = value.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidSpec(f"extra_config is not a JSON object: {exc}", field="extra_config") from exc
        if not isinstance(loaded, dict):
            raise InvalidSpec("extra_config is not a JSON object", field="extra_config")
        return _untagged({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()})
    pairs: dict[str, str] = {}
    for item in text.replace(";", "\n").splitlines():
        if not item.strip():
            continue
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            raise InvalidSpec(f"extra_config entry {item.strip()!r} is not KEY=VALUE", field="extra_config")
        pairs[key.strip()] = val.strip()
    return _untagged(pairs)


def _untagged(pairs: dict[str, str]) -> dict[str, str]:
    if TAG_KEY in pairs:
        raise InvalidSpec(f"extra_config may not set {TAG_KEY} (the driver's tag)", field="extra_config")
    return pairs


def parse_sizes(text: str) -> list[MachineSize]:
    """``NAME=CPUS:MEMORY_MB[,...]`` into sizes."""
    sizes: list[MachineSize] = []
    for item in text.split(","):
        name, _, shape = item.strip().partition("=")
        cpus, _, memory = shape.partition(":")
        if not (name and cpus.isdigit() and memory.isdigit() and int(cpus) > 0 and int(memory) > 0):
            raise InvalidSpec(f"size {item.strip()!r} is not NAME=CPUS:MEMORY_MB", field="sizes")
        sizes.append(MachineSize(name, cpus=int(cpus), memory_mb=int(memory)))
    if len({s.name for s in sizes}) != len(sizes):
        raise InvalidSpec("sizes names a size twice", field="sizes")
    return sizes


def parse_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("https", "http") or not parts.hostname or port == -1:
        raise InvalidSpec(f"vsphere url {url!r} is not https://VCENTER[:PORT]/sdk", field="url")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default, parts.path or "/sdk"


def parse_bool(value: bool | str, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise InvalidSpec(f"{field} {value!r} is not true or false", field=field)


def parse_seconds(value: float | str, field: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InvalidSpec(f"{field} {value!r} is not a number of seconds (0-3600)", field=field)
    return seconds
