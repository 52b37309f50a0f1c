"""Benchmark: memory bombs against a real manager (tests/kit.py's Platform) and the manager's peak RSS
growth for each: a compose file of nested YAML aliases, a build context of a million empty tar entries,
an anonymous 100 MB request body (no Content-Length: streamed, chunked), a deploy of 1,000 parts, a
deploy uploading a 200 MB build context (streamed to a file under $MYPAAS_HOME/uploads and built from
there: measured until its build ends).

Each attack is refused; the manager's peak RSS is reset before each (``/proc/PID/clear_refs``) and read
after it (``VmHWM``). Last line: bomb_rss_mb=<largest growth> baseline_mb=<manager's RSS, idle>.
"""

from __future__ import annotations

import json
import random
import select
import socket
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import _common  # noqa: F401  (the repo on sys.path)
import httpx
from tests import kit

MiB = 1024 * 1024


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def alias_bomb() -> str:
    lines = ["x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    return "\n".join([*lines, "services:", "  web:", "    image: x", "    command: *i", ""])


def tar_bomb(entries: int = 1_000_000) -> bytes:
    """A gzipped tar of ``entries`` empty files, made lazily (a few MB compressed)."""
    header = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [z.compress(header * min(4096, entries - n)) for n in range(0, entries, 4096)]
    return b"".join([*parts, z.compress(bytes(1024)), z.flush()])


def anonymous_body(port: int, size: int = 100 * MiB) -> int:
    """POST up to ``size`` bytes, chunked, with no token, until the manager answers; its status."""
    head = (
        b"PATCH /api/v1/apps/bomb/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"%x\r\n" % MiB + b"x" * MiB + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        sent = 0
        while sent < size and not select.select([conn], [], [], 0)[0]:
            try:
                conn.sendall(piece)
            except OSError:  # the manager answered and stopped reading: its answer is waiting
                break
            sent += MiB
        answer = conn.recv(4096)
    print(f"  ({sent // MiB} MB sent before the answer)")
    return int(answer.split(b" ", 2)[1])


BOUNDARY = "mypaas-bench-3f9c2a7e51"


def large_context(size: int) -> Iterator[bytes]:
    """A gzipped tar (stored: as large as its data) of a Dockerfile and ``size`` random bytes, made lazily."""
    dockerfile = b"FROM scratch\nCOPY Dockerfile /\n"
    head = tarfile.TarInfo("Dockerfile")
    head.size = len(dockerfile)
    blob = tarfile.TarInfo("blob.bin")
    blob.size = size
    block = random.Random(7).randbytes(MiB)
    z = zlib.compressobj(0, zlib.DEFLATED, 31)
    yield z.compress(head.tobuf() + dockerfile + bytes(-len(dockerfile) % 512) + blob.tobuf())
    for _ in range(size // MiB):
        yield z.compress(block)
    yield z.compress(bytes(1024))
    yield z.flush()


def large_upload(http: httpx.Client, size: int = 200 * MiB) -> int:
    """Deploy a ``size`` build context, streamed (chunked); wait until its build ended; the status."""

    def body() -> Iterator[bytes]:
        request = json.dumps({"dockerfile": "Dockerfile"})
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="request"\r\n\r\n{request}\r\n'.encode()
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="app"; filename="app.tar.gz"\r\n'
            "Content-Type: application/gzip\r\n\r\n"
        ).encode()
        yield from large_context(size)
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    ctype = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    r = http.post("/apps/upload/deploys", content=body(), headers=ctype)
    op = r.json()
    while r.status_code == 202 and op["status"] == "building":
        op = http.get(f"/operations/{op['id']}", params={"wait": 30, "log_offset": op["log_offset"]}).json()
    print(f"  (the build: {op.get('status')}; {op.get('message') or ''})")
    return r.status_code


def attacks(http: httpx.Client, port: int) -> list[tuple[str, Callable[[], int]]]:
    bomb = tar_bomb()
    parts = [(f"files:p{i}", (f"p{i}.tar.gz", b"x" * 100_000, "application/gzip")) for i in range(1000)]

    def deploy(**kw: object) -> int:
        return http.post("/apps/bomb/deploys", **kw).status_code  # type: ignore[arg-type]

    context = {"app": ("app.tar.gz", bomb, "application/gzip")}
    return [
        ("yaml aliases", lambda: deploy(json={"compose": alias_bomb()})),
        ("tar of 1,000,000 empty entries", lambda: deploy(data={"request": DOCKERFILE}, files=context)),
        ("anonymous 100 MB body", lambda: anonymous_body(port)),
        ("1,000 parts of 100 kB", lambda: deploy(data={"request": '{"image": "x:1"}'}, files=parts)),
        ("large upload: a 200 MB build context", lambda: large_upload(http)),
    ]


DOCKERFILE = '{"dockerfile": "Dockerfile"}'


def main() -> None:
    with kit.running_platform() as p:
        pid = int((p.home / "run" / "manager.pid").read_text())
        base = f"http://127.0.0.1:{p.api_port}/api/v1"
        headers = {"Authorization": f"Bearer {p.token}"}
        with httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=120) as http:
            http.get("/apps").raise_for_status()  # warm: the first request's imports are not a bomb
            baseline = status_kb(pid, "VmRSS")
            growth = []
            for name, attack in attacks(http, p.api_port):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
                before = status_kb(pid, "VmRSS")
                status = attack()
                grew = (status_kb(pid, "VmHWM") - before) / 1024
                growth.append(grew)
                print(f"{name}: answered {status}, manager peak RSS +{grew:.1f} MB", flush=True)
    print(f"bomb_rss_mb={max(growth):.1f} baseline_mb={baseline / 1024:.1f}")


if __name__ == "__main__":
    main()
