"""Revocation against a real running manager (`mypaas up`, over HTTP): a token used a moment before is
refused on the very next request once revoked; after a restart with a replaced admin-token file, the old
admin token is refused too. The users, teams and tokens are made in the platform's own state store,
through the manager's Identity service (the manager checks every request there: no cache)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from mypaas.manager.identity.policy import Role
from tests import kit
from tests.integration.access import cli_as, identity_of

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_revoked_token_is_refused_on_the_next_request(platform: kit.Platform) -> None:
    name = f"ci-{secrets.token_hex(3)}"
    with identity_of(platform) as (ident, admin):
        made = ident.create_token(admin, name, team="default", role=Role.DEPLOYER)
        used = platform.raw("GET", "/api/v1/apps", headers=bearer(made.secret))
        assert used.status_code == 200, used.text
        assert cli_as(platform, made.secret, "ls").code == 0

        ident.revoke_token(admin, str(made.info["id"]))

        refused = platform.raw("GET", "/api/v1/apps", headers=bearer(made.secret))
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": f"token {name!r} was revoked", "field": "authorization"}
        shown = cli_as(platform, made.secret, "ls")
        assert shown.code == 1 and shown.err.strip() == f"error: token {name!r} was revoked", shown
        # the registry's token service asks the same store: no registry login with it either
        login = platform.raw("GET", "/api/v1/registry/token", auth=("ci", made.secret))
        assert login.status_code == 401 and login.json()["error"] == f"token {name!r} was revoked"
        (row,) = [t for t in ident.tokens(admin) if t["name"] == name]
        assert row["state"] == "revoked" and row["last_used"] is not None


def test_a_replaced_admin_token_file_retires_the_old_token_at_restart(platform: kit.Platform) -> None:
    old = platform.token
    new = "mp_" + secrets.token_urlsafe(32)
    platform.kill_manager()
    (platform.home / "admin-token").write_text(new + "\n")

    platform.up()  # the manager starts again with the new file

    refused = platform.raw("GET", "/api/v1/apps", headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid token", refused.text
    assert platform.raw("GET", "/api/v1/apps", headers=bearer(new)).status_code == 200
    shown = cli_as(platform, old, "ls")
    assert shown.code == 1 and shown.err.strip() == "error: invalid token", shown
    assert platform.cli("ls").code == 0  # the CLI on this machine reads the new file
    assert Path(platform.home / "admin-token").stat().st_mode & 0o777 == 0o600
