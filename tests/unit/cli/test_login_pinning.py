"""`mypaas login https://...` against the real API served over TLS (uvicorn, the platform CA's server
certificate, on loopback): the platform CA's fingerprint shown and trusted on first use or with
--fingerprint, pinned with the credentials, and a changed certificate refused with one line."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from argon2 import PasswordHasher

from mypaas.api import identity as identity_api
from mypaas.api.app import create_app
from mypaas.cli import credentials
from mypaas.manager.identity import passwords
from mypaas.manager.identity.policy import Role
from mypaas.manager.pki import PlatformCA, ServerFiles
from mypaas.manager.platform import Platform
from tests.unit.cli.support import cli, one_error_line

PW = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    async def pause(seconds: float) -> None:
        return None

    monkeypatch.setattr(identity_api, "pause", pause)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _served(platform: Platform, files: ServerFiles, port: int) -> Iterator[str]:
    """The platform's API over TLS at https://127.0.0.1:PORT, with ``files``' certificate."""
    config = uvicorn.Config(
        create_app(platform),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the TLS API did not start")
            thread.join(0.02)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def alice(platform: Platform) -> Platform:
    platform.identity.add_user("alice", PW)
    platform.identity.add_member("default", "alice", Role.parse("deployer"))
    return platform


def _login(url: str, *extra: str) -> object:
    return cli("login", url, "--user", "alice", "--password-stdin", *extra, stdin=f"{PW}\n".encode())


def test_login_shows_the_ca_fingerprint_and_needs_it_confirmed(alice: Platform) -> None:
    files = alice.pki.ensure(["127.0.0.1"])
    expected = alice.pki.fingerprint()
    with _served(alice, files, _free_port()) as url:
        result = _login(url)
        assert one_error_line(result) == (  # type: ignore[arg-type]
            f"error: the platform CA of {url} is new: its fingerprint is {expected}; check it (`mypaas"
            f" status` on the manager shows it), then pass --fingerprint {expected}"
        )
        assert credentials.stored() is None

        wrong = "SHA256:" + "0" * 64
        refused = _login(url, "--fingerprint", wrong)
        assert one_error_line(refused) == (  # type: ignore[arg-type]
            f"error: refused: the platform CA of {url} is {expected}, not {wrong} (--fingerprint)"
        )

        done = _login(url, "--fingerprint", expected.upper().replace("SHA256:", "sha256:"))
        assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
        assert f"logged in to {url} as alice" in done.stdout  # type: ignore[attr-defined]
        saved = credentials.stored()
        assert saved is not None and saved.ca == alice.pki.ca_pem()
        assert json.loads(credentials.path().read_text())["ca"] == alice.pki.ca_pem()

        who = cli("whoami")  # every call after verifies the server against the pinned CA
        assert who.exit_code == 0, who.output
        assert "user:   alice" in who.stdout


def test_a_changed_certificate_is_refused_with_one_line(alice: Platform, tmp_path: Path) -> None:
    files = alice.pki.ensure(["127.0.0.1"])
    port = _free_port()
    with _served(alice, files, port) as url:
        assert _login(url, "--fingerprint", alice.pki.fingerprint()).exit_code == 0  # type: ignore[attr-defined]
    # the same address now shows a certificate of another CA (a machine in between, or a new platform)
    other = PlatformCA(tmp_path / "other").ensure(["127.0.0.1"])
    with _served(alice, other, port) as url:
        result = cli("whoami")
        assert one_error_line(result) == (
            f"error: refused: the certificate of {url} is not signed by the CA this CLI trusts"
            f" (pinned at login: {alice.pki.fingerprint()}): it changed, or something is in between;"
            f" if the platform's CA was replaced on purpose, `mypaas login {url}` again"
        )
        # logging in again: the server offers the pinned CA, which did not sign its certificate: no
        # password is sent (a machine in between replaying the real CA gets nothing)
        again = _login(url)
        assert one_error_line(again) == one_error_line(result)  # type: ignore[arg-type]
        saved = credentials.stored()
        assert saved is not None and saved.ca == alice.pki.ca_pem()  # still the first pin


def test_a_plain_http_login_takes_no_fingerprint() -> None:
    result = cli("login", "http://127.0.0.1:1", "--user", "a", "--fingerprint", "SHA256:" + "a" * 64)
    assert (
        one_error_line(result)
        == "error: --fingerprint is for an https:// API; http://127.0.0.1:1 is plain http"
    )
