"""`mypaas image import / snapshot / base` against the real REST API over the fake backend: what is sent,
and what is shown."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest

from mypaas.cli import client as client_module
from mypaas.cli.client import ApiClient
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, one_error_line


def archive(tmp_path: Path, name: str = "etc/hostname") -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"host\n"))
    path = tmp_path / "root.tgz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def imported_line(backend: FakeBackend, ref: str) -> str:
    info = backend.image(ref)
    return f"imported {ref} — engine id {info.id[:19]} ({info.size} B); the private registry is off"


def test_import_sends_the_file_as_the_body(server: Server, backend: FakeBackend, tmp_path: Path) -> None:
    path = archive(tmp_path)

    result = cli("image", "import", str(path), "mine/root:1", "-c", "CMD /bin/sh", "-c", "ENV A=b")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == imported_line(backend, "mine/root:1")
    sent = server.last("POST", "/api/v1/images/import")
    assert sent.content == path.read_bytes()
    assert sent.headers["content-length"] == str(path.stat().st_size)
    assert sent.url.params["ref"] == "mine/root:1"
    assert sent.url.params.get_list("change") == ["CMD /bin/sh", "ENV A=b"]


def test_import_from_stdin(server: Server, backend: FakeBackend, tmp_path: Path) -> None:
    data = archive(tmp_path).read_bytes()

    result = cli("image", "import", "-", "mine/root:1", "--json", stdin=data)

    assert result.exit_code == 0, result.output
    info = backend.image("mine/root:1")
    assert json.loads(result.stdout) == {
        "ref": "mine/root:1",
        "id": info.id,
        "size": info.size,
        "registry": None,
        "warnings": [],
    }
    assert server.last("POST", "/api/v1/images/import").content == data


def test_import_of_a_whole_machine_warns_once_about_its_device_nodes(
    server: Server, backend: FakeBackend, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # as `tar -cpzf base.tar.gz /` holds /dev
        for name in ("dev/console", "dev/null", "dev/zero", "dev/random"):
            node = tarfile.TarInfo(name)
            node.type = tarfile.CHRTYPE
            tar.addfile(node)
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"host\n"))
    path = tmp_path / "base.tar.gz"
    path.write_bytes(buf.getvalue())

    result = cli("image", "import", str(path), "seed/base:1")

    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        "warning: skipped 4 device nodes (dev/console, dev/null, dev/zero, …): the runtime provides /dev"
    )
    assert result.stdout.strip() == imported_line(backend, "seed/base:1")


def test_import_errors_are_one_line(server: Server, backend: FakeBackend, tmp_path: Path) -> None:
    line = one_error_line(cli("image", "import", str(archive(tmp_path, "/etc/passwd")), "mine/root:1"))
    assert line == "error: archive entry '/etc/passwd': absolute paths are not allowed"
    assert "mine/root:1" not in backend.images
    line = one_error_line(cli("image", "import", str(tmp_path / "missing.tgz"), "mine/root:1"))
    assert "cannot read" in line and "missing.tgz" in line


def test_an_imported_image_without_a_command_is_refused_before_anything_is_made(
    server: Server, backend: FakeBackend, manager: Platform, tmp_path: Path
) -> None:
    assert cli("image", "import", str(archive(tmp_path)), "nu-img/site:v1").exit_code == 0

    line = one_error_line(cli("deploy", "nu-imgapp", "--image", "nu-img/site:v1", "--port", "80"))

    assert line == (
        "error: image nu-img/site:v1 has no command: give one with mypaas image import -c 'CMD …' "
        "or the compose file's command:"
    )
    assert backend.instances == {}
    assert cli("image", "import", str(archive(tmp_path)), "nu-img/site:v2", "-c", "CMD httpd").exit_code == 0
    result = cli("deploy", "nu-imgapp", "--image", "nu-img/site:v2", "--port", "80")
    assert result.exit_code == 0, result.output


def test_snapshot_sends_a_tar_of_the_folder(server: Server, backend: FakeBackend, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=test\n")

    result = cli("image", "snapshot", str(root), "mine/root:1")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == imported_line(backend, "mine/root:1")
    sent = server.last("POST", "/api/v1/images/import")
    with tarfile.open(fileobj=io.BytesIO(sent.content)) as tar:
        assert tar.extractfile("etc/os-release").read() == b"ID=test\n"  # type: ignore[union-attr]
    usage = cli("image", "snapshot", "a", "b", "c")
    assert usage.exit_code == 2 and "give [ROOT] NAME:TAG" in usage.stderr


def test_base_if_missing_keeps_the_image_there(server: Server, backend: FakeBackend) -> None:
    there = backend.add_image("mypaas/debian:bookworm")

    result = cli("image", "base", "debian:bookworm", "--if-missing")

    assert result.exit_code == 0, result.output
    assert server.body("POST", "/api/v1/images/base") == {"image": "debian:bookworm", "if_missing": True}
    assert result.stdout.strip() == f"mypaas/debian:bookworm is there: {there.id[:19]}"


def test_base_follows_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stub API: a real base build runs debootstrap as root for minutes, not in a unit test. The
    # answers have the shape of the API's (op_dict); test_base_if_missing_keeps_the_image_there and
    # the deploy tests follow real operations.
    running = {"id": "op9", "app": "", "kind": "base-image", "status": "building", "log": "", "log_offset": 0}
    log = "I: Retrieving InRelease\n"
    done = dict(
        running, status="succeeded", log=log, log_offset=len(log), message="built mypaas/debian:bookworm"
    )
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if (request.method, request.url.path) == ("POST", "/api/v1/images/base"):
            return httpx.Response(202, json=running)
        assert (request.method, request.url.path) == ("GET", "/api/v1/operations/op9")
        return httpx.Response(200, json=done)

    transport = httpx.MockTransport(answer)
    monkeypatch.setattr(client_module, "connect", lambda: ApiClient("http://x", "t", transport=transport))

    result = cli("image", "base", "debian:bookworm")

    assert result.exit_code == 0, result.output
    assert json.loads(sent[0].content) == {"image": "debian:bookworm", "if_missing": False}
    assert "I: Retrieving InRelease" in result.stderr
    assert result.stdout.strip() == "built mypaas/debian:bookworm"


SECRETS = (
    "etc/shadow",
    "etc/gshadow",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_rsa_key.pub",
    "root/.ssh/id_ed25519",
    "root/.ssh/authorized_keys",
    "root/.docker/config.json",
    "home/ann/.ssh/id_rsa",
    "var/lib/mypaas/state.db",
    "var/lib/mypaas/secrets.key",
)


def machine_with_secrets(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in (*SECRETS, "etc/passwd", "etc/ssh/sshd_config", "root/.profile", "root/.docker/cli.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    return root


def sent_names(server: Server) -> set[str]:
    sent = server.last("POST", "/api/v1/images/import")
    with tarfile.open(fileobj=io.BytesIO(sent.content)) as tar:
        return {name.removeprefix("./") for name in tar.getnames()}


def test_a_snapshot_leaves_the_machine_secrets_out(server: Server, tmp_path: Path) -> None:
    root = machine_with_secrets(tmp_path)

    result = cli("image", "snapshot", str(root), "mine/root:1")

    assert result.exit_code == 0, result.output
    names = sent_names(server)
    assert not names & set(SECRETS)
    assert {"etc/passwd", "etc/ssh/sshd_config", "root/.profile", "root/.docker/cli.json"} <= names
    assert result.stderr.splitlines() == [
        "left out as secrets: /etc/gshadow, /etc/shadow, /etc/ssh/ssh_host_ed25519_key,"
        " /etc/ssh/ssh_host_rsa_key.pub, /home/ann/.ssh, /root/.docker/config.json, /root/.ssh,"
        " /var/lib/mypaas (--include PATH takes one)"
    ]


def test_include_takes_one_secret_back(server: Server, tmp_path: Path) -> None:
    root = machine_with_secrets(tmp_path)

    result = cli("image", "snapshot", str(root), "mine/root:1", "--include", "/root/.ssh/authorized_keys")

    assert result.exit_code == 0, result.output
    names = sent_names(server)
    assert names & set(SECRETS) == {"root/.ssh/authorized_keys"}
    assert "/root/.ssh/id_ed25519," in result.stderr and "authorized_keys" not in result.stderr
    bad = cli("image", "snapshot", str(root), "mine/root:1", "--include", "etc/shadow")
    assert bad.exit_code == 1 and one_error_line(bad) == (
        "error: --include etc/shadow: give a path inside ROOT from its top, e.g. /root/.ssh/authorized_keys"
    )


def test_snapshot_help_lists_every_secret_left_out() -> None:
    from mypaas.build.snapshot import SECRET_PATHS

    shown = " ".join(cli("image", "snapshot", "--help").stdout.split())
    assert [p for p in SECRET_PATHS if p not in shown] == []
