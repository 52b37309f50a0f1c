"""Nova v2.1 as the simulator answers it (doc/api_samples of openstack/nova; see the package docstring)."""

from __future__ import annotations

import base64
import uuid

from starlette.requests import Request
from starlette.responses import Response

from tests.openstack_sim.state import (
    NOW,
    PROJECT_ID,
    USER_ID,
    Json,
    Server,
    Service,
    answer,
    nova_error,
)


class NovaAPI(Service):
    # Nova --------------------------------------------------------------------------------------
    async def compute_versions(self, request: Request) -> Response:
        return answer({"versions": [self._compute_v21()]}, 300)

    async def compute_version(self, request: Request) -> Response:
        return answer({"version": self._compute_v21()})

    def _compute_v21(self) -> Json:
        return {
            "id": "v2.1",
            "links": [{"href": f"{self.base}/compute/v2.1/", "rel": "self"}],
            "status": "CURRENT",
            "version": "2.1",
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
        }

    async def flavors(self, request: Request) -> Response:
        return answer({"flavors": self.cloud.flavors})

    async def flavor(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        for flavor in self.cloud.flavors:
            if flavor["id"] == wanted:
                return answer({"flavor": flavor})
        return nova_error(404, f"Flavor {wanted} could not be found.")

    async def limits(self, request: Request) -> Response:
        used = len(self.cloud.servers)
        absolute = {"maxTotalInstances": 10, "totalInstancesUsed": used, "maxTotalCores": 20}
        return answer({"limits": {"absolute": absolute, "rate": []}})

    async def keypairs(self, request: Request) -> Response:
        if request.method == "POST":
            body = (await request.json())["keypair"]
            name = body["name"]
            if name in self.cloud.keypairs:
                return nova_error(409, f"Key pair '{name}' already exists.")
            if not str(body.get("public_key", "")).startswith(("ssh-", "ecdsa-")):
                return nova_error(400, "Keypair data is invalid: failed to generate fingerprint")
            keypair = {
                "fingerprint": "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c",
                "name": name,
                "public_key": body["public_key"],
                "user_id": USER_ID,
            }
            self.cloud.keypairs[name] = keypair
            return answer({"keypair": keypair})
        return answer({"keypairs": [{"keypair": k} for k in self.cloud.keypairs.values()]})

    async def keypair(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.cloud.keypairs:
            return nova_error(404, f"Keypair {name} not found for user {USER_ID}")
        if request.method == "DELETE":
            del self.cloud.keypairs[name]
            return Response(status_code=202)
        return answer({"keypair": self.cloud.keypairs[name]})

    async def servers(self, request: Request) -> Response:
        if request.method == "POST":
            return self._create_server((await request.json())["server"])
        name = request.query_params.get("name")
        found = [self._show(s) for s in list(self.cloud.servers.values())]
        found = [s for s in found if s is not None and (name is None or name in s["name"])]
        if not request.url.path.endswith("/detail"):
            found = [{"id": s["id"], "name": s["name"], "links": s["links"]} for s in found]
        return answer({"servers": found})

    async def server(self, request: Request) -> Response:
        server_id = request.path_params["id"]
        server = self.cloud.servers.get(server_id)
        if server is None:
            return nova_error(404, f"Instance {server_id} could not be found.")
        if request.method == "DELETE":
            server.deleting = True
            return Response(status_code=204)
        body = self._show(server)
        if body is None:
            return nova_error(404, f"Instance {server_id} could not be found.")
        return answer({"server": body})

    def _show(self, server: Server) -> Json | None:
        """The server as a GET shows it, moving it along: BUILD for ``build_polls`` GETs, then ACTIVE
        (or ERROR with a fault); a deleted one answers once more (task_state deleting), then is gone."""
        body = server.body
        if server.deleting:
            if body.get("OS-EXT-STS:task_state") == "deleting":
                self._forget(body["id"])
                return None
            body["OS-EXT-STS:task_state"] = "deleting"
            return body
        server.polls += 1
        if body["status"] == "BUILD" and server.polls > self.cloud.build_polls:
            if self.cloud.fault is not None:
                body["status"] = "ERROR"
                body["fault"] = {"code": 500, "created": NOW, "message": self.cloud.fault}
            else:
                body["status"] = "ACTIVE"
                body["OS-EXT-STS:vm_state"] = "active"
        return body

    def _forget(self, server_id: str) -> None:
        """Nova deleting a server: its ports go with it; a floating IP on them is disassociated."""
        self.cloud.servers.pop(server_id, None)
        for port_id in [p["id"] for p in self.cloud.ports.values() if p["device_id"] == server_id]:
            self._drop_port(port_id)

    def _create_server(self, req: Json) -> Response:
        refusal = self._refusal(req)
        if refusal is not None:
            return refusal
        groups = [g["name"] for g in req.get("security_groups", [{"name": "default"}])]
        networks = req["networks"]
        server_id = str(uuid.uuid4())
        addresses: Json = {}
        for net in networks:
            network = self._network(net["uuid"])
            assert network is not None
            port = self._new_port(server_id, network["id"], groups)
            entry = {
                "addr": port["fixed_ips"][0]["ip_address"],
                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                "OS-EXT-IPS:type": "fixed",
                "version": 4,
            }
            addresses.setdefault(network["name"], []).append(entry)
        links = [{"href": f"{self.base}/compute/v2.1/servers/{server_id}", "rel": "self"}]
        self.cloud.servers[server_id] = Server(
            {
                "accessIPv4": "",
                "accessIPv6": "",
                "addresses": addresses,
                "created": NOW,
                "flavor": {"id": req["flavorRef"], "links": []},
                "hostId": uuid.uuid4().hex,
                "id": server_id,
                "image": {"id": req["imageRef"], "links": []},
                "key_name": req.get("key_name"),
                "links": links,
                "metadata": dict(req.get("metadata", {})),
                "name": req["name"],
                "progress": 0,
                "status": "BUILD",
                "OS-EXT-STS:vm_state": "building",
                "OS-EXT-STS:task_state": None,
                "security_groups": [{"name": g} for g in groups],
                "tenant_id": PROJECT_ID,
                "updated": NOW,
                "user_id": USER_ID,
                "user_data": req.get("user_data"),
            }
        )
        created = {"OS-DCF:diskConfig": "AUTO", "adminPass": "6NpUwoz2QDRN", "id": server_id, "links": links}
        return answer({"server": {**created, "security_groups": [{"name": g} for g in groups]}}, 202)

    def _refusal(self, req: Json) -> Response | None:
        """Why Nova would refuse this server (quota, unknown flavor/image/key/group/network), or None."""
        if self.cloud.quota_exceeded is not None:
            quota = self.cloud.quota_exceeded
            message = f"Quota exceeded for {quota}: Requested 1, but already used 10 of 10 {quota}"
            return nova_error(403, message)
        problems = [
            (
                not any(f["id"] == req.get("flavorRef") for f in self.cloud.flavors),
                "Flavor could not be found.",
            ),
            (
                not any(i["id"] == req.get("imageRef") for i in self.cloud.images),
                "Can not find requested image",
            ),
            (
                bool(req.get("key_name")) and req.get("key_name") not in self.cloud.keypairs,
                "Invalid key_name",
            ),
            (
                any(
                    g["name"] != "default" and not self._group_named(g["name"])
                    for g in req.get("security_groups", [])
                ),
                "Security group not found for project.",
            ),
            (
                not req.get("networks") or not all(self._network(n.get("uuid", "")) for n in req["networks"]),
                "Network could not be found (networks[].uuid)",
            ),
        ]
        for failed, message in problems:
            if failed:
                return nova_error(400, message)
        if req.get("user_data"):
            base64.b64decode(req["user_data"], validate=True)
        return None

    def _new_port(self, server_id: str, network_id: str, groups: list[str]) -> Json:
        host = self.cloud.next_host()
        port = {
            "admin_state_up": True,
            "allowed_address_pairs": [],
            "created_at": NOW,
            "description": "",
            "device_id": server_id,
            "device_owner": "compute:nova",
            "fixed_ips": [
                {"ip_address": f"{self.cloud.address_prefix}{host}", "subnet_id": uuid.uuid4().hex}
            ],
            "id": str(uuid.uuid4()),
            "mac_address": f"fa:16:3e:00:00:{host % 256:02x}",
            "name": "",
            "network_id": network_id,
            "port_security_enabled": True,
            "project_id": PROJECT_ID,
            "revision_number": 1,
            "security_groups": [g["id"] for name in groups if (g := self._group_named(name))],
            "status": "ACTIVE",
            "tags": [],
            "tenant_id": PROJECT_ID,
            "updated_at": NOW,
        }
        self.cloud.ports[port["id"]] = port
        return port
