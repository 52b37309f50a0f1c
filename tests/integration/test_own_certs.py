"""Issue 13, slice G, on the real engine and Caddy: a user's own certificate (`mypaas certs add`).

The test makes a CA of its own with ``cryptography`` and a certificate it signs for a custom domain; once
added, a client that trusts only that CA gets the app over HTTPS with that certificate, HTTP requests for
the domain redirect to HTTPS, and `domains ls` says whose certificate it is.
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import kit
from tests.certmaker import OwnCA
from tests.integration.test_https import Pebble, acme_platform, https_get

__all__ = ["acme_platform"]  # the fixture: a platform whose ACME CA is pebble

pytestmark = pytest.mark.integration


def test_a_client_trusting_the_users_ca_gets_the_app_with_that_certificate(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app, domain = f"own-{secrets.token_hex(3)}", f"shop-{secrets.token_hex(3)}.example.com"
    own = OwnCA.make("Slice G Own CA")
    cert, key = own.issue([domain])
    (tmp_path / "chain.pem").write_text(cert)
    (tmp_path / "key.pem").write_text(key)
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        assert platform.cli("domains", "add", app, domain).code == 0
        added = platform.cli(
            "certs",
            "add",
            app,
            domain,
            "--cert",
            str(tmp_path / "chain.pem"),
            "--key",
            str(tmp_path / "key.pem"),
        )
        assert added.code == 0, added.err
        assert added.out.startswith(f"{app}: {domain} served with your certificate (issuer Slice G Own CA")

        def served() -> httpx.Response | None:
            with contextlib.suppress(httpx.HTTPError, ssl.SSLError):
                answer = https_get(platform.router_https_port, domain, own.pem)
                return answer if answer.status_code == 200 else None
            return None

        assert kit.wait_until(served, timeout=30).text == "version one\n"

        def redirected() -> httpx.Response | None:
            plain = httpx.get(
                f"http://127.0.0.1:{platform.router_port}/a", headers={"Host": domain}, trust_env=False
            )
            return plain if plain.status_code == 308 else None

        location = kit.wait_until(redirected, timeout=20).headers["location"]
        assert location == f"https://{domain}:{platform.router_https_port}/a"
        [row] = platform.cli("domains", "ls", app, "--json").json()
        assert (row["certificate"], row["issuer"], row["error"]) == ("user", "Slice G Own CA", None)
        assert key.splitlines()[1] not in platform.cli("certs", "ls", "--json").out
    finally:
        platform.cli("rm", app, "--yes")


def test_domains_ls_shows_the_acme_certificate_caddy_stored(
    acme_platform: tuple[kit.Platform, Pebble], images: dict[str, str]
) -> None:
    """With pebble as the ACME CA: once Caddy stored the domain's certificate, `domains ls` reads it."""
    platform, _ = acme_platform
    app, domain = f"acme-{secrets.token_hex(3)}", f"{secrets.token_hex(3)}.test"
    try:
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        assert platform.cli("domains", "add", app, domain).code == 0

        def listed() -> dict[str, Any] | None:
            [row] = platform.cli("domains", "ls", app, "--json").json()
            return row if row["certificate"] == "acme" else None

        row = kit.wait_until(listed, timeout=30)
        assert row["issuer"].startswith("Pebble Intermediate CA") and row["error"] is None
        assert row["ca"] and row["expires"]
        table = platform.cli("domains", "ls", app).out.splitlines()
        assert table[0].split() == ["DOMAIN", "CERTIFICATE", "ISSUER", "EXPIRES", "ERROR"]
        assert table[1].split()[:2] == [domain, "acme"]
        print("\n".join(table))
    finally:
        platform.cli("rm", app, "--yes")
