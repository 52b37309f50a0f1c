"""Upgrading a platform the previous version made (schema 0009: one admin token and the hosts' pull
token in the ``tokens`` table, apps without teams): its admin token is the platform admin's, every app is
in the team "default", the pull token still only pulls, and the migration goes back down to 0009. A new
platform starts with the user "admin" owning the team "default"."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mypaas.api.app import create_app
from mypaas.composer.fake import FakeBackend
from mypaas.errors import BackendError, Unauthorized
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state import db
from mypaas.manager.state.sealed import use_sealer
from mypaas.manager.vault import Cipher
from mypaas.registry.tokens import Access
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import change, deploy, settle

ADMIN = "mp_the-admin-token-of-a-platform-made-by-0-x"
OLD_ADMIN = "mp_an-admin-token-whose-file-was-replaced-long-ago"
PULL = "mp_the-hosts-pull-token-of-0-x"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def old_platform(home: Path, backend: FakeBackend) -> None:
    """What 0.x left in ``home``: its state store at 0009 with two apps (a release each), the admin token
    (and an older one, as 0.x kept every admin token it saw), the pull token, and their files."""
    engine = db.open_engine(f"sqlite:///{home / 'state.db'}")
    db.migrate(engine, "0009")
    now = time.time()
    image = backend.add_image("web:1", exposed=(80,)).id
    with engine.begin() as conn:
        for name in ("shop", "blog"):
            conn.execute(
                text(
                    "INSERT INTO apps (name, state, target_version, target_generation, current_version,"
                    " current_generation, backend, remove_volumes, remove_force, created_at, updated_at)"
                    " VALUES (:name, 'running', 1, 0, 1, 0, 'docker', 0, 0, :now, :now)"
                ),
                {"name": name, "now": now},
            )
            app_id = conn.execute(text("SELECT id FROM apps WHERE name = :n"), {"n": name}).scalar()
            spec = {"services": {"web": {"name": "web", "image": "web:1", "image_id": image}}}
            conn.execute(
                text(
                    "INSERT INTO releases (app_id, version, spec, config, images, description, status,"
                    " created_by, created_at) VALUES (:app, 1, :spec, '{}', '{}', 'deploy web:1',"
                    " 'active', 'admin-0a1b2c', :now)"
                ),
                {"app": app_id, "spec": json.dumps(spec), "now": now},
            )
            conn.execute(
                text("INSERT INTO formation (app_id, service, replicas) VALUES (:app, 'web', 2)"),
                {"app": app_id},
            )
            conn.execute(
                text("INSERT INTO domains (domain, app_id, created_at) VALUES (:d, :app, :now)"),
                {"d": f"{name}.example.com", "app": app_id, "now": now},
            )
        for name, token, role in (
            ("admin-0a1b2c", ADMIN, "admin"),
            ("admin-9f8e7d", OLD_ADMIN, "admin"),
            ("pull-3c4d5e", PULL, "pull"),
        ):
            conn.execute(
                text("INSERT INTO tokens (name, digest, role, created_at) VALUES (:n, :d, :r, :now)"),
                {"n": name, "d": sha(token), "r": role, "now": now},
            )
    engine.dispose()
    (home / "admin-token").write_text(ADMIN + "\n")
    (home / "registry-pull-token").write_text(PULL + "\n")


def new_platform(home: Path, backend: FakeBackend) -> Platform:
    settings = Settings(home=home, registry_enabled=False)
    return build_platform(settings, Components(backend=backend, router=FakeRouter(), probe=lambda _: True))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_upgraded_platform_keeps_its_admin_token_apps_and_pull_token(tmp_path: Path) -> None:
    backend = FakeBackend()
    old_platform(tmp_path, backend)

    platform = new_platform(tmp_path, backend)

    assert db.current_revision(platform.store.engine) == db.SCHEMA_HEAD
    assert platform.admin_token == ADMIN and (tmp_path / "admin-token").read_text().strip() == ADMIN
    who = platform.identity.identify(f"Bearer {ADMIN}")
    assert (who.user, who.admin, dict(who.roles), who.app) == ("admin", True, {"default": Role.OWNER}, None)
    assert platform.identity.app_teams() == {"shop": "default", "blog": "default"}
    api = TestClient(create_app(platform))
    apps = api.get("/api/v1/apps", headers=bearer(ADMIN))
    assert apps.status_code == 200, apps.text
    assert sorted(a["name"] for a in apps.json()) == ["blog", "shop"]
    releases = api.get("/api/v1/apps/shop/releases", headers=bearer(ADMIN))
    assert releases.status_code == 200 and [r["version"] for r in releases.json()] == [1], releases.text
    # what refers to an app survived its table being rebuilt by the migration (no cascade)
    shop = api.get("/api/v1/apps/shop", headers=bearer(ADMIN)).json()
    assert shop["domains"] == ["shop.example.com"] and shop["services"]["web"]["replicas"] == 2, shop
    assert api.get("/api/v1/hosts", headers=bearer(ADMIN)).status_code == 200  # a platform admin's
    # the token of an admin-token file replaced before the upgrade is retired at the first start
    with pytest.raises(Unauthorized, match="invalid token"):
        platform.identity.identify(f"Bearer {OLD_ADMIN}")
    # the hosts keep pulling with the token they have: pull only, refused by the API
    assert platform.identity.ensure_pull_token(tmp_path / "registry-pull-token") == PULL
    puller = platform.identity.principal_of(PULL)
    assert puller.pull_only and puller.best_role is None
    _, granted = platform.identity.registry_grant(
        PULL,
        [Access("repository", "shop/web", ("pull", "push", "delete")), Access("registry", "catalog", ("*",))],
    )
    assert [a.actions for a in granted] == [("pull",), ()]
    refused = api.get("/api/v1/apps", headers=bearer(PULL))
    assert refused.status_code == 403, refused.text
    assert refused.json() == {
        "error": "this token can only pull images from the registry",
        "field": "authorization",
    }


def test_the_upgrade_goes_back_down_to_0009_and_up_again(tmp_path: Path) -> None:
    backend = FakeBackend()
    old_platform(tmp_path, backend)
    new_platform(tmp_path, backend).store.engine.dispose()
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    use_sealer(engine, Cipher.from_file(tmp_path / "secrets.key"))  # 0011 decrypts the config vars

    db.migrate(engine, "0009", down=True)

    assert db.current_revision(engine) == "0009"
    with engine.connect() as conn:
        tokens = {(d, r) for d, r in conn.execute(text("SELECT digest, role FROM tokens"))}
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(apps)"))}
        tables = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
    assert tokens == {(sha(ADMIN), "admin"), (sha(PULL), "pull")}
    assert "team_id" not in columns and not tables & {"teams", "users", "members", "access_tokens", "audit"}
    engine.dispose()

    again = new_platform(tmp_path, backend)  # and up again: the same admin, the same teams
    assert again.identity.identify(f"Bearer {ADMIN}").admin
    assert again.identity.app_teams() == {"shop": "default", "blog": "default"}


def test_a_new_platform_has_the_user_admin_owning_the_team_default(tmp_path: Path) -> None:
    platform = new_platform(tmp_path, FakeBackend())

    assert oct((tmp_path / "admin-token").stat().st_mode & 0o777) == "0o600"
    who = platform.identity.identify(f"Bearer {platform.admin_token}")
    assert (who.user, who.admin, dict(who.roles)) == ("admin", True, {"default": Role.OWNER})
    users = platform.identity.users()
    assert [(u["name"], u["admin"], u["teams"]) for u in users] == [("admin", True, {"default": "owner"})]
    assert [(t["name"], t["members"]) for t in platform.identity.teams(who)] == [
        ("default", {"admin": "owner"})
    ]


def test_a_migration_that_leaves_dangling_rows_is_rolled_back(tmp_path: Path) -> None:
    db.open_store(tmp_path / "state.db")
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute(
            "INSERT INTO releases (app_id, version, spec, config, images, description, status, created_by,"
            " created_at) VALUES (999, 1, '{}', '{}', '{}', '', 'active', '', 0)"
        )
        raw.execute("PRAGMA foreign_keys=ON")

    with pytest.raises(BackendError, match="left rows that refer to nothing"):
        db.migrate(engine, "0009", down=True)

    assert db.current_revision(engine) == db.SCHEMA_HEAD  # nothing of the migration stayed
    engine.dispose()


def test_the_upgrade_rolls_nothing_out(tmp_path: Path) -> None:
    """Apps running before the upgrade keep their instances: the first reconcile passes after it change
    nothing on the engine (the releases, their specs and the formation are all still there)."""
    backend = FakeBackend()
    backend.add_image("web:1", exposed=(80,))
    before = new_platform(tmp_path, backend)
    api = TestClient(create_app(before))
    api.headers.update(bearer(before.admin_token))
    deploy(api, "shop", image="web:1")
    change(api, "PUT", "apps/shop/scale", {"replicas": {"web": 2}})
    settle(before, backend)
    running = {iid: (i.release, i.state) for iid, i in backend.instances.items()}
    assert len(running) == 2
    before.store.engine.dispose()
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    use_sealer(engine, Cipher.from_file(tmp_path / "secrets.key"))
    db.migrate(engine, "0009", down=True)  # the store as the previous version had it
    engine.dispose()

    after = new_platform(tmp_path, backend)
    settle(after, backend)

    assert {iid: (i.release, i.state) for iid, i in backend.instances.items()} == running
    assert after.identity.app_teams() == {"shop": "default"}
