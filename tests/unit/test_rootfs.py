"""Images from root filesystems without an engine: references, config changes, the streamed import behind
the Backend protocol (fake), folder snapshots and debootstrap suites."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.build.archive import CheckedTar
from mypaas.build.debootstrap import parse_base, remove_tree
from mypaas.build.rootfs import check_changes, check_ref, import_rootfs
from mypaas.build.snapshot import Snapshot, machine_snapshot
from mypaas.composer.fake import FakeBackend
from mypaas.errors import InvalidSpec


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", "busybox:latest"),
        ("myapp/base:1.0", "myapp/base:1.0"),
        ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2"),
        ("localhost/x:y", "localhost/x:y"),
        ("registry.example.com/a_b/c-d:Tag_1.2", "registry.example.com/a_b/c-d:Tag_1.2"),
    ],
)
def test_good_references(ref: str, expected: str) -> None:
    assert check_ref(ref) == expected


@pytest.mark.parametrize(
    "ref", ["", "UPPER:1", "a:b:c", "name@sha256:abc", "-x:1", "a/:1", "x:" + "t" * 200, "a" * 64, "a b:1"]
)
def test_bad_references_name_the_field(ref: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        check_ref(ref)
    assert caught.value.field == "ref"


def test_changes() -> None:
    assert check_changes(['cmd ["/bin/sh"]', "ENV A=b"]) == ['CMD ["/bin/sh"]', "ENV A=b"]
    for bad in ("RUN rm -rf /", "CMD", "LABEL a=b\nRUN x", "FROM scratch"):
        with pytest.raises(InvalidSpec) as caught:
            check_changes([bad])
        assert caught.value.field == "change"


def tar_gz(*names: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def test_import_streams_the_checked_archive_to_the_backend() -> None:
    backend = FakeBackend()
    info = import_rootfs(backend, [tar_gz("bin/sh", "etc/passwd")], ref="mine/root:1")
    assert info.ref == "mine/root:1"
    assert backend.image("mine/root:1") == info
    assert backend.imported_bytes == 4 * 512 + 1024  # two headers, two padded files, the end marker


def test_an_import_leaves_device_nodes_out_and_says_so() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("dev/null", "dev/zero", "dev/tty"):
            node = tarfile.TarInfo(name)
            node.type = tarfile.CHRTYPE
            tar.addfile(node)
    heard: list[str] = []
    backend = FakeBackend()
    info = import_rootfs(backend, [buf.getvalue()], ref="seed/base:1", warn=heard.append)
    assert backend.image("seed/base:1") == info
    assert backend.imported_bytes == 1024  # only the end marker: every entry was a device node
    assert heard == ["skipped 3 device nodes (dev/null, dev/zero, dev/tty): the runtime provides /dev"]


def test_a_refused_import_leaves_no_image() -> None:
    backend = FakeBackend()
    with pytest.raises(InvalidSpec, match="archive entry '/etc/passwd'"):
        import_rootfs(backend, [tar_gz("bin/sh", "/etc/passwd")], ref="mine/root:1")
    assert "mine/root:1" not in backend.images
    with pytest.raises(InvalidSpec) as caught:
        import_rootfs(backend, [tar_gz("x")], ref="Not A Ref")
    assert caught.value.field == "ref"


# -- snapshots --------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    for folder in ("bin", "etc", "proc/1", "tmp/junk", "var/cache/apt", "data/mypaas", "srv"):
        (root / folder).mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + bytes(2000))
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.link(root / "etc" / "passwd", root / "etc" / "passwd-")
    (root / "proc" / "1" / "status").write_text("not really /proc\n")
    (root / "tmp" / "junk" / "x").write_text("x")
    (root / "var" / "cache" / "apt" / "pkg.bin").write_text("cache")
    (root / "data" / "mypaas" / "state.db").write_text("secret")
    (root / "srv" / "a.pyc").write_text("compiled")
    os.mkfifo(root / "srv" / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "srv" / "sock"))
    yield root
    sock.close()


def listing(snap: Snapshot) -> dict[str, tarfile.TarInfo]:
    data = b"".join(CheckedTar(iter(snap)))  # what a snapshot makes passes the archive checks
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar}


def test_a_snapshot_leaves_out_what_it_should(tree: Path) -> None:
    snap = machine_snapshot(
        tree, excludes=["/var/cache/apt", "*.pyc"], home=tree / "data/mypaas", one_file_system=False
    )
    got = listing(snap)
    assert {"bin/busybox", "bin/sh", "etc/passwd", "proc", "tmp", "var/cache", "data", "srv"} <= set(got)
    assert got["bin/sh"].issym() and got["bin/sh"].linkname == "busybox"
    assert got["etc/passwd-"].islnk() and got["etc/passwd-"].linkname == "etc/passwd"
    for gone in ("proc/1", "tmp/junk", "var/cache/apt", "data/mypaas", "srv/a.pyc", "srv/fifo", "srv/sock"):
        assert gone not in got
    assert got["etc/passwd"].uname == "" and got["etc/passwd"].uid == os.getuid()
    assert snap.skipped_count == 2 and any("socket" in note for note in snap.skipped)


def test_a_snapshot_imports_through_the_same_path(tree: Path) -> None:
    backend = FakeBackend()
    import_rootfs(backend, Snapshot(tree), ref="snap/root:1")
    assert "snap/root:1" in backend.images


# -- base images ------------------------------------------------------------------------------------


def test_base_suites(tmp_path: Path) -> None:
    for suite in ("bookworm", "jammy"):
        (tmp_path / suite).write_text("")
    mirrors = {"debian": "http://deb", "ubuntu": "http://ubu"}
    spec = parse_base("debian:bookworm", mirrors, tmp_path)
    assert (spec.ref, spec.mirror) == ("mypaas/debian:bookworm", "http://deb")
    assert parse_base("ubuntu:jammy", mirrors, tmp_path).ref == "mypaas/ubuntu:jammy"
    for bad, reason in (
        ("fedora:40", "unknown base"),
        ("debian:potato", "unknown debian suite"),
        ("ubuntu:noble", "does not know"),
        ("debian", "DISTRO:SUITE"),
    ):
        with pytest.raises(InvalidSpec, match=reason) as caught:
            parse_base(bad, mirrors, tmp_path)
        assert caught.value.field == "image"


def test_remove_tree(tmp_path: Path) -> None:
    (tmp_path / "w" / "rootfs" / "etc").mkdir(parents=True)
    remove_tree(tmp_path / "w")
    assert not (tmp_path / "w").exists()
    remove_tree(tmp_path / "w")  # idempotent


def test_gzip_of_a_snapshot_is_an_importable_archive(tree: Path) -> None:
    data = gzip.compress(b"".join(Snapshot(tree)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "etc/passwd" in tar.getnames()
    assert import_rootfs(FakeBackend(), [data], ref="snap/gz:1").ref == "snap/gz:1"
