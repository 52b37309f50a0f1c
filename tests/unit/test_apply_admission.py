"""`mypaas apply` runs an app's spec through the checks `mypaas deploy -f` runs on a compose file (the
admin's policy, volume names, labels, ports): a team's deployer gets no more through the platform file
than through a compose file. Over the fake backend."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import settle
from tests.unit.teams import deploy_apps, make_cast, make_teams

BLOG = "services:\n  web:\n    image: web:1\n    volumes: [data:/var/lib/blog]\nvolumes:\n  data: {}\n"


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def dan(api: TestClient, platform: Platform, backend: FakeBackend) -> TestClient:
    """Team a's deployer; team a runs shop, team b runs blog with its volume data."""
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    r = api.post("/api/v1/apps/blog/deploys", params={"team": "b"}, json={"compose": BLOG})
    assert r.status_code == 202, r.text
    settle(platform, backend)
    return make_cast(platform).client(api, "deployer")


def _web(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["apps"]["shop"]["spec"]["services"]["web"])


def _steal_by_source(doc: dict[str, Any]) -> None:
    doc["apps"]["shop"]["spec"]["services"]["web"]["volumes"] = [
        {"source": "mypaas_blog_data", "target": "/steal"}
    ]


def _steal_as_external(doc: dict[str, Any]) -> None:
    _steal_by_source(doc)
    doc["apps"]["shop"]["spec"]["external_volumes"] = ["mypaas_blog_data"]


def _host_path(doc: dict[str, Any]) -> None:
    doc["apps"]["shop"]["spec"]["services"]["web"]["volumes"] = [
        {"source": "/var/lib/mypaas", "target": "/steal", "bind": True}
    ]


def _label(doc: dict[str, Any]) -> None:
    doc["apps"]["shop"]["spec"]["services"]["web"]["labels"] = {"mypaas.app": "blog"}


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (
            _steal_by_source,
            "apps.shop.spec.services.web.volumes[0]: volume 'mypaas_blog_data' is not declared",
        ),
        (
            _steal_as_external,
            "apps.shop.spec.external_volumes[0]: 'mypaas_blog_data' is a volume of a MyPaas app",
        ),
        (_host_path, "apps.shop.spec.services.web.volumes"),
        (_label, "apps.shop.spec.services.web.labels: label 'mypaas.app' is reserved"),
    ],
)
def test_a_deployer_cannot_reach_another_apps_volume_or_the_host_through_apply(
    dan: TestClient, api: TestClient, edit: Any, said: str
) -> None:
    doc = yaml.safe_load(dan.get("/api/v1/export").json()["document"])
    edit(doc)
    r = dan.post("/api/v1/apply", json={"document": yaml.safe_dump(doc)})
    assert r.status_code == 400, r.text
    assert said in r.json()["error"] and "\n" not in r.json()["error"], r.text
    release = api.get("/api/v1/apps/shop").json()["release"]
    assert release == 1, "nothing was applied"


def test_the_same_volume_through_a_compose_file_is_refused(dan: TestClient) -> None:
    compose = (
        "services:\n  web:\n    image: web:1\n    volumes: [stolen:/steal]\n"
        "volumes:\n  stolen: {external: true, name: mypaas_blog_data}\n"
    )
    r = dan.post("/api/v1/apps/shop/deploys", json={"compose": compose})
    assert r.status_code == 400 and "is a volume of a MyPaas app" in r.json()["error"], r.text


def test_every_field_of_a_service_is_read_back_or_said_why_not() -> None:
    """A field added to ServiceSpec must be checked by admit (or listed with the reason it need not be)."""
    from mypaas.domain import ServiceSpec
    from mypaas.spec.admission import _READ_BACK, TYPED_ONLY

    assert set(_READ_BACK) | set(TYPED_ONLY) == set(ServiceSpec.model_fields)
    assert not set(_READ_BACK) & set(TYPED_ONLY)


def test_admit_refuses_what_the_compose_reader_refuses() -> None:
    from mypaas.domain import AppSpec, ServiceSpec, VolumeMount
    from mypaas.errors import InvalidSpec
    from mypaas.spec.admission import admit
    from mypaas.spec.services import Policy

    sock = VolumeMount(source="/var/run/docker.sock", target="/s", bind=True)
    web = ServiceSpec(name="web", image="x", volumes=[sock])
    spec = AppSpec(services={"web": web})
    with pytest.raises(InvalidSpec, match=r"^p\.services\.web\.volumes\[0\]: .* is the Docker socket"):
        admit(spec, Policy(allow_host_mounts=True), "p.")
    admit(spec, Policy(allow_docker_socket=True), "p.")  # the admin allows it: so does admit
    with pytest.raises(InvalidSpec, match="privileged containers are not allowed"):
        admit(AppSpec(services={"web": ServiceSpec(name="web", image="x", privileged=True)}), Policy())
