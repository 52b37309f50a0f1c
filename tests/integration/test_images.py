"""Images from root filesystems against the real engine, through the real CLI: imports in every format,
hostile archives that must leave nothing behind, a folder snapshot, and a debootstrap base image."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

FORMATS = {
    "rootfs.tar": "w",
    "rootfs.tar.gz": "w:gz",
    "rootfs.tgz": "w:gz",
    "rootfs.tar.bz2": "w:bz2",
    "rootfs.bzip": "w:bz2",
    "rootfs.tar.xz": "w:xz",
    "rootfs.txz": "w:xz",
    "rootfs-no-suffix": "w:gz",  # found by content
}


def busybox_tree(root: Path) -> Path:
    """A tiny root filesystem: the static busybox, a few applets as symlinks, /etc and /tmp."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(kit.BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "test"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "tmp").mkdir(mode=0o1777)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_tree(tmp_path_factory.mktemp("images") / "rootfs")


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Image references a test makes; removed afterwards, even when the test fails."""
    refs: list[str] = []
    yield refs
    for ref in refs:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def run_in(ref: str, *cmd: str) -> str:
    proc = subprocess.run(
        ["docker", "run", "--rm", "--label", f"{kit.TEST_LABEL}=1", ref, *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def all_images() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "-aq", "--no-trunc"], capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def left_behind(before: set[str], since: float, mark: str) -> list[str]:
    """Images that appeared and came from our import: carrying our label, or an untagged import."""
    found = []
    for image in all_images() - before:
        info = json.loads(
            subprocess.run(["docker", "inspect", image], capture_output=True, check=True).stdout
        )[0]
        labels = (info.get("Config") or {}).get("Labels") or {}
        ours = labels.get("mypaas.test.mark") == mark
        stray = not info.get("RepoTags") and info.get("Comment") == "Imported from -"
        created = info.get("Created", "")[:19]
        if ours or (stray and created >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))):
            found.append(image)
    return found


@pytest.mark.parametrize("name", list(FORMATS))
def test_import_each_format_then_run_it(
    platform: kit.Platform, tree: Path, tmp_path: Path, made: list[str], name: str
) -> None:
    archive = tmp_path / name
    with tarfile.open(archive, FORMATS[name]) as tar:
        tar.add(tree, arcname=".")
    ref = f"mypaas-test/rootfs:{name.replace('.', '-')}"
    made.append(ref)
    r = platform.cli(
        "image", "import", str(archive), ref, "-c", f"LABEL {kit.TEST_LABEL}=1", "-c", "ENV HELLO=hi"
    )
    assert r.code == 0, r
    assert f"imported {ref}" in r.out
    assert (
        run_in(ref, "/bin/sh", "-c", "echo $HELLO from $(cat /etc/passwd | cut -d: -f1)") == "hi from root\n"
    )


def test_import_from_stdin_as_json(platform: kit.Platform, tree: Path, made: list[str]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        tar.add(tree, arcname=".")
    ref = "mypaas-test/rootfs:stdin"
    made.append(ref)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypaas.cli.main",
            "image",
            "import",
            "-",
            ref,
            "--json",
            "-c",
            "LABEL mypaas.test=1",
        ],
        input=buf.getvalue(),
        env=platform.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["ref"] == ref and info["id"].startswith("sha256:") and info["size"] > 1_000_000
    assert run_in(ref, "/bin/ls", "/bin").split() == ["busybox", "cat", "echo", "ls", "sh", "test"]


def test_a_whole_machine_archive_imports_without_its_device_nodes(
    platform: kit.Platform, tree: Path, tmp_path: Path, made: list[str]
) -> None:
    """What the seed makes with `tar --numeric-owner -cpzf base.tar.gz /`: /dev's nodes and a fifo."""
    archive = tmp_path / "base.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=".")
        tar.addfile(entry("dev", tarfile.DIRTYPE, mode=0o755))
        for name, kind in (("null", tarfile.CHRTYPE), ("zero", tarfile.CHRTYPE), ("sda", tarfile.BLKTYPE)):
            tar.addfile(entry(f"dev/{name}", kind))
        tar.addfile(entry("run/initctl", tarfile.FIFOTYPE))
    ref = "mypaas-test/seed:1"
    made.append(ref)
    r = platform.cli("image", "import", str(archive), ref, "-c", f"LABEL {kit.TEST_LABEL}=1")
    assert r.code == 0, r
    assert r.err.strip() == (
        "warning: skipped 3 device nodes (dev/null, dev/zero, dev/sda): the runtime provides /dev"
    ), r.err
    assert f"imported {ref}" in r.out
    # the runtime's own /dev (null a char device there, no sda), and the archive's fifo kept
    check = "test -c /dev/null && test ! -e /dev/sda && test -p /run/initctl && echo ok"
    assert run_in(ref, "/bin/sh", "-c", check) == "ok\n"


def hostile(path: Path, tree: Path, bad: tarfile.TarInfo, mode: str = "w:gz", padding: int = 0) -> Path:
    """A good rootfs, ``padding`` bytes of data so the engine is busy importing, then a bad entry."""
    with tarfile.open(path, mode, compresslevel=1) as tar:  # type: ignore[call-overload]
        tar.add(tree, arcname=".")
        if padding:
            info = tarfile.TarInfo("var/blob")
            info.size = padding
            tar.addfile(info, io.BytesIO(os.urandom(padding)))
        tar.addfile(bad)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (entry("/etc/cron.d/evil"), "absolute paths"),
        (entry("../../escape"), "'..'"),
        (entry("bin/out", tarfile.SYMTYPE, "../../../../etc/shadow"), "outside the root"),
        (entry("bin/hard", tarfile.LNKTYPE, "etc/shadow"), "not an earlier entry"),
    ],
    ids=["absolute", "dotdot", "symlink", "hardlink"],
)
def test_a_hostile_archive_leaves_nothing_behind(
    platform: kit.Platform, tree: Path, tmp_path: Path, made: list[str], info: tarfile.TarInfo, reason: str
) -> None:
    archive = hostile(tmp_path / "bad.tar.gz", tree, info, padding=20 * 1024 * 1024)
    mark = uuid.uuid4().hex
    ref = "mypaas-test/hostile:1"
    made.append(ref)
    before, since = all_images(), time.time() - 1
    r = platform.cli("image", "import", str(archive), ref, "-c", f"LABEL mypaas.test.mark={mark}")
    assert r.code == 1, r
    assert f"error: archive entry {info.name!r}" in r.err and reason in r.err, r.err
    assert "Traceback" not in r.err
    assert (
        subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False).returncode == 1
    )
    assert left_behind(before, since, mark) == []


def test_bombs_and_broken_files_leave_nothing_behind(platform: kit.Platform, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:  # 1 GiB of zeros: about 1 MB on disk
        info = tarfile.TarInfo("zeros.bin")
        info.size = 1024**3
        tar.addfile(info, _Zeros(info.size))
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w:gz") as tar:
        info = tarfile.TarInfo("file")
        info.size = 100_000
        tar.addfile(info, io.BytesIO(os.urandom(100_000)))
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not an archive\n" * 1000)
    cases = [(bomb, "archive entry 'zeros.bin'", "decompression bomb"), (truncated, "corrupt", "truncated")]
    cases.append((garbage, "archive: not a tar archive", ""))
    for path, where, reason in cases:
        before, since, mark = all_images(), time.time() - 1, uuid.uuid4().hex
        r = platform.cli(
            "image", "import", str(path), "mypaas-test/broken:1", "-c", f"LABEL mypaas.test.mark={mark}"
        )
        assert r.code == 1 and where in r.err and reason in r.err, r
        assert left_behind(before, since, mark) == []


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def test_snapshot_of_a_folder(platform: kit.Platform, tree: Path, tmp_path: Path, made: list[str]) -> None:
    root = tmp_path / "machine"
    shutil.copytree(tree, root, symlinks=True)
    (root / "tmp" / "scratch").write_text("temporary\n")
    (root / "secret").mkdir()
    (root / "secret" / "key").write_text("do not ship\n")
    (root / "proc").mkdir()
    (root / "proc" / "fake").write_text("not really proc\n")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "tmp.sock"))
    ref = "mypaas-test/snapshot:1"
    made.append(ref)
    try:
        r = platform.cli(
            "image", "snapshot", str(root), ref, "--exclude", "/secret", "-c", "LABEL mypaas.test=1"
        )
    finally:
        sock.close()
    assert r.code == 0, r
    assert "left out 1 entries" in r.err and "socket" in r.err
    listing = run_in(
        ref, "/bin/sh", "-c", "ls -a /tmp /proc; test -e /secret && echo LEAKED; cat /etc/passwd"
    )
    assert "scratch" not in listing and "fake" not in listing and "LEAKED" not in listing
    assert "root:x:0:0" in listing


def test_snapshot_usage_errors(platform: kit.Platform, tmp_path: Path) -> None:
    r = platform.cli("image", "snapshot", str(tmp_path / "nowhere"), "x:1")
    assert r.code == 1 and "no such folder" in r.err
    r = platform.cli("image", "snapshot", str(tmp_path), "Not A Ref")
    assert r.code == 1 and "invalid image reference" in r.err


def test_base_image_with_debootstrap(platform: kit.Platform) -> None:
    """Builds mypaas/debian:bookworm once (~30 s) and keeps it: later runs reuse it (--if-missing)."""
    assert shutil.which("debootstrap"), "debootstrap is missing: scripts/install.sh installs it (make test)"
    r = platform.cli("image", "base", "debian:bookworm", "--if-missing", timeout=900)
    assert r.code == 0, r
    assert "mypaas/debian:bookworm" in r.out
    assert run_in("mypaas/debian:bookworm", "cat", "/etc/debian_version").startswith("12")
    r = platform.cli("image", "base", "debian:hamm")
    assert r.code == 1 and "unknown debian suite" in r.err
    work = platform.home / "tmp" / "base-images"
    assert not work.exists() or list(work.iterdir()) == []  # the build folder is gone
