"""The simulated cloud's state and the records it answers with, shaped after the API reference's samples
(see the package's docstring), plus what Nova and Neutron share (networks, ports, security groups)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

NOW = "2026-12-05T12:00:00Z"
PROJECT_ID = "a6944d763bf64ee6a275f1263fae0352"
USER_ID = "ee4dfb6e5540447cb3741905149d9b6e"
Json = dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Server:
    body: Json
    polls: int = 0  # GETs answered since creation
    deleting: bool = False


@dataclass
class Cloud:
    """What the simulated cloud holds. Tests read it to prove nothing was left behind."""

    username: str = "demo"
    password: str = "secret"
    project_name: str = "demo"
    app_credential_id: str = "423f19a4ac1e4f48bbb4180756e6eb6c"
    app_credential_secret: str = "rEaqvJka48mpv"  # the api-ref sample's
    address_prefix: str = "192.0.2."  # TEST-NET-1: fixed IPs nothing answers on
    floating_prefix: str = "198.51.100."
    quota_exceeded: str | None = None
    floating_ip_quota: int = 10
    fault: str | None = None
    build_polls: int = 1
    flavors: list[Json] = field(default_factory=list)
    images: list[Json] = field(default_factory=list)
    networks: list[Json] = field(default_factory=list)
    ports: dict[str, Json] = field(default_factory=dict)
    security_groups: dict[str, Json] = field(default_factory=dict)
    keypairs: dict[str, Json] = field(default_factory=dict)
    servers: dict[str, Server] = field(default_factory=dict)
    floating_ips: dict[str, Json] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every request
    _hosts: Iterator[int] = field(default_factory=lambda: itertools.count(10))

    def __post_init__(self) -> None:
        self.flavors = [_flavor(*f) for f in FLAVORS]
        self.images = [_image(*i) for i in IMAGES]
        self.networks = [
            _network("private", "02dd8479-ef26-4398-a102-d19d0a7b3a1f", external=False),
            _network("public", "376da547-b977-4cfe-9cba-275c80debf57", external=True),
        ]

    def leftovers(self) -> dict[str, list[str]]:
        """What machines left behind: servers, ports and floating IPs (empty lists: nothing)."""
        return {
            "servers": [s.body["name"] for s in self.servers.values()],
            "ports": [p["id"] for p in self.ports.values()],
            "floating_ips": [f["floating_ip_address"] for f in self.floating_ips.values()],
        }

    def next_host(self) -> int:
        return next(self._hosts)


# name, id, vcpus, ram (MB), disk (GB): flavors-detail-resp.json's m1 flavors
FLAVORS = [
    ("m1.tiny", "1", 1, 512, 1),
    ("m1.small", "2", 1, 2048, 20),
    ("m1.medium", "3", 2, 4096, 40),
    ("m1.large", "4", 4, 8192, 80),
]
# name, id, status: images-list-response.json's images, and one still being uploaded
IMAGES = [
    ("debian-12", "1bea47ed-f6a9-463b-b423-14b9cca9ad27", "active"),
    ("cirros-0.3.2-x86_64-disk", "781b3762-9469-4cec-b58d-3349e5de4e9c", "active"),
    ("ubuntu-uploading", "2b8fa1a5-7bc9-4a4e-9e10-d6b6e7e4b1f6", "queued"),
]


def _flavor(name: str, flavor_id: str, vcpus: int, ram: int, disk: int) -> Json:
    return {
        "OS-FLV-DISABLED:disabled": False,
        "disk": disk,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "os-flavor-access:is_public": True,
        "id": flavor_id,
        "links": [],
        "name": name,
        "ram": ram,
        "swap": "",
        "vcpus": vcpus,
        "rxtx_factor": 1.0,
    }


def _image(name: str, image_id: str, status: str) -> Json:
    return {
        "status": status,
        "name": name,
        "tags": [],
        "container_format": "bare",
        "created_at": "2014-11-07T17:07:06Z",
        "disk_format": "qcow2",
        "updated_at": "2014-11-07T17:19:09Z",
        "visibility": "public",
        "self": f"/v2/images/{image_id}",
        "min_disk": 0,
        "protected": False,
        "id": image_id,
        "file": f"/v2/images/{image_id}/file",
        "owner": PROJECT_ID,
        "size": 13167616,
        "min_ram": 0,
        "schema": "/v2/schemas/image",
        "virtual_size": None,
    }


def _network(name: str, network_id: str, *, external: bool) -> Json:
    return {
        "admin_state_up": True,
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "created_at": "2016-03-08T20:19:41",
        "id": network_id,
        "mtu": 1500,
        "name": name,
        "port_security_enabled": True,
        "project_id": PROJECT_ID,
        "revision_number": 1,
        "router:external": external,
        "shared": False,
        "status": "ACTIVE",
        "subnets": [str(uuid.uuid5(uuid.NAMESPACE_OID, name))],
        "tenant_id": PROJECT_ID,
        "updated_at": "2016-03-08T20:19:41",
        "description": "",
        "tags": [],
    }


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def nova_error(status: int, message: str) -> JSONResponse:
    kind = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[status]
    return answer({kind: {"code": status, "message": message}}, status)


def neutron_error(status: int, kind: str, message: str) -> JSONResponse:
    return answer({"NeutronError": {"type": kind, "message": message, "detail": ""}}, status)


def rule_record(group_id: str, direction: str, ethertype: str) -> Json:
    return {
        "direction": direction,
        "ethertype": ethertype,
        "id": str(uuid.uuid4()),
        "port_range_max": None,
        "port_range_min": None,
        "protocol": None,
        "remote_group_id": None,
        "remote_ip_prefix": None,
        "security_group_id": group_id,
        "project_id": PROJECT_ID,
        "created_at": NOW,
        "updated_at": NOW,
        "revision_number": 1,
        "tags": [],
        "tenant_id": PROJECT_ID,
        "description": "",
    }


def filtered(items: list[Json], request: Request) -> list[Json]:
    """Neutron's list filters: every query parameter that names a field must match it (booleans as
    ``true``/``false``, whatever their case)."""
    wanted = {k: v for k, v in request.query_params.items() if k not in ("fields", "limit", "marker")}
    return [i for i in items if all(k not in i or str(i[k]).lower() == v.lower() for k, v in wanted.items())]


class Service:
    """What every simulated service reads: the cloud, the server's base URL."""

    cloud: Cloud
    base: str

    def _group_named(self, name: str) -> Json | None:
        return next((g for g in self.cloud.security_groups.values() if g["name"] == name), None)

    def _network(self, network_id: str) -> Json | None:
        return next((n for n in self.cloud.networks if n["id"] == network_id), None)

    def _drop_port(self, port_id: str) -> None:
        self.cloud.ports.pop(port_id, None)
        for fip in self.cloud.floating_ips.values():
            if fip["port_id"] == port_id:
                fip.update(port_id=None, fixed_ip_address=None, status="DOWN", port_details=None)
