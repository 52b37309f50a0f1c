"""Config vars are encrypted at rest: the state store's file never holds a value in clear (the key is in
``secrets_key_file``, apart from it); the API and the engine still get the values; an upgrade from a
store of schema 0010 encrypts the releases already there and rolls nothing out."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.errors import BackendError
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state import db
from mypaas.manager.state.sealed import use_sealer
from mypaas.manager.vault import Cipher
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import change, deploy, settle

VALUE = "hunter2-the-database-password"
IN_COMPOSE = "sk-an-api-key-in-the-compose-file"
COMPOSE = f"services:\n  web:\n    image: web:1\n    environment:\n      API_KEY: {IN_COMPOSE}\n"


def platform_in(home: Path, backend: FakeBackend, key: Path | None = None) -> Platform:
    settings = Settings(home=home, registry_enabled=False, secrets_key_file=key)
    return build_platform(settings, Components(backend=backend, router=FakeRouter(), probe=lambda _: True))


def raw_store(home: Path) -> bytes:
    """The bytes of the state store's files as a thief copying them would get."""
    return b"".join(p.read_bytes() for p in home.glob("state.db*"))


def app_with_config(p: Platform, backend: FakeBackend) -> TestClient:
    api = TestClient(create_app(p))
    api.headers["Authorization"] = f"Bearer {p.admin_token}"
    deploy(api, "shop", compose=COMPOSE)
    change(api, "PATCH", "apps/shop/config", {"set": {"DB_PASSWORD": VALUE}})
    settle(p, backend)
    return api


@pytest.fixture
def backend() -> FakeBackend:
    backend = FakeBackend()
    backend.add_image("web:1", exposed=(80,))
    return backend


def test_a_config_value_is_not_in_the_database_file(tmp_path: Path, backend: FakeBackend) -> None:
    key = tmp_path / "elsewhere" / "platform.key"
    key.parent.mkdir()
    p = platform_in(tmp_path / "home", backend, key)
    api = app_with_config(p, backend)

    assert api.get("/api/v1/apps/shop/config").json() == {"DB_PASSWORD": VALUE}
    env = [r.environment for r in backend.requests.values()]
    assert [(e.get("DB_PASSWORD"), e.get("API_KEY")) for e in env] == [(VALUE, IN_COMPOSE)]
    for raw in (raw_store(tmp_path / "home"), p.store.engine.dispose() or raw_store(tmp_path / "home")):
        assert VALUE.encode() not in raw and IN_COMPOSE.encode() not in raw
    assert key.exists() and not (tmp_path / "home" / "secrets.key").exists()


def test_the_store_cannot_be_read_with_another_key(tmp_path: Path, backend: FakeBackend) -> None:
    p = platform_in(tmp_path, backend)
    app_with_config(p, backend)
    p.store.engine.dispose()
    (tmp_path / "secrets.key").rename(tmp_path / "lost.key")

    with pytest.raises(BackendError, match="cannot be decrypted"):
        platform_in(tmp_path, backend).releases.config("shop")


def test_an_upgrade_from_0010_encrypts_the_config_and_rolls_nothing_out(
    tmp_path: Path, backend: FakeBackend
) -> None:
    before = platform_in(tmp_path, backend)
    app_with_config(before, backend)
    running = {iid: (i.release, i.state) for iid, i in backend.instances.items()}
    before.store.engine.dispose()
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    use_sealer(engine, Cipher.from_file(tmp_path / "secrets.key"))
    db.migrate(engine, "0010", down=True)  # the store as 0010 left it: config vars in clear
    engine.dispose()
    assert VALUE.encode() in raw_store(tmp_path) and IN_COMPOSE.encode() in raw_store(tmp_path)

    after = platform_in(tmp_path, backend)
    settle(after, backend)

    assert {iid: (i.release, i.state) for iid, i in backend.instances.items()} == running
    assert after.releases.config("shop") == {"DB_PASSWORD": VALUE}
    after.store.engine.dispose()
    assert VALUE.encode() not in raw_store(tmp_path) and IN_COMPOSE.encode() not in raw_store(tmp_path)
