"""An OpenStack API simulator for the openstack driver's tests: Keystone v3, Nova v2.1, Glance v2 and
Neutron v2.0 as one small HTTP server (Starlette under uvicorn, in a thread, on a free loopback port),
its state in memory. The unmodified openstacksdk drives it; nothing is patched.

No OpenStack cloud can run on the test machines, so this is what the driver has run against: it has
NOT run against a live cloud. Every request and response is shaped after the API reference's own
samples (the JSON files under each project's api-ref):

- Keystone: api-ref/source/v3/samples/admin/identity-versions-response.json (GET /identity),
  identity-version-response.json (GET /identity/v3), auth-password-project-scoped-response.json and
  auth-application-credential-response.json (POST /v3/auth/tokens, the token in X-Subject-Token, the
  service catalog in the body); a wrong password gets Keystone's 401 body {"error": {"code": 401, ...}}.
- Nova (doc/api_samples): versions/versions-get-resp.json and v21-version-get-resp.json,
  flavors/flavors-detail-resp.json, servers/server-create-req.json + server-create-resp.json,
  servers/server-get-resp.json + servers-details-resp.json (status BUILD, then ACTIVE; ERROR with
  ``fault`` as in the api-ref's show-server fault), os-keypairs/keypairs-import-post-req/resp.json and
  keypairs-list-resp.json, limits/limit-get-resp.json. Quota refusals answer 403 {"forbidden":
  {"message": "Quota exceeded for cores: ...", "code": 403}} as nova's api-ref describes.
- Glance: api-ref/source/v2/samples/images-list-response.json, image-show-response.json,
  versions-list-response.json.
- Neutron (neutron-lib api-ref/source/v2/samples): networks/networks-list-response.json,
  ports/ports-list-response.json + port-show-response.json, security-groups/
  security-group-create-request/response.json (a new group comes with its two egress rules) and
  security-group-rule-create-request/response.json, floatingips/floatingip-create-request/response.json
  and floating-ips-list-response.json; an over-quota refusal is 409 {"NeutronError": {"type":
  "OverQuota", ...}}.

Knobs for the tests (``Cloud`` attributes): ``quota_exceeded`` (a Nova quota name: the next server
creation is refused), ``floating_ip_quota``, ``fault`` (servers go to ERROR with that message),
``build_polls`` (how many GETs a new server answers BUILD before ACTIVE).
"""

import contextlib
import threading
import uuid
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.kit import free_port
from tests.openstack_sim.neutron import NetworkAPI
from tests.openstack_sim.nova import NovaAPI
from tests.openstack_sim.state import NOW, PROJECT_ID, USER_ID, Cloud, Handler, Json, answer

__all__ = ["Cloud", "Simulator", "running"]


class Simulator(NovaAPI, NetworkAPI):
    """The HTTP face of a ``Cloud``. ``auth_url`` is what a clouds.yaml entry names."""

    def __init__(self, cloud: Cloud, port: int) -> None:
        self.cloud = cloud
        self.base = f"http://127.0.0.1:{port}"
        self.auth_url = f"{self.base}/identity/v3"

    # Keystone ---------------------------------------------------------------------------------
    def catalog(self) -> list[Json]:
        def service(kind: str, name: str, path: str) -> Json:
            url = f"{self.base}/{path}"
            endpoints = [
                {
                    "region_id": "RegionOne",
                    "url": url,
                    "region": "RegionOne",
                    "interface": i,
                    "id": uuid.uuid4().hex,
                }
                for i in ("public", "internal", "admin")
            ]
            return {"endpoints": endpoints, "type": kind, "id": uuid.uuid4().hex, "name": name}

        return [
            service("identity", "keystone", "identity"),
            service("compute", "nova", "compute/v2.1"),
            service("image", "glance", "image"),
            service("network", "neutron", "network"),
        ]

    async def identity_versions(self, request: Request) -> Response:
        return answer({"versions": {"values": [self._identity_v3()]}}, 300)

    async def identity_version(self, request: Request) -> Response:
        return answer({"version": self._identity_v3()})

    def _identity_v3(self) -> Json:
        return {
            "id": "v3.14",
            "links": [{"href": f"{self.auth_url}/", "rel": "self"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
        }

    async def tokens(self, request: Request) -> Response:
        body = await request.json()
        identity = body.get("auth", {}).get("identity", {})
        methods = identity.get("methods", [])
        if "application_credential" in methods:
            cred = identity.get("application_credential", {})
            ok = cred.get("id") == self.cloud.app_credential_id and cred.get("secret") == (
                self.cloud.app_credential_secret
            )
        else:
            user = identity.get("password", {}).get("user", {})
            scope = body.get("auth", {}).get("scope", {}).get("project", {})
            ok = (
                user.get("name") == self.cloud.username
                and user.get("password") == self.cloud.password
                and scope.get("name", self.cloud.project_name) == self.cloud.project_name
            )
        if not ok:
            message = "The request you have made requires authentication."
            return answer({"error": {"code": 401, "title": "Unauthorized", "message": message}}, 401)
        token = uuid.uuid4().hex
        self.cloud.tokens.add(token)
        return answer(self._token_body(methods), 201, {"X-Subject-Token": token})

    def _token_body(self, methods: list[str]) -> Json:
        return {
            "token": {
                "methods": methods,
                "roles": [{"id": "51cc68287d524c759f47c811e6463340", "name": "member"}],
                "expires_at": "2099-11-07T02:58:43.578887Z",
                "issued_at": NOW,
                "project": {
                    "domain": {"id": "default", "name": "Default"},
                    "id": PROJECT_ID,
                    "name": self.cloud.project_name,
                },
                "user": {
                    "domain": {"id": "default", "name": "Default"},
                    "id": USER_ID,
                    "name": self.cloud.username,
                    "password_expires_at": None,
                },
                "is_domain": False,
                "audit_ids": ["3T2dc1CGQxyJsHdDu1xkcw"],
                "catalog": self.catalog(),
            }
        }

    # the app ----------------------------------------------------------------------------------
    def app(self) -> Starlette:
        def authed(handler: Handler) -> Handler:
            async def check(request: Request) -> Response:
                self.cloud.requests.append(f"{request.method} {request.url.path}")
                if request.headers.get("X-Auth-Token") not in self.cloud.tokens:
                    message = "The request you have made requires authentication."
                    return answer({"error": {"code": 401, "title": "Unauthorized", "message": message}}, 401)
                return await handler(request)

            return check

        def logged(handler: Handler) -> Handler:
            async def log(request: Request) -> Response:
                self.cloud.requests.append(f"{request.method} {request.url.path}")
                return await handler(request)

            return log

        any_method = ["GET", "POST", "DELETE"]
        routes = [
            Route("/identity", logged(self.identity_versions)),
            Route("/identity/", logged(self.identity_versions)),
            Route("/identity/v3", logged(self.identity_version)),
            Route("/identity/v3/", logged(self.identity_version)),
            Route("/identity/v3/auth/tokens", logged(self.tokens), methods=["POST"]),
            Route("/compute", logged(self.compute_versions)),
            Route("/compute/", logged(self.compute_versions)),
            Route("/compute/v2.1", logged(self.compute_version)),
            Route("/compute/v2.1/", logged(self.compute_version)),
            Route("/compute/v2.1/flavors/detail", authed(self.flavors)),
            Route("/compute/v2.1/flavors/{id}", authed(self.flavor)),
            Route("/compute/v2.1/limits", authed(self.limits)),
            Route("/compute/v2.1/os-keypairs", authed(self.keypairs), methods=["GET", "POST"]),
            Route("/compute/v2.1/os-keypairs/{name}", authed(self.keypair), methods=["GET", "DELETE"]),
            Route("/compute/v2.1/servers", authed(self.servers), methods=["GET", "POST"]),
            Route("/compute/v2.1/servers/detail", authed(self.servers)),
            Route("/compute/v2.1/servers/{id}", authed(self.server), methods=["GET", "DELETE"]),
            Route("/image", logged(self.image_versions)),
            Route("/image/", logged(self.image_versions)),
            Route("/image/v2/images", authed(self.images)),
            Route("/image/v2/images/{id}", authed(self.image)),
            Route("/network", logged(self.network_versions)),
            Route("/network/", logged(self.network_versions)),
            Route("/network/v2.0/networks", authed(self.networks)),
            Route("/network/v2.0/networks/{id}", authed(self.network)),
            Route("/network/v2.0/ports", authed(self.ports)),
            Route("/network/v2.0/ports/{id}", authed(self.port), methods=["GET", "DELETE"]),
            Route("/network/v2.0/security-groups", authed(self.security_groups), methods=["GET", "POST"]),
            Route(
                "/network/v2.0/security-groups/{id}", authed(self.security_group), methods=["GET", "DELETE"]
            ),
            Route("/network/v2.0/security-group-rules", authed(self.security_group_rules), methods=["POST"]),
            Route("/network/v2.0/floatingips", authed(self.floating_ips), methods=["GET", "POST"]),
            Route("/network/v2.0/floatingips/{id}", authed(self.floating_ip), methods=any_method),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            self.cloud.requests.append(f"{request.method} {request.url.path} (404)")
            return answer({"itemNotFound": {"code": 404, "message": f"no route {request.url.path}"}}, 404)

        return Starlette(routes=routes, exception_handlers={404: not_found})


@contextlib.contextmanager
def running(cloud: Cloud | None = None) -> Iterator[Simulator]:
    """A simulator serving ``cloud`` (a new one by default) on a free loopback port while in use."""
    sim = Simulator(cloud or Cloud(), free_port())
    port = int(sim.base.rsplit(":", 1)[1])
    server = uvicorn.Server(uvicorn.Config(sim.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "the OpenStack simulator did not start"
        yield sim
    finally:
        server.should_exit = True
        thread.join(10)
