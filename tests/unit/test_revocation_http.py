"""Revocation takes effect on the next request, against the manager's API served by uvicorn on a loopback
port (the fake backend: no engine needed; tests/integration/test_revocation.py does the same against
`mypaas up`). The revocation is made through another connection to the state store, as `mypaas token
revoke` or another manager would: nothing the serving process holds in memory may keep the token alive."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from mypaas.api.app import create_app
from mypaas.cli import client as client_module
from mypaas.composer.fake import FakeBackend
from mypaas.manager.identity.policy import Role
from mypaas.manager.identity.service import Identity
from mypaas.manager.platform import Components, build_platform
from mypaas.manager.state.db import open_store
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.kit import free_port
from tests.unit.cli.support import cli, isolate, one_error_line


@contextlib.contextmanager
def manager(home: Path) -> Iterator[httpx.Client]:
    """The manager's API over HTTP (a platform over the fake backend, built from ``home`` as at a start)."""
    settings = Settings(home=home, registry_enabled=False)
    platform = build_platform(
        settings, Components(backend=FakeBackend(), router=FakeRouter(), probe=lambda _: True)
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=10) as client:
            for _ in range(200):
                if server.started:
                    break
                thread.join(0.05)
            assert server.started, "the API did not start"
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        platform.store.engine.dispose()


@contextlib.contextmanager
def store_identity(home: Path) -> Iterator[Identity]:
    """The Identity service over another connection to the same state store."""
    store = open_store(home / "state.db")
    try:
        yield Identity(store.sessions)
    finally:
        store.engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_used_a_moment_before_is_refused_right_after_its_revocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with manager(tmp_path) as api, store_identity(tmp_path) as ident:
        admin = ident.principal_of((tmp_path / "admin-token").read_text().strip())
        made = ident.create_token(admin, "ci", team="default", role=Role.DEPLOYER)
        assert api.get("/api/v1/apps", headers=bearer(made.secret)).status_code == 200
        isolate(monkeypatch, tmp_path / "cli")
        monkeypatch.setenv("MYPAAS_URL", str(api.base_url).rstrip("/"))
        monkeypatch.setenv("MYPAAS_TOKEN", made.secret)
        listed = cli("ls")
        assert listed.exit_code == 0, listed.output

        ident.revoke_token(admin, str(made.info["id"]))

        refused = api.get("/api/v1/apps", headers=bearer(made.secret))
        assert refused.status_code == 401
        assert refused.json() == {"error": "token 'ci' was revoked", "field": "authorization"}
        assert one_error_line(cli("ls")) == "error: token 'ci' was revoked"
        client_module.settings.cache_clear()
        (row,) = ident.tokens(admin, user="admin")[-1:]
        assert (row["name"], row["state"], row["last_used_from"]) == ("ci", "revoked", "127.0.0.1")


def test_a_replaced_admin_token_file_retires_the_old_token_at_the_next_start(tmp_path: Path) -> None:
    with manager(tmp_path) as api:
        old = (tmp_path / "admin-token").read_text().strip()
        assert api.get("/api/v1/hosts", headers=bearer(old)).status_code == 200
    new = "mp_" + secrets.token_urlsafe(32)
    (tmp_path / "admin-token").write_text(new + "\n")

    with manager(tmp_path) as api:
        refused = api.get("/api/v1/hosts", headers=bearer(old))
        assert refused.status_code == 401 and refused.json()["error"] == "invalid token", refused.text
        assert api.get("/api/v1/hosts", headers=bearer(new)).status_code == 200
