"""A name from a query or a path that reaches the registry's or the engine's URL is checked first: a
non-ASCII, control or path-like name is refused 400 naming the parameter, never a 500 or a 502 (nor a
request to another of the registry's endpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.manager.platform import Components, build_platform
from mypaas.registry.client import RegistryClient
from mypaas.registry.tokens import TokenIssuer, parse_scope
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings

BAD_NAMES = ["café", "shop\n", "shop\x00", "../_catalog", "a b", "Shop", "shop/", "x" * 300]


class _Distribution:
    """Answers as Distribution does: a repository name it cannot parse is 400 NAME_INVALID, an unknown
    one 404. Keeps the paths asked."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/tags/list") and request.url.path.count("..") == 0:
            return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
        return httpx.Response(400, json={"errors": [{"code": "NAME_INVALID"}]})


@pytest.fixture
def distribution() -> _Distribution:
    return _Distribution()


@pytest.fixture
def api(tmp_path: Path, distribution: _Distribution) -> Iterator[TestClient]:
    """The API with the registry turned on, its HTTP API the real client over ``distribution``."""
    client = RegistryClient("http://127.0.0.1:5000", TokenIssuer(tmp_path / "issuer"))
    client._http = httpx.Client(transport=httpx.MockTransport(distribution))
    nodes = FakeNodes()
    parts = Components(
        backend=FakeBackend(), router=FakeRouter(), probe=lambda _: True, nodes=lambda: nodes, registry=client
    )
    platform = build_platform(Settings(home=tmp_path), parts)
    test_client = TestClient(create_app(platform))
    test_client.headers["Authorization"] = f"Bearer {platform.admin_token}"
    yield test_client


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_invalid_repository_name_is_refused_before_the_registry(
    api: TestClient, distribution: _Distribution, name: str
) -> None:
    answer = api.get("/api/v1/images", params={"repository": name})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "repository"
    assert "invalid repository name" in answer.json()["error"]
    assert distribution.paths == []  # the registry never saw it


def test_a_valid_unknown_repository_is_404(api: TestClient) -> None:
    answer = api.get("/api/v1/images", params={"repository": "shop/web"})
    assert answer.status_code == 404 and answer.json()["field"] == "repository"


def test_a_name_that_cannot_be_in_a_url_is_the_callers_error(tmp_path: Path) -> None:
    client = RegistryClient("http://127.0.0.1:5000", TokenIssuer(tmp_path))
    with pytest.raises(Exception, match="not a valid registry name") as caught:
        client.tags("shop\nweb")
    assert getattr(caught.value, "status", None) == 400


@pytest.mark.parametrize("name", ["café", "vol\n", "a b", "-rf", ".hidden", "x?force=1"])
def test_an_invalid_volume_name_is_refused_before_the_engine(api: TestClient, name: str) -> None:
    answer = api.delete(f"/api/v1/volumes/{quote(name, safe='')}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "name"


def test_a_registry_scope_is_matched_whole() -> None:
    assert parse_scope("repository:shop/web:pull,push").name == "shop/web"
    with pytest.raises(Exception, match="invalid scope"):
        parse_scope("repository:shop/web:pull\npush")
