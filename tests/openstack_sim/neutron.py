"""Glance v2 and Neutron v2.0 as the simulator answers them (glance and neutron-lib api-ref samples; see
the package docstring)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from tests.openstack_sim.state import (
    NOW,
    PROJECT_ID,
    Json,
    Service,
    answer,
    filtered,
    neutron_error,
    rule_record,
)


class NetworkAPI(Service):
    # Glance ------------------------------------------------------------------------------------
    async def image_versions(self, request: Request) -> Response:
        version = {
            "id": "v2.16",
            "links": [{"href": f"{self.base}/image/v2/", "rel": "self"}],
            "status": "CURRENT",
        }
        return answer({"versions": [version]}, 300)

    async def images(self, request: Request) -> Response:
        status = request.query_params.get("status")
        name = request.query_params.get("name")
        found = [
            i
            for i in self.cloud.images
            if (status is None or i["status"] == status) and (name is None or i["name"] == name)
        ]
        return answer({"images": found, "schema": "/v2/schemas/images", "first": "/v2/images"})

    async def image(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        for image in self.cloud.images:
            if image["id"] == wanted:
                return answer(image)
        return Response(f"No image found with ID {wanted}", status_code=404, media_type="text/plain")

    # Neutron -----------------------------------------------------------------------------------
    async def network_versions(self, request: Request) -> Response:
        version = {
            "id": "v2.0",
            "links": [{"href": f"{self.base}/network/v2.0/", "rel": "self"}],
            "status": "CURRENT",
        }
        return answer({"versions": [version]})

    async def networks(self, request: Request) -> Response:
        return answer({"networks": filtered(self.cloud.networks, request)})

    async def network(self, request: Request) -> Response:
        found = self._network(request.path_params["id"])
        if found is None:
            return neutron_error(
                404, "NetworkNotFound", f"Network {request.path_params['id']} could not be found."
            )
        return answer({"network": found})

    async def ports(self, request: Request) -> Response:
        return answer({"ports": filtered(list(self.cloud.ports.values()), request)})

    async def port(self, request: Request) -> Response:
        port_id = request.path_params["id"]
        if port_id not in self.cloud.ports:
            return neutron_error(404, "PortNotFound", f"Port {port_id} could not be found.")
        if request.method == "DELETE":
            self._drop_port(port_id)
            return Response(status_code=204)
        return answer({"port": self.cloud.ports[port_id]})

    async def security_groups(self, request: Request) -> Response:
        if request.method == "POST":
            body = (await request.json())["security_group"]
            group_id = str(uuid.uuid4())
            group = {
                "description": body.get("description", ""),
                "id": group_id,
                "name": body["name"],
                "security_group_rules": [rule_record(group_id, "egress", e) for e in ("IPv4", "IPv6")],
                "project_id": PROJECT_ID,
                "created_at": NOW,
                "updated_at": NOW,
                "revision_number": 1,
                "tags": [],
                "tenant_id": PROJECT_ID,
                "stateful": True,
            }
            self.cloud.security_groups[group_id] = group
            return answer({"security_group": group}, 201)
        return answer({"security_groups": filtered(list(self.cloud.security_groups.values()), request)})

    async def security_group(self, request: Request) -> Response:
        group_id = request.path_params["id"]
        group = self.cloud.security_groups.get(group_id)
        if group is None:
            return neutron_error(404, "SecurityGroupNotFound", f"Security group {group_id} does not exist")
        if request.method == "DELETE":
            del self.cloud.security_groups[group_id]
            return Response(status_code=204)
        return answer({"security_group": group})

    async def security_group_rules(self, request: Request) -> Response:
        body = (await request.json())["security_group_rule"]
        group = self.cloud.security_groups.get(body.get("security_group_id", ""))
        if group is None:
            return neutron_error(404, "SecurityGroupNotFound", "Security group does not exist")
        rule = rule_record(group["id"], body.get("direction", "ingress"), body.get("ethertype", "IPv4"))
        for key in ("protocol", "port_range_min", "port_range_max", "remote_group_id", "remote_ip_prefix"):
            rule[key] = body.get(key)
        same = [k for k in rule if k not in ("id", "created_at", "updated_at")]
        if any(all(r.get(k) == rule[k] for k in same) for r in group["security_group_rules"]):
            return neutron_error(409, "SecurityGroupRuleExists", "Security group rule already exists.")
        group["security_group_rules"].append(rule)
        return answer({"security_group_rule": rule}, 201)

    async def floating_ips(self, request: Request) -> Response:
        if request.method == "GET":
            return answer({"floatingips": filtered(list(self.cloud.floating_ips.values()), request)})
        body = (await request.json())["floatingip"]
        if len(self.cloud.floating_ips) >= self.cloud.floating_ip_quota:
            return neutron_error(409, "OverQuota", "Quota exceeded for resources: ['floatingip'].")
        network = self._network(body.get("floating_network_id", ""))
        if network is None or not network["router:external"]:
            return neutron_error(404, "ExternalNetworkNotFound", "External network could not be found.")
        port = self.cloud.ports.get(body.get("port_id") or "")
        fip_id = str(uuid.uuid4())
        fip = {
            "fixed_ip_address": port["fixed_ips"][0]["ip_address"] if port else None,
            "floating_ip_address": f"{self.cloud.floating_prefix}{self.cloud.next_host()}",
            "floating_network_id": network["id"],
            "id": fip_id,
            "port_id": port["id"] if port else None,
            "router_id": "d23abc8d-2991-4a55-ba98-2aaea84cc72f",
            "status": "ACTIVE" if port else "DOWN",
            "project_id": PROJECT_ID,
            "tenant_id": PROJECT_ID,
            "description": body.get("description", ""),
            "created_at": NOW,
            "updated_at": NOW,
            "revision_number": 1,
            "tags": [],
        }
        self.cloud.floating_ips[fip_id] = fip
        if port is not None:
            self._show_floating(port["device_id"], fip)
        return answer({"floatingip": fip}, 201)

    def _show_floating(self, server_id: str, fip: Json) -> None:
        server = self.cloud.servers.get(server_id)
        if server is None:
            return
        for entries in server.body["addresses"].values():
            if any(e["addr"] == fip["fixed_ip_address"] for e in entries):
                entries.append(
                    {**entries[0], "addr": fip["floating_ip_address"], "OS-EXT-IPS:type": "floating"}
                )
                return

    async def floating_ip(self, request: Request) -> Response:
        fip_id = request.path_params["id"]
        fip = self.cloud.floating_ips.get(fip_id)
        if fip is None:
            return neutron_error(404, "FloatingIPNotFound", f"Floating IP {fip_id} could not be found")
        if request.method == "DELETE":
            del self.cloud.floating_ips[fip_id]
            return Response(status_code=204)
        return answer({"floatingip": fip})
