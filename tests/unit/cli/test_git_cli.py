"""`mypaas user key add|ls|rm` and `mypaas git remote` against the real API over the fake backend: what
the user reads, and one `error:` line for a private key, a binary file, a key already registered, a
missing file, a remote already there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from tests.unit.cli.support import Server, cli, deploy, one_error_line


def _keys(folder: Path) -> tuple[Path, Path]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = folder / "id_ed25519"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    public = folder / "id_ed25519.pub"
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public.write_text(line.decode() + " me@laptop\n")
    return private, public


def test_user_keys(server: Server, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    added = cli("user", "key", "add", "admin", str(public))
    assert added.exit_code == 0, added.output
    assert "added key SHA256:" in added.stdout and "(ssh-ed25519, me@laptop) for admin" in added.stdout
    assert "already registered" in one_error_line(cli("user", "key", "add", "admin", str(public)))
    assert "private key" in one_error_line(cli("user", "key", "add", "admin", str(private)))
    (tmp_path / "blob").write_bytes(b"\x00\xff\xfe binary")
    assert "not a public key file" in one_error_line(
        cli("user", "key", "add", "admin", str(tmp_path / "blob"))
    )
    assert "cannot read" in one_error_line(cli("user", "key", "add", "admin", str(tmp_path / "nope.pub")))
    listed = cli("user", "key", "ls", "admin")
    assert "me@laptop" in listed.stdout and "FINGERPRINT" in listed.stdout
    [key] = json.loads(cli("user", "key", "ls", "admin", "--json").stdout)
    removed = cli("user", "key", "rm", "admin", key["fingerprint"])
    assert removed.exit_code == 0 and "removed key" in removed.stdout
    assert "no keys for admin" in cli("user", "key", "ls", "admin").stdout


def test_git_remote(server: Server, api: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = cli("git", "remote", "web")
    assert shown.exit_code == 0 and shown.stdout.strip() == "ssh://git@localhost:2222/web.git"
    assert "no app named 'web'" in one_error_line(cli("git", "remote", "web", "--branch", "prod"))
    assert "invalid app name" in one_error_line(cli("git", "remote", "Web_App"))
    deploy(api, "web", image="web:1")
    set_branch = cli("git", "remote", "web", "--branch", "prod")
    assert set_branch.exit_code == 0 and "pushes to prod deploy web" in set_branch.stdout
    assert json.loads(cli("git", "remote", "web", "--json").stdout)["branches"] == ["prod"]
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    assert cli("git", "remote", "web", "--add").exit_code == 0
    got = subprocess.run(["git", "remote", "get-url", "mypaas"], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "ssh://git@localhost:2222/web.git"
    assert "already exists" in one_error_line(cli("git", "remote", "other", "--add"))
