"""The archive checker against a corpus of hostile archives (each refusal names the entry), good archives
in every compression, and the streaming promise: memory stays flat whatever the archive's size."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterable, Iterator

import pytest

from mypaas.build.archive import CheckedTar, Limits
from mypaas.errors import InvalidSpec

MiB = 1024 * 1024


# -- making archives --------------------------------------------------------------------------------


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, data


def make_tar(*entries: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def rootfs(fmt: int = tarfile.GNU_FORMAT) -> bytes:
    """A small but realistic root filesystem: folders, files, relative and absolute links, a hardlink."""
    return make_tar(*rootfs_entries(), fmt=fmt)


def rootfs_entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [
        entry("./", tarfile.DIRTYPE),
        entry("./bin", tarfile.DIRTYPE),
        entry("./bin/busybox", data=b"\x7fELF" + bytes(3000)),
        entry("./bin/sh", tarfile.SYMTYPE, link="busybox"),
        entry("./bin/ls", tarfile.SYMTYPE, link="/bin/busybox"),
        entry("./usr", tarfile.DIRTYPE),
        entry("./usr/bin", tarfile.SYMTYPE, link="../bin"),
        entry("./etc", tarfile.DIRTYPE),
        entry("./etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
        entry("./etc/passwd-", tarfile.LNKTYPE, link="./etc/passwd"),
        entry("./etc/" + "deep/" * 30 + "file", data=b"long name\n"),
    ]


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "bzip2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    return data


def pieces(data: bytes, size: int = 7000) -> Iterator[bytes]:
    """The bytes as an upload delivers them: in pieces of any size."""
    for at in range(0, len(data), size):
        yield data[at : at + size]


def check(chunks: bytes | Iterable[bytes], limits: Limits | None = None) -> bytes:
    source = pieces(chunks) if isinstance(chunks, bytes) else chunks
    return b"".join(CheckedTar(source, limits))


def refused(chunks: bytes | Iterable[bytes], *expected: str, limits: Limits | None = None) -> str:
    with pytest.raises(InvalidSpec) as caught:
        check(chunks, limits)
    message = caught.value.message
    assert caught.value.field == "archive"
    for part in expected:
        assert part in message, message
    return message


def members(tar: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return {m.name: m for m in t}


# -- good archives ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tar", "gzip", "bzip2", "xz"])
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_a_rootfs_passes_in_every_compression(kind: str, fmt: int) -> None:
    original = rootfs(fmt)
    checked = CheckedTar(pieces(compress(original, kind)))
    out = b"".join(checked)
    assert checked.kind == kind
    got = members(out)
    assert set(got) == {m.lstrip("./") or "." for m in members(original)}
    assert got["bin/sh"].issym() and got["bin/sh"].linkname == "busybox"
    assert got["bin/ls"].linkname == "/bin/busybox"  # an absolute link stays inside the image's root
    assert got["etc/passwd-"].islnk() and got["etc/passwd-"].linkname == "etc/passwd"
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        assert t.extractfile("etc/passwd").read() == b"root:x:0:0:root:/root:/bin/sh\n"  # type: ignore[union-attr]
    assert out.endswith(bytes(1024))


def test_concatenated_gzip_members_and_zero_padding_are_read_on() -> None:
    tar = rootfs()
    data = gzip.compress(tar[:5120]) + gzip.compress(tar[5120:]) + bytes(4096)
    assert set(members(check(data))) == set(members(check(tar)))


@pytest.mark.parametrize("size", [1, 511, 513, 10 * 1024])
def test_any_piece_boundaries_give_the_same_tar(size: int) -> None:
    """Headers and data are read across pieces of any size, empty pieces in between included."""
    tar = make_tar(
        *rootfs_entries(), entry("./opt/big", data=bytes(range(256)) * 5000), entry("./opt/after", data=b"x")
    )
    expected = check([tar])

    def ragged() -> Iterator[bytes]:
        for piece in pieces(tar, size):
            yield b""
            yield piece

    assert check(ragged()) == expected
    with tarfile.open(fileobj=io.BytesIO(expected)) as t:
        assert t.extractfile("opt/big").read() == bytes(range(256)) * 5000  # type: ignore[union-attr]
        assert t.extractfile("opt/after").read() == b"x"  # type: ignore[union-attr]


def test_the_kind_is_found_by_content_not_by_name() -> None:
    checked = CheckedTar([compress(rootfs(), "xz")])
    b"".join(checked)
    assert checked.kind == "xz"
    assert checked.entries == 11


# -- hostile archives: each refusal names the entry --------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry("/etc/passwd", data=b"x"), "absolute paths are not allowed"),
        (entry("../escape", data=b"x"), "'..'"),
        (entry("a/../../escape", data=b"x"), "'..'"),
        (entry("link", tarfile.SYMTYPE, link="../../etc/shadow"), "points outside the root"),
        (entry("a/b/link", tarfile.SYMTYPE, link="../../../x"), "points outside the root"),
        (entry("up", tarfile.SYMTYPE, link=".."), "points outside the root"),
        (entry("hard", tarfile.LNKTYPE, link="missing"), "not an earlier entry"),
        (entry("hard", tarfile.LNKTYPE, link="../../etc/passwd"), "'..'"),
        (entry("dev/sda", tarfile.BLKTYPE), "device nodes are not allowed"),
        (entry("dev/mem", tarfile.CHRTYPE), "device nodes are not allowed"),
        (entry("run/pipe", tarfile.FIFOTYPE), "fifos are not allowed"),
        (entry("etc/.wh.passwd", data=b""), "whiteout"),
        (entry("empty", tarfile.SYMTYPE, link=""), "empty target"),
        (entry("sparse", tarfile.GNUTYPE_SPARSE), "sparse files are not supported"),
        (entry("volume", b"V"), "not supported"),
    ],
)
def test_a_hostile_entry_is_refused_by_name(bad: tuple[tarfile.TarInfo, bytes], reason: str) -> None:
    data = make_tar(entry("ok", tarfile.DIRTYPE), bad, entry("after", data=b"x"))
    refused(data, f"archive entry {bad[0].name!r}", reason)


def seed_rootfs() -> bytes:
    """What ``tar --numeric-owner -cpzf base.tar.gz /`` gives: /dev's nodes, a hardlinked one, a fifo."""
    return make_tar(
        entry("./", tarfile.DIRTYPE),
        entry("./dev", tarfile.DIRTYPE),
        entry("./dev/null", tarfile.CHRTYPE),
        entry("./dev/zero", tarfile.CHRTYPE),
        entry("./dev/sda", tarfile.BLKTYPE),
        entry("./dev/loop0", tarfile.BLKTYPE),
        entry("./dev/null2", tarfile.LNKTYPE, link="./dev/null"),
        entry("./dev/pts", tarfile.DIRTYPE),
        entry("./run/initctl", tarfile.FIFOTYPE),
        entry("./etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
    )


def test_a_root_filesystem_skips_device_nodes_and_keeps_fifos() -> None:
    checked = CheckedTar(pieces(seed_rootfs()), Limits(root_filesystem=True))
    kept = members(b"".join(checked))
    assert sorted(kept) == [".", "dev", "dev/pts", "etc/passwd", "run/initctl"]
    assert kept["run/initctl"].isfifo()
    assert checked.warnings == [
        "skipped 5 device nodes (dev/null, dev/zero, dev/sda, …): the runtime provides /dev"
    ]


def test_one_skipped_device_node_is_named_alone() -> None:
    checked = CheckedTar([make_tar(entry("dev/null", tarfile.CHRTYPE))], Limits(root_filesystem=True))
    assert members(b"".join(checked)) == {}
    assert checked.warnings == ["skipped 1 device node (dev/null): the runtime provides /dev"]


def test_an_archive_without_device_nodes_has_no_warning() -> None:
    checked = CheckedTar([rootfs()], Limits(root_filesystem=True))
    b"".join(checked)
    assert checked.warnings == []


def test_project_files_still_refuse_device_nodes_and_fifos() -> None:
    refused(seed_rootfs(), "archive entry './dev/null'", "device nodes are not allowed")
    refused(make_tar(entry("run/initctl", tarfile.FIFOTYPE)), "fifos are not allowed")


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_refusals_name_the_entry_in_compressed_archives_too(kind: str) -> None:
    data = make_tar(entry("ok", data=b"x"), entry("/abs", data=b"x"))
    refused(compress(data, kind), "archive entry '/abs'", "absolute")


def test_a_symlink_may_point_up_inside_the_root() -> None:
    ok = make_tar(entry("a/b", tarfile.DIRTYPE), entry("a/b/link", tarfile.SYMTYPE, link="../../etc/x"))
    assert "a/b/link" in members(check(ok))


def test_a_hardlink_must_name_an_earlier_entry() -> None:
    later = make_tar(entry("hard", tarfile.LNKTYPE, link="file"), entry("file", data=b"x"))
    refused(later, "archive entry 'hard'", "not an earlier entry")
    to_dir = make_tar(entry("d", tarfile.DIRTYPE), entry("hard", tarfile.LNKTYPE, link="d"))
    refused(to_dir, "archive entry 'hard'")


def zeros_tar_gz(size: int, name: str = "zeros.bin") -> Iterator[bytes]:
    """A .tar.gz holding ``size`` bytes of zeros, made as it is read (never held whole)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    info = tarfile.TarInfo(name)
    info.size = size
    yield z.compress(info.tobuf(tarfile.GNU_FORMAT))
    block = bytes(MiB)
    for _ in range(size // MiB):
        out = z.compress(block)
        if out:
            yield out
    yield z.compress(bytes(-size % 512) + bytes(1024)) + z.flush()


def test_a_decompression_bomb_is_refused_early() -> None:
    produced = 0

    def counted() -> Iterator[bytes]:
        nonlocal produced
        for piece in zeros_tar_gz(1024 * MiB):  # 1 GiB of zeros: about 1 MB of gzip
            produced += len(piece)
            yield piece

    refused(counted(), "archive entry 'zeros.bin'", "decompression bomb")
    assert produced < 200_000  # refused after reading a small part of it


def test_size_and_count_limits() -> None:
    data = make_tar(entry("small", data=b"x" * 100), entry("big", data=b"x" * 5000), entry("more", data=b"x"))
    refused(data, "archive entry 'big'", "limit for one file", limits=Limits(max_file_bytes=4096))
    refused(data, "archive entry 'big'", "limit", limits=Limits(max_bytes=1000))
    refused(data, "archive entry 'more'", "more than 2 entries", limits=Limits(max_entries=2))


def test_oversized_headers_are_refused() -> None:
    info, _ = entry("x" * (5 * MiB), data=b"")
    refused(make_tar((info, b"")), "headers take more than")


# -- corrupt, truncated and unknown files ------------------------------------------------------------


def test_truncated_archives() -> None:
    tar = rootfs()
    refused(gzip.compress(tar)[:-300], "corrupt", "truncated")
    refused(lzma.compress(tar)[: len(lzma.compress(tar)) // 2], "corrupt")
    refused(tar[:2048], "ends inside this file's data")
    boundary = make_tar(entry("a", data=b"x" * 512))[:1024]  # whole entry, no end-of-archive marker
    refused(boundary, "corrupt after entry 'a'", "end-of-archive marker")


def test_corrupt_bytes() -> None:
    gz = bytearray(gzip.compress(rootfs()))
    gz[len(gz) // 2 : len(gz) // 2 + 16] = b"\xff" * 16
    refused(bytes(gz), "corrupt", "gzip")
    tar = bytearray(make_tar(entry("a", data=b"x"), entry("b", data=b"y"), entry("c", data=b"z")))
    tar[1024:1100] = b"\x01" * 76  # the header of "b"
    refused(bytes(tar), "corrupt after entry 'a'", "bad header")
    after_end = make_tar(entry("a", data=b"x")) + b"garbage" * 100
    refused(after_end, "data after the end-of-archive marker")
    refused(gzip.compress(rootfs()) + b"not gzip at all", "corrupt", "gzip")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, world\n" * 100, "not a tar archive"),
        (b"PK\x03\x04" + bytes(600), "zip is not supported"),
        (b"\x28\xb5\x2f\xfd" + bytes(600), "zstd is not supported"),
        (gzip.compress(b"just text, no tar\n" * 100), "gzip data does not hold a tar archive"),
    ],
)
def test_unknown_formats(data: bytes, reason: str) -> None:
    refused(data, reason)


# -- streaming --------------------------------------------------------------------------------------


def big_tar(size: int) -> Iterator[bytes]:
    info = tarfile.TarInfo("big.bin")
    info.size = size
    yield info.tobuf(tarfile.GNU_FORMAT)
    block = bytes(MiB)
    for _ in range(size // MiB):
        yield block
    yield bytes(1024)


def test_memory_stays_flat_whatever_the_size() -> None:
    tracemalloc.start()
    try:
        total = sum(len(piece) for piece in CheckedTar(big_tar(256 * MiB)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 512 + 256 * MiB + 1024
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_the_end_of_archive_marker_comes_last_and_only_after_everything_passed() -> None:
    data = make_tar(entry("a", data=b"x" * 10), entry("/bad", data=b"y"))
    sent: list[bytes] = []
    with pytest.raises(InvalidSpec):
        for piece in CheckedTar(pieces(data)):
            sent.append(piece)
    assert b"bad" not in b"".join(sent)  # the refused entry's header never went out
    assert not b"".join(sent).endswith(bytes(1024))
