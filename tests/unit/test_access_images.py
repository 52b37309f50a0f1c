"""``GET /images`` with the private registry on lists what the caller may pull: the repositories of their
teams' apps, the platform's own (``mypaas/*``) and shared ones; the same policy as the registry's tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.registry.fake import FakeRegistry
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.teams import deploy_apps, make_cast, make_teams


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def platform(tmp_path: Path, backend: FakeBackend, registry: FakeRegistry) -> Platform:
    settings = Settings(home=tmp_path, registry_enabled=True, registry_addr="127.0.0.1:5999")
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, registry=registry)
    return build_platform(settings, parts)


def test_images_lists_the_repositories_the_caller_may_pull(
    api: TestClient, platform: Platform, registry: FakeRegistry
) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a", "blog": "b"})
    cast = make_cast(platform)
    for repo in ("shop/web", "blog/web", "mypaas/debian", "tools/curl"):
        registry.push(repo, "1", f"sha256:{repo.replace('/', '-')}", size=100)

    def repos(who: str) -> set[str]:
        r = cast.client(api, who).get("/api/v1/images")
        assert r.status_code == 200, r.text
        return {row["repository"] for row in r.json()}

    assert repos("viewer") == {"shop/web", "mypaas/debian", "tools/curl"}
    assert repos("other_deployer") == {"blog/web", "mypaas/debian", "tools/curl"}
    assert repos("admin") == {"shop/web", "blog/web", "mypaas/debian", "tools/curl"}
    assert cast.client(api, "pull").get("/api/v1/images").status_code == 403
