"""The audit log of a real running manager (uvicorn, its writer thread, the SQLite store): the CLI's
changes and a denied call are recorded with the client's address, the entries outlive a restart of the
manager, and no byte of the state store holds a secret's value in clear."""

from __future__ import annotations

import secrets

import pytest

from tests import kit

pytestmark = pytest.mark.integration

SECRET_VALUE = "Okapi-Lantern-5093-never-in-the-log"


def test_changes_and_denied_calls_are_recorded_and_kept_across_a_restart(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"audit-{secrets.token_hex(3)}"
    try:
        assert platform.cli("deploy", app, "--image", images["v1"], "--port", "80").code == 0
        assert platform.cli("secrets", "set", app, "db_password", stdin=SECRET_VALUE).code == 0
        assert platform.cli("scale", app, "web=2").code == 0
        assert (
            platform.raw("POST", f"/api/v1/apps/{app}/stop", headers={"Authorization": ""}).status_code == 401
        )

        platform.down()  # the manager writes what it holds before it stops
        platform.up()

        found = platform.cli("audit", "--app", app, "--json").json()
        assert [(e["action"], e["result"], e["status"]) for e in found] == [
            ("deploy", "ok", 202),
            ("set_secret", "ok", 202),
            ("scale", "ok", 200),
            ("stop", "denied", 401),
        ]
        assert {(e["user"], e["source"], e["team"]) for e in found[:3]} == {("admin", "127.0.0.1", "default")}
        assert (found[3]["user"], found[3]["team"]) == ("", "default")

        table = platform.cli("audit", "--app", app)
        assert table.code == 0 and table.out.splitlines()[0].split() == [
            "TIME",
            "USER",
            "TOKEN",
            "SOURCE",
            "ACTION",
            "APP/HOST",
            "RESULT",
        ]
        stored = b"".join(p.read_bytes() for p in platform.home.glob("state.db*"))
        assert SECRET_VALUE.encode() not in stored
    finally:
        platform.cli("rm", app, "--yes")
