"""`mypaas deploy -f` with secrets and configs, and `mypaas secrets ls|set|rm`, through the real API over
the fake backend: values go from the user's files, shell and .env to the engine, and never come back
out in anything the CLI prints."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line

PASSWORD = "pw-from-stdin-91"
TOKEN = "token-from-a-file-17"
API_KEY = "key-from-the-shell-33"
SALT = "salt-from-dotenv-55"
VALUES = (PASSWORD, TOKEN, API_KEY, SALT)
COMPOSE = """
services:
  web:
    image: web:1
    secrets: [db_password, token, api_key, salt]
    configs: [{source: site, target: /etc/site.conf, mode: 0440}]
secrets:
  db_password: {external: true}
  token: {file: ./secrets/token.txt}
  api_key: {environment: API_KEY}
  salt: {environment: SALT}
configs:
  site: {content: "hello"}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token.txt").write_text(TOKEN)
    (tmp_path / ".env").write_text(f"SALT={SALT}\nAPI_KEY=not-this-one\n")
    (tmp_path / "compose.yml").write_text(COMPOSE)
    monkeypatch.setenv("API_KEY", API_KEY)  # the shell wins over .env, as in docker compose
    return tmp_path / "compose.yml"


def values_given(backend: FakeBackend) -> dict[str, bytes]:
    [files] = list(backend.secret_files.values())[-1:]
    return {f.name: f.data for f in files}


def test_set_before_the_first_deploy_then_deploy_sends_the_values(
    server: Server, manager: Platform, backend: FakeBackend, project: Path
) -> None:
    first = cli("secrets", "set", "shop", "db_password", stdin=PASSWORD.encode())
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "shop: secret db_password set"

    result = cli("deploy", "shop", "-f", str(project))

    assert result.exit_code == 0, result.output
    sent = server.body("POST", "/api/v1/apps/shop/deploys")["secret_values"]
    assert {k: base64.b64decode(v).decode() for k, v in sent.items()} == {
        "secrets.token": TOKEN,
        "secrets.api_key": API_KEY,
        "secrets.salt": SALT,
    }
    assert values_given(backend) == {
        "db_password": PASSWORD.encode(),
        "token": TOKEN.encode(),
        "api_key": API_KEY.encode(),
        "salt": SALT.encode(),
        "site": b"hello",
    }
    assert not any(value in result.output for value in VALUES)


def test_set_from_a_file_makes_a_release_and_ls_and_config_mask_everything(
    server: Server, manager: Platform, backend: FakeBackend, project: Path, tmp_path: Path
) -> None:
    cli("secrets", "set", "shop", "db_password", stdin=b"first")
    assert cli("deploy", "shop", "-f", str(project)).exit_code == 0
    (tmp_path / "pw.txt").write_text(PASSWORD)

    changed = cli("secrets", "set", "shop", "db_password", "--from-file", str(tmp_path / "pw.txt"))

    assert changed.exit_code == 0, changed.output
    assert values_given(backend)["db_password"] == PASSWORD.encode()
    releases = cli("releases", "shop", "--json").stdout
    assert [r["description"] for r in json.loads(releases)] == [
        "set secret db_password",
        "First deploy: web web:1",
    ]
    outputs = [
        changed.output,
        releases,
        cli("secrets", "ls", "shop").stdout,
        cli("secrets", "ls", "shop", "--json").stdout,
        cli("config", "shop").stdout,
        cli("ps", "shop", "--json").stdout,
        cli("events", "shop").stdout,
    ]
    for text in outputs:
        assert not any(value in text for value in VALUES), text
    config = cli("config", "shop").stdout
    assert "# secret db_password=******** (set as db_password; web:/run/secrets/db_password)" in config
    assert "# config site=******** (content; web:/etc/site.conf)" in config
    listing = cli("secrets", "ls", "shop").stdout
    assert "db_password" in listing and "********" in listing and "file ./secrets/token.txt" in listing


def test_a_missing_file_is_named_before_anything_is_sent(server: Server, project: Path) -> None:
    (project.parent / "secrets" / "token.txt").unlink()

    result = cli("deploy", "shop", "-f", str(project))

    assert one_error_line(result).startswith("error: secrets.token.file: './secrets/token.txt' not found at ")
    assert server.requests == []


def test_an_unset_variable_is_named(server: Server, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.parent / ".env").write_text("")
    monkeypatch.delenv("API_KEY")

    result = cli("deploy", "shop", "-f", str(project))

    assert one_error_line(result) == (
        "error: secrets.api_key.environment: the variable API_KEY is not set (in your shell or .env)"
    )
    assert server.requests == []


def test_rm_refused_while_mounted(server: Server, manager: Platform, project: Path) -> None:
    cli("secrets", "set", "shop", "db_password", stdin=b"x")
    assert cli("deploy", "shop", "-f", str(project)).exit_code == 0

    assert "remove it from the compose file and deploy first" in one_error_line(
        cli("secrets", "rm", "shop", "db_password")
    )
    cli("secrets", "set", "shop", "spare", stdin=b"y")
    assert cli("secrets", "rm", "shop", "spare").stdout.strip() == "shop: secret spare removed"


def test_set_never_takes_the_value_from_the_arguments(server: Server) -> None:
    result = cli("secrets", "set", "shop", "db_password", PASSWORD)
    assert one_error_line(result).startswith("error: a secret's value is never taken from the command line")
    assert PASSWORD not in result.output and server.requests == []
    help_text = " ".join(cli("secrets", "set", "--help").stdout.split())
    assert "stdin" in help_text and "the shell keeps them in its history" in help_text


def test_an_empty_value_is_refused(server: Server) -> None:
    assert "empty" in one_error_line(cli("secrets", "set", "shop", "db_password", stdin=b""))


def test_a_deploy_without_secret_values_to_send_stays_light(tmp_path: Path) -> None:
    """Reading the values needs the compose reader's helpers (the domain's models): only a file
    with a ``file`` or ``environment`` secret pays for them."""
    import subprocess
    import sys

    (tmp_path / "compose.yml").write_text(
        "services:\n  web: {image: web:1, secrets: [a]}\nsecrets:\n  a: {external: true}\n"
        "configs:\n  c: {content: hi}\n"
    )
    code = (
        "import sys; from pathlib import Path; from mypaas.cli.deploy import compose_payload; "
        f"compose_payload(Path({str(tmp_path / 'compose.yml')!r}), None); "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert [m for m in loaded if m.startswith(("mypaas.domain", "pydantic"))] == []


def test_the_cli_size_limit_is_the_domains() -> None:
    from mypaas.cli.secret_files import MAX_BYTES
    from mypaas.domain import MAX_SECRET_BYTES

    assert MAX_BYTES == MAX_SECRET_BYTES
