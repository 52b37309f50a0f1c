"""The project's own files on the manager's side (build/project_files.py): uploads checked and summed up
by a digest, the layer that puts them at their targets, the derived image's build context, and its
reuse when nothing changed."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from mypaas.build.project_files import (
    add_project_files,
    derived_context,
    derived_key,
    layer_tar,
    read_file_set,
    read_project_files,
)
from mypaas.cli.project_files import tar_source
from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec, ProjectFiles, ServiceSpec
from mypaas.errors import InvalidSpec


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def upload(root: Path, source: str) -> bytes:
    return tar_source(root, source, [])


def handmade(*entries: tuple[str, bytes, int], root: bool = True) -> bytes:
    """A gzipped tar of (name, data, type) entries, as a client other than the CLI could send."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if root:
            info = tarfile.TarInfo(".")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type, info.size = bytes([kind]), len(data) if kind == ord("0") else 0
            if kind == ord("2"):
                info.linkname = data.decode()
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def members(layer: bytes) -> list[tuple[str, str, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return [(m.name, m.type.decode(), m.mode, m.uid) for m in tar]


# --- one upload ----------------------------------------------------------------------------------------
def test_a_folder_upload_and_its_digest(tmp_path: Path) -> None:
    write(tmp_path, {"html/index.html": "<h1>hi</h1>", "html/css/site.css": "body{}"})
    fs = read_file_set("html", upload(tmp_path, "html"))
    assert fs.root[0].isdir()
    assert [info.name for info, _ in fs.entries] == ["css", "index.html", "css/site.css"]  # walk order
    assert fs.count == 4 and fs.size == len("<h1>hi</h1>") + len("body{}")
    assert fs.digest.startswith("sha256:")
    # the same files later (new modification times): the same digest
    os.utime(tmp_path / "html/index.html", (1, 1))
    assert read_file_set("html", upload(tmp_path, "html")).digest == fs.digest
    # a changed file, or a changed mode: another digest
    (tmp_path / "html/index.html").write_text("<h1>ho</h1>")
    changed = read_file_set("html", upload(tmp_path, "html")).digest
    assert changed != fs.digest
    (tmp_path / "html/index.html").chmod(0o600)
    assert read_file_set("html", upload(tmp_path, "html")).digest not in (fs.digest, changed)


def test_a_file_upload(tmp_path: Path) -> None:
    write(tmp_path, {"nginx.conf": "events {}\n"})
    fs = read_file_set("nginx.conf", upload(tmp_path, "nginx.conf"))
    assert fs.root[0].isreg() and fs.root[1] == b"events {}\n" and fs.entries == ()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (handmade(("../escape", b"x", ord("0"))), "'..' in the path"),
        (handmade(("dev", b"", ord("3"))), "device nodes"),
        (handmade(("link", b"../../etc", ord("2"))), "points outside the root"),
        (handmade((".wh.x", b"", ord("0"))), "whiteout"),
        (b"not a tar at all", "not a tar archive"),
        (gzip.compress(b"\0" * 10), "does not hold a tar"),
    ],
)
def test_unsafe_uploads_are_refused_naming_the_source(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        read_file_set("html", data)
    assert info.value.field == "files:html"
    assert info.value.message.startswith("project files ./html: ") and problem in info.value.message


def test_a_file_upload_holds_only_the_file() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in (".", "extra"):
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidSpec, match="holds more than the file"):
        read_file_set("a.conf", buffer.getvalue())


def test_uploads_past_the_limit_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"big/a": "x" * 5000})
    with pytest.raises(InvalidSpec, match="exceed"):
        read_file_set("big", upload(tmp_path, "big"), budget=4096)


# --- the layer -----------------------------------------------------------------------------------------
def test_the_layer_puts_files_at_their_targets(tmp_path: Path) -> None:
    write(
        tmp_path, {"html/index.html": "hi", "html/sub/a.css": "a", "nginx.conf": "events {}", "x.html": "x"}
    )
    (tmp_path / "html/run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "html/run.sh").chmod(0o755)
    html = read_file_set("html", upload(tmp_path, "html"))
    conf = read_file_set("nginx.conf", upload(tmp_path, "nginx.conf"))
    extra = read_file_set("x.html", upload(tmp_path, "x.html"))
    mounts = [
        (ProjectFiles(source="nginx.conf", target="/etc/nginx/nginx.conf", read_only=True), conf),
        (ProjectFiles(source="x.html", target="/www/x.html"), extra),  # inside the folder below
        (ProjectFiles(source="html", target="/www"), html),
    ]
    uid = os.getuid()
    assert members(layer_tar(mounts)) == [
        ("www", "0", 0o600, 0),  # the placeholder: the image's /www goes, as a bind mount hides it
        ("www", "5", 0o755, uid),  # then the folder itself, with its owner and mode
        ("www/sub", "5", 0o755, uid),
        ("www/index.html", "0", 0o644, uid),
        ("www/run.sh", "0", 0o755, uid),  # modes kept: scripts stay executable
        ("www/sub/a.css", "0", 0o644, uid),
        ("www/x.html", "0", 0o644, uid),  # deeper targets after shallower ones
        ("etc/nginx/nginx.conf", "0", 0o444, uid),  # read-only: no write bits
    ]


def test_the_derived_image_context(tmp_path: Path) -> None:
    context = derived_context("sha256:" + "b" * 64, b"layer-bytes")
    with tarfile.open(fileobj=io.BytesIO(context)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    assert files == {
        "Dockerfile": f"FROM sha256:{'b' * 64}\nADD files.tar /\n".encode(),
        "files.tar": b"layer-bytes",
    }


def test_the_derived_key_follows_the_base_and_the_files() -> None:
    mounts = [ProjectFiles(source="a", target="/a", digest="sha256:1")]
    key = derived_key("sha256:base", mounts)
    assert derived_key("sha256:base", list(mounts)) == key
    assert derived_key("sha256:other", mounts) != key
    assert derived_key("sha256:base", [mounts[0].model_copy(update={"read_only": True})]) != key
    assert derived_key("sha256:base", [mounts[0].model_copy(update={"target": "/b"})]) != key


# --- a deploy's files ----------------------------------------------------------------------------------
def app_with(*mounts: ProjectFiles, image_id: str = "sha256:" + "c" * 64) -> AppSpec:
    svc = ServiceSpec(name="web", image="nginx", image_id=image_id, project_files=list(mounts))
    return AppSpec(services={"web": svc, "db": ServiceSpec(name="db", image="pg", image_id=image_id)})


def test_a_deploy_s_files_make_a_derived_image_reused_while_unchanged(tmp_path: Path) -> None:
    backend = FakeBackend()
    write(tmp_path, {"html/index.html": "v1"})
    spec = app_with(ProjectFiles(source="html", target="/www"))
    lines: list[str] = []

    def deploy() -> AppSpec:
        prepared = read_project_files(spec, {"files:html": upload(tmp_path, "html"), ".": b"a build context"})
        return add_project_files(backend, "shop", prepared.spec, prepared.layers, lines.append)

    first = deploy()
    web = first.services["web"]
    assert web.image_id != spec.services["web"].image_id and web.image == "nginx"
    assert web.project_files[0].digest.startswith("sha256:") and web.project_files[0].count == 2
    assert first.services["db"] == spec.services["db"]
    assert any(line.startswith("--- adding the project files of web: 2 entries") for line in lines)
    assert deploy().services["web"].image_id == web.image_id  # unchanged: found, not built again
    assert any("project files of web unchanged" in line for line in lines)
    (tmp_path / "html/index.html").write_text("v2")
    assert deploy().services["web"].image_id != web.image_id


def test_files_not_uploaded_are_an_error_naming_the_service() -> None:
    with pytest.raises(InvalidSpec) as info:
        read_project_files(app_with(ProjectFiles(source="conf/app.ini", target="/a")), {})
    assert info.value.field == "services.web.volumes"
    assert "./conf/app.ini were not uploaded" in info.value.message
