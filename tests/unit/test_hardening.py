"""Container hardening defaults (settings default_pids_limit, default_memory, no_new_privileges) go into
each new release's spec, so both backends apply them; a service sets its own limits, and turns
no-new-privileges off only with the admin setting allow_new_privileges. Releases stored before keep their
spec: an upgrade rolls nothing out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mypaas.api.app import create_app
from mypaas.composer.base import ServiceRequest
from mypaas.composer.fake import FakeBackend
from mypaas.composer.options import host_options
from mypaas.composer.swarm_spec import Rollout, service_spec
from mypaas.domain import ServiceSpec
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state.models import ReleaseRow
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from mypaas.spec.compose import read_compose
from mypaas.spec.hardening import Hardening, harden
from tests.unit.cli.support import deploy, settle

GIB = 2**30


@pytest.fixture
def backend() -> FakeBackend:
    backend = FakeBackend()
    backend.add_image("web:1", exposed=(80,))
    return backend


def stored_service(platform: Platform) -> dict[str, Any]:
    """The service ``web`` of the newest release, as stored."""
    with platform.store.sessions() as s:
        row = s.scalars(select(ReleaseRow).order_by(ReleaseRow.id.desc())).first()
        assert row is not None
        return dict(row.spec["services"]["web"])


def test_a_deploy_gets_the_defaults_in_its_release(api: TestClient, platform: Platform) -> None:
    deploy(api, "shop", image="web:1")

    web = stored_service(platform)
    assert (web["pids_limit"], web["memory"], web["security_opt"]) == (1024, GIB, ["no-new-privileges=true"])
    svc = ServiceSpec.model_validate(web)
    assert host_options(svc)["pids_limit"] == 1024
    assert host_options(svc)["security_opt"] == ["no-new-privileges=true"]


def test_a_service_sets_its_own_limits(api: TestClient, platform: Platform) -> None:
    compose = "services:\n  web:\n    image: web:1\n    pids_limit: 64\n    mem_limit: 128m\n"
    deploy(api, "shop", compose=compose)

    web = stored_service(platform)
    assert (web["pids_limit"], web["memory"]) == (64, 128 * 2**20)


def test_no_pids_limit_needs_the_admin_setting(api: TestClient) -> None:
    compose = "services:\n  web:\n    image: web:1\n    pids_limit: -1\n"

    r = api.post("/api/v1/apps/shop/deploys", json={"compose": compose})

    assert r.status_code == 400
    assert r.json() == {
        "error": "services.web.pids_limit: -1 (no limit) is not allowed: a fork bomb would reach the host "
        "(admin setting allow_privileged)",
        "field": "services.web.pids_limit",
    }


@pytest.mark.parametrize("settings", [{"allow_privileged": True}], indirect=True)
def test_allow_privileged_lets_a_service_run_without_a_pids_limit(
    api: TestClient, platform: Platform
) -> None:
    deploy(api, "shop", compose="services:\n  web:\n    image: web:1\n    pids_limit: -1\n")

    assert stored_service(platform)["pids_limit"] == -1


def test_turning_no_new_privileges_off_needs_the_admin_setting(api: TestClient) -> None:
    compose = "services:\n  web:\n    image: web:1\n    security_opt: ['no-new-privileges:false']\n"

    r = api.post("/api/v1/apps/shop/deploys", json={"compose": compose})

    assert r.status_code == 400
    assert r.json() == {
        "error": "services.web.security_opt: no-new-privileges:false is not allowed (admin setting "
        "allow_new_privileges)",
        "field": "services.web.security_opt",
    }


@pytest.mark.parametrize("settings", [{"allow_new_privileges": True}], indirect=True)
def test_the_admin_setting_lets_a_service_turn_it_off(api: TestClient, platform: Platform) -> None:
    compose = "services:\n  web:\n    image: web:1\n    security_opt: ['no-new-privileges:false']\n"
    deploy(api, "shop", compose=compose)

    assert stored_service(platform)["security_opt"] == ["no-new-privileges=false"]


def test_swarm_services_get_the_limits() -> None:
    spec = harden(read_compose("services:\n  web:\n    image: a\n").spec, Hardening(64, GIB, True))
    req = ServiceRequest(
        platform="p1",
        app="shop",
        service=spec.services["web"],
        release=1,
        generation=0,
        replicas=1,
        image="i",
        environment={},
    )
    limits = service_spec(req, Rollout(ipvs=False), [], replicas=1, key="k")["task_template"]["Resources"]
    assert limits["Limits"] == {"Pids": 64, "MemoryBytes": GIB}


def platform_in(home: Path, backend: FakeBackend, **settings: Any) -> Platform:
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True)
    return build_platform(Settings(home=home, registry_enabled=False, **settings), parts)


def test_releases_stored_before_keep_running_after_the_upgrade(tmp_path: Path, backend: FakeBackend) -> None:
    before = platform_in(tmp_path, backend, default_pids_limit=0, default_memory=0, no_new_privileges=False)
    api = TestClient(create_app(before))
    api.headers["Authorization"] = f"Bearer {before.admin_token}"
    deploy(api, "shop", image="web:1")
    settle(before, backend)
    running = {iid: (i.release, i.state) for iid, i in backend.instances.items()}
    before.store.engine.dispose()

    after = platform_in(tmp_path, backend)  # the new defaults
    settle(after, backend)

    assert {iid: (i.release, i.state) for iid, i in backend.instances.items()} == running
    assert [r.service.pids_limit for r in backend.requests.values()] == [None]
