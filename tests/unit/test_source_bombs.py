"""Tar bombs in build contexts (build/contexts.py): a source build's upload goes through the import
checker's limits as a stream; millions of empty entries are refused with one line and memory stays flat."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mypaas.build import contexts, source
from mypaas.build.archive import Limits
from mypaas.errors import InvalidSpec

MiB = 1024 * 1024


def empty_entries(count: int, distinct: bool = False) -> Iterator[bytes]:
    """A tar of ``count`` empty files, made lazily (2048 headers at a time)."""
    same = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT)
    for start in range(0, count, 2048):
        n = min(2048, count - start)
        if distinct:
            yield b"".join(
                tarfile.TarInfo(f"f{i}").tobuf(tarfile.USTAR_FORMAT) for i in range(start, start + n)
            )
        else:
            yield same * n
    yield bytes(2 * tarfile.BLOCKSIZE)


def gzipped(pieces: Iterator[bytes]) -> bytes:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    return b"".join(z.compress(piece) for piece in pieces) + z.flush()


def peak_while(fn: object) -> tuple[int, InvalidSpec]:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidSpec) as info:
            fn()  # type: ignore[operator]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, info.value


def test_millions_of_empty_entries_are_refused_with_one_line_and_flat_memory() -> None:
    bomb = gzipped(empty_entries(1_000_000))  # 512 MB of tar headers
    peak, exc = peak_while(lambda: source.detect(bomb))
    assert exc.field == "app"
    assert exc.message.startswith("the uploaded folder: archive")
    assert "\n" not in exc.message
    assert peak < 16 * MiB, f"peak {peak:,} bytes"


def test_past_the_entry_limit_a_context_is_refused_naming_the_entry() -> None:
    ctx = gzipped(empty_entries(5000, distinct=True))
    with pytest.raises(InvalidSpec) as exc:
        list(contexts.walk(ctx, "the uploaded folder", "app", Limits(max_entries=1000)))
    assert exc.value.message == "the uploaded folder: archive entry 'f1000': more than 1,000 entries"
    assert exc.value.field == "app"


def test_a_path_escaping_the_folder_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("../../etc/cron.d/x"), io.BytesIO(b""))
    with pytest.raises(InvalidSpec) as exc:
        source.detect(out.getvalue())
    assert "'..' in the path would escape the root" in exc.value.message


def test_a_dockerfile_deploy_with_a_tar_bomb_is_refused_at_the_request(api: TestClient) -> None:
    bomb = gzipped(empty_entries(110_000, distinct=True))
    files = {"app": ("app.tar.gz", bomb, "application/gzip")}
    r = api.post("/api/v1/apps/shop/deploys", data={"request": '{"dockerfile": "Dockerfile"}'}, files=files)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "app"
    assert r.json()["error"].startswith("build context 'app': archive")
