"""Memory bombs against a real running manager (`mypaas up`, over HTTP): an anonymous 100 MB body is
answered 401 after a few MB, before the manager reads it; a build context of a million empty tar entries
is refused at the deploy request with one line; a deploy uploading a 200 MB build context is streamed to
a file under $MYPAAS_HOME/uploads, built from there and the file removed. The manager's peak RSS (VmHWM,
reset before each attack through /proc/PID/clear_refs) stays flat: a few MB, not the size of the attack."""

from __future__ import annotations

import json
import random
import select
import socket
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
FLAT_KB = 48 * 1024  # peak RSS growth allowed per attack


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def manager_pid(platform: kit.Platform) -> int:
    return int((platform.home / "run" / "manager.pid").read_text())


def reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    return status_kb(pid, "VmRSS")


def test_an_anonymous_100mb_body_is_answered_401_before_it_is_read(platform: kit.Platform) -> None:
    pid = manager_pid(platform)
    before = reset_peak(pid)
    head = (
        b"PATCH /api/v1/apps/bomb/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n" % MiB + b"x" * MiB + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", platform.api_port), timeout=10) as conn:
        conn.sendall(head)
        while sent < 100 * MiB and not select.select([conn], [], [], 0)[0]:
            try:
                conn.sendall(piece)
            except OSError:  # the manager answered and stopped reading
                break
            sent += MiB
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b'"field": "authorization"' in answer or b'"field":"authorization"' in answer
    assert sent < 100 * MiB
    assert status_kb(pid, "VmHWM") - before < FLAT_KB


def test_a_tar_bomb_build_context_is_refused_at_the_request(platform: kit.Platform) -> None:
    header = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    bomb = b"".join([*(z.compress(header * 4096) for _ in range(245)), z.compress(bytes(1024)), z.flush()])
    pid = manager_pid(platform)
    before = reset_peak(pid)
    r = platform.raw(
        "POST",
        "/api/v1/apps/bomb/deploys",
        data={"request": '{"dockerfile": "Dockerfile"}'},
        files={"app": ("app.tar.gz", bomb, "application/gzip")},
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "app"
    assert r.json()["error"].startswith("build context 'app': archive")
    assert status_kb(pid, "VmHWM") - before < FLAT_KB
    assert platform.api("GET", "/api/v1/apps") == []  # nothing made


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def _large_deploy(base: str, size: int, boundary: str) -> Iterator[bytes]:
    """A multipart deploy whose build context holds ``size`` random bytes (stored: the upload is that
    large), left out of the image by .dockerignore; made piece by piece."""
    request = json.dumps({"dockerfile": "Dockerfile"})
    yield f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{request}\r\n'.encode()
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="app"; filename="app.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    block = random.Random(7).randbytes(MiB)
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    blob = tarfile.TarInfo("blob.bin")
    blob.size = size
    head = _member("Dockerfile", f"FROM {base}\n".encode()) + _member(".dockerignore", b"blob.bin\n")
    yield z.compress(head + blob.tobuf(tarfile.USTAR_FORMAT))
    for _ in range(size // MiB):
        yield z.compress(block)
    yield z.compress(bytes(1024)) + z.flush()
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_200mb_upload_is_built_from_disk_with_memory_flat(
    platform: kit.Platform, images: dict[str, str]
) -> None:
    pid = manager_pid(platform)
    before = reset_peak(pid)
    boundary = "mypaas-large-upload-51d0c3"
    r = platform.raw(
        "POST",
        "/api/v1/apps/large/deploys",
        content=_large_deploy(images["v1"], 200 * MiB, boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=300,
    )
    assert r.status_code == 202, r.text
    try:
        op = platform.wait_op(r.json(), timeout=300)
        assert op["status"] == "succeeded", op
        assert "--- built web" in platform.api("GET", f"/api/v1/operations/{op['id']}")["log"]
        assert status_kb(pid, "VmHWM") - before < FLAT_KB
        assert list((platform.home / "uploads").iterdir()) == []
        assert (platform.home / "uploads").stat().st_mode & 0o777 == 0o700
    finally:
        platform.wait_op(platform.api("DELETE", "/api/v1/apps/large"))
