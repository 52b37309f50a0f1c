"""GET /api/v1/apps costs the same number of queries however many apps there are (one for the listing,
the token's), and the caller's token is read once per request (by the body-limits middleware; the
route's access check takes the caller it found). Real API over the fake backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import deploy, settle


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def statements(platform: Platform) -> Iterator[list[str]]:
    """Every SQL statement the store runs from here on."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_: object) -> None:
        seen.append(sql)

    engine = platform.store.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def listed(api: TestClient, statements: list[str]) -> tuple[list[dict[str, object]], list[str]]:
    statements.clear()
    r = api.get("/api/v1/apps")
    assert r.status_code == 200, r.text
    return r.json(), [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_listing_more_apps_costs_no_more_queries(
    api: TestClient, platform: Platform, backend: FakeBackend, statements: list[str]
) -> None:
    for name in ("shop", "blog"):
        deploy(api, name, image="web:1")
    settle(platform, backend)
    apps, few = listed(api, statements)
    assert [a["name"] for a in apps] == ["blog", "shop"]
    for n in range(6):
        deploy(api, f"app{n}", image="web:1")
    settle(platform, backend)

    apps, many = listed(api, statements)

    assert len(apps) == 8 and len(many) == len(few)
    assert sum("FROM access_tokens" in s for s in many) == 1  # the token, read once
    shop = next(a for a in apps if a["name"] == "shop")
    assert shop["desired"] == 1 and shop["instances"] == 1 and shop["ready"] == 1
    assert shop["team"] == "default" and shop["url"] == "http://shop.localhost"


def test_a_stopped_app_desires_nothing(api: TestClient, platform: Platform, backend: FakeBackend) -> None:
    deploy(api, "shop", image="web:1")
    settle(platform, backend)
    assert api.post("/api/v1/apps/shop/stop").status_code == 200
    settle(platform, backend)

    [shop] = api.get("/api/v1/apps").json()

    assert (shop["state"], shop["desired"], shop["instances"]) == ("stopped", 0, 0)
