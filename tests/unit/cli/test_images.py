"""`mypaas image import / snapshot / base` against a mock REST API: what is sent, and what is shown."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import httpx

from tests.unit import test_cli as base

FakeApi, cli, ok, one_error_line = base.FakeApi, base.cli, base.ok, base.one_error_line
api = base.api  # the mock REST API fixture
_isolated = base._isolated  # MYPAAS_HOME in a temp folder, for every test here too

IMPORTED = {"ref": "mine/root:1", "id": "sha256:" + "ab" * 32, "size": 2_500_000}


def archive(tmp_path: Path) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"host\n"))
    path = tmp_path / "root.tgz"
    path.write_bytes(gzip.compress(buf.getvalue()))
    return path


def test_import_sends_the_file_as_the_body(api: FakeApi, tmp_path: Path) -> None:
    path = archive(tmp_path)
    api.on("POST", "/api/v1/images/import", ok(IMPORTED))

    result = cli("image", "import", str(path), "mine/root:1", "-c", "CMD /bin/sh", "-c", "ENV A=b")

    assert result.exit_code == 0, result.output
    assert "imported mine/root:1: sha256:abababababab (2.5 MB)" in result.stdout
    sent = api.last("POST", "/api/v1/images/import")
    assert sent.content == path.read_bytes()
    assert sent.headers["content-length"] == str(path.stat().st_size)
    assert sent.url.params["ref"] == "mine/root:1"
    assert sent.url.params.get_list("change") == ["CMD /bin/sh", "ENV A=b"]


def test_import_from_stdin(api: FakeApi, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mypaas.cli.main import app

    data = archive(tmp_path).read_bytes()
    api.on("POST", "/api/v1/images/import", ok(IMPORTED))
    result = CliRunner().invoke(app, ["image", "import", "-", "mine/root:1", "--json"], input=data)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == IMPORTED
    assert api.last("POST", "/api/v1/images/import").content == data


def test_import_errors_are_one_line(api: FakeApi, tmp_path: Path) -> None:
    refusal = {"error": "archive entry '/etc/passwd': absolute paths are not allowed", "field": "archive"}
    api.on("POST", "/api/v1/images/import", httpx.Response(400, json=refusal))
    line = one_error_line(cli("image", "import", str(archive(tmp_path)), "mine/root:1"))
    assert line == "error: archive entry '/etc/passwd': absolute paths are not allowed"
    line = one_error_line(cli("image", "import", str(tmp_path / "missing.tgz"), "mine/root:1"))
    assert "cannot read" in line and "missing.tgz" in line


def test_snapshot_sends_a_tar_of_the_folder(api: FakeApi, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=test\n")
    api.on("POST", "/api/v1/images/import", ok(IMPORTED))

    result = cli("image", "snapshot", str(root), "mine/root:1")

    assert result.exit_code == 0, result.output
    sent = api.last("POST", "/api/v1/images/import")
    with tarfile.open(fileobj=io.BytesIO(sent.content)) as tar:
        assert tar.extractfile("etc/os-release").read() == b"ID=test\n"  # type: ignore[union-attr]
    usage = cli("image", "snapshot", "a", "b", "c")
    assert usage.exit_code == 2 and "give [ROOT] NAME:TAG" in usage.stderr


def test_base_follows_the_build(api: FakeApi) -> None:
    running = {"id": "op9", "app": "", "kind": "base-image", "status": "building", "log": "", "log_offset": 0}
    done = dict(
        running, status="succeeded", log="I: Retrieving InRelease\n", message="built mypaas/debian:bookworm"
    )
    api.on("POST", "/api/v1/images/base", ok(running, 202))
    api.on("GET", "/api/v1/operations/op9", ok(done))

    result = cli("image", "base", "debian:bookworm")

    assert result.exit_code == 0, result.output
    assert api.body("POST", "/api/v1/images/base") == {"image": "debian:bookworm", "if_missing": False}
    assert "I: Retrieving InRelease" in result.stderr
    assert result.stdout.strip() == "built mypaas/debian:bookworm"
