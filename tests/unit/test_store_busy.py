"""A write that waits past the state store's busy timeout for another's lock (SQLite's "database is
locked", under heavy load) is a 503 with a JSON body and Retry-After, not a 500; nothing is written. The
lock is a real one: a second connection to the same file holds the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.errors import Unavailable, error_for_status
from mypaas.manager.state import db
from mypaas.manager.state.db import open_store
from mypaas.manager.state.models import TeamRow
from mypaas.manager.vault.crypto import Cipher
from mypaas.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 100)  # read as each connection opens: before the platform's
    return Settings(home=tmp_path, registry_enabled=False)


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another connection holding the store's write lock (as a long write elsewhere would)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.usefixtures("settings")  # the short busy timeout
def test_a_write_that_finds_the_store_locked_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = open_store(path, Cipher(bytes(32)))
    with write_locked(path), pytest.raises(Unavailable) as caught, store.sessions.begin() as s:
        s.add(TeamRow(name="ops"))

    assert caught.value.status == 503 and caught.value.retry_after == 1
    assert "the state store is busy" in caught.value.message
    with store.sessions() as s:
        assert s.query(TeamRow).filter_by(name="ops").count() == 0  # nothing half-written
        s.add(TeamRow(name="ops"))  # and once the lock is gone, the same write goes through
        s.commit()
    assert error_for_status(503) is Unavailable  # what the CLI raises for the answer


def test_the_api_answers_503_with_retry_after(api: TestClient, settings: Settings) -> None:
    assert api.get("/api/v1/teams").status_code == 200  # the token's last use is noted now, not below
    with write_locked(settings.db_path):
        r = api.post("/api/v1/teams", json={"name": "ops"})
        listed = api.get("/api/v1/apps")  # reads go on meanwhile (the token check too)

    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"].startswith("the state store is busy")
    assert listed.status_code == 200
    assert "ops" not in [t["name"] for t in api.get("/api/v1/teams").json()]
    assert api.post("/api/v1/teams", json={"name": "ops"}).status_code == 201


def test_a_token_check_that_finds_the_store_locked_is_503_too(api: TestClient, settings: Settings) -> None:
    with write_locked(settings.db_path):  # the token's first use is written down: that write waits
        r = api.get("/api/v1/teams")

    assert (r.status_code, r.headers.get("retry-after")) == (503, "1")
    assert r.json()["error"].startswith("the state store is busy")


def test_503_is_documented_where_the_store_is_opened(api: TestClient) -> None:
    spec = api.get("/api/v1/openapi.json").json()

    assert "503" in spec["paths"]["/api/v1/teams"]["post"]["responses"]
    assert "503" in spec["paths"]["/api/v1/apps"]["get"]["responses"]
    assert "503" not in spec["paths"]["/api/v1/health"]["get"]["responses"]
