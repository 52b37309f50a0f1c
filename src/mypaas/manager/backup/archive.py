"""The backup archive's format: one tar, written and read as a stream, everything but its manifest
encrypted with a key derived from a passphrase (scrypt, then AES-256-GCM).

Members, in order:
  ``manifest.json``      in clear: the format, MyPaas's version, the schema revision, when, what is
                         inside (each part's name and, when known before it starts, its size), the KDF's
                         salt and parameters, and a check value that tells a wrong passphrase at once;
  ``data/PART/NNNNNN``   each part (the state store, the data folder's files, the registry's data, one
                         volume) cut in chunks of at most ``CHUNK`` bytes, each sealed on its own with the
                         part's name, its index and whether it is the last one as associated data (so a
                         chunk cannot be moved, dropped or a part cut short without the reader noticing);
  ``end``                sealed: every part's size and SHA-256, and the manifest's own digest.

A reader takes nothing for granted until ``end`` checked out: a truncated or changed archive is refused
with one line, whatever part it breaks in.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mypaas.errors import InvalidSpec

FORMAT = "mypaas-backup"
VERSION = 1
CHUNK = 1 << 20
MANIFEST = "manifest.json"
END = "end"
_NONCE = 12
_CHECK = b"mypaas backup passphrase check"
KDF = {"name": "scrypt", "n": 2**17, "r": 8, "p": 1}  # 128 MiB, under a second on a small machine
MIN_PASSPHRASE = 12
# The manifest is read before anything is authenticated: its scrypt parameters are bounded so that a
# forged one cannot ask for gigabytes (scrypt needs 128 * n * r bytes) or hours.
_KDF_MAX_MEMORY = 1 << 28  # 256 MiB
_KDF_MAX_WORK = 1 << 22  # n * r * p: 4x the writer's


def derive_key(passphrase: str, salt: bytes, kdf: dict[str, Any]) -> AESGCM:
    """The archive's key: scrypt over the passphrase (costly on purpose: guessing is slow)."""
    if kdf.get("name") != "scrypt":
        raise InvalidSpec(f"archive: unknown key derivation {kdf.get('name')!r}", field="archive")
    try:
        n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidSpec("archive: unsupported key derivation parameters", field="archive") from exc
    if not (n >= 2 and n & (n - 1) == 0 and r >= 1 and p >= 1) or (
        128 * n * r > _KDF_MAX_MEMORY or n * r * p > _KDF_MAX_WORK
    ):
        raise InvalidSpec("archive: unsupported key derivation parameters", field="archive")
    try:
        key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    except (TypeError, ValueError, MemoryError) as exc:
        raise InvalidSpec("archive: unsupported key derivation parameters", field="archive") from exc
    return AESGCM(key)


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidSpec(
            f"the passphrase must have at least {MIN_PASSPHRASE} characters", field="passphrase"
        )


def _seal(key: AESGCM, data: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + key.encrypt(nonce, data, aad)


def _open(key: AESGCM, sealed: bytes, aad: bytes, what: str) -> bytes:
    try:
        return key.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise InvalidSpec(f"archive: {what} is damaged or was changed", field="archive") from exc


def _aad(part: str, index: int, last: bool) -> bytes:
    return f"{FORMAT}/{part}/{index}/{'last' if last else 'more'}".encode()


def _member(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


@dataclass
class Part:
    """One part of the archive: its name, what it is, its size when known before it starts, and its
    content as pieces of bytes (read only when the writer comes to it)."""

    name: str
    kind: str
    content: Iterable[bytes]
    size: int | None = None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. a volume's engine labels

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "size": self.size, **self.info}


def manifest_for(parts: list[Part], facts: dict[str, Any], key_salt: bytes, key: AESGCM) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": time.time(),
        **facts,
        "parts": [p.describe() for p in parts],
        "kdf": {**KDF, "salt": base64.b64encode(key_salt).decode()},
        "check": base64.b64encode(_seal(key, _CHECK, b"check")).decode(),
    }


def write_archive(passphrase: str, facts: dict[str, Any], parts: list[Part]) -> Iterator[bytes]:
    """The archive as pieces of bytes, each part read and sealed as it is reached."""
    check_passphrase(passphrase)
    salt = os.urandom(16)
    key = derive_key(passphrase, salt, KDF)
    manifest = json.dumps(manifest_for(parts, facts, salt, key), indent=1).encode()
    yield _member(MANIFEST, manifest)
    sums: dict[str, dict[str, Any]] = {}
    for part in parts:
        digest, size = hashlib.sha256(), 0
        for index, chunk, last in _chunks(part.content):
            digest.update(chunk)
            size += len(chunk)
            yield _member(f"data/{part.name}/{index:06d}", _seal(key, chunk, _aad(part.name, index, last)))
        sums[part.name] = {"size": size, "sha256": digest.hexdigest()}
    end = {"parts": sums, "manifest_sha256": hashlib.sha256(manifest).hexdigest()}
    yield _member(END, _seal(key, json.dumps(end).encode(), END.encode()))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _chunks(content: Iterable[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """``content`` cut in CHUNK-sized pieces, each marked whether it is the last (one empty piece for
    an empty part)."""
    buf = bytearray()
    index = 0
    ready: bytes | None = None
    for piece in content:
        buf += piece
        while len(buf) >= CHUNK:
            if ready is not None:
                yield index, ready, False
                index += 1
            ready, buf = bytes(buf[:CHUNK]), buf[CHUNK:]
    if buf or ready is None:
        if ready is not None:
            yield index, ready, False
            index += 1
        yield index, bytes(buf), True
    else:
        yield index, ready, True


@dataclass
class Reader:
    """An archive being read: its manifest (checked, and the passphrase with it), then its parts."""

    manifest: dict[str, Any]
    _tar: tarfile.TarFile
    _key: AESGCM
    _manifest_sha: str
    _sums: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parts(self) -> Iterator[tuple[dict[str, Any], Iterator[bytes]]]:
        """Each part (its manifest entry) with its content; a part's content must be read whole before
        the next part is asked for. Ends after ``end`` was checked against what was read."""
        expected = {p["name"]: p for p in self.manifest["parts"]}
        member = self._next()
        while member is not None and member.name != END:
            name = _part_of(member.name)
            if name not in expected or name in self._sums:
                raise InvalidSpec(f"archive: unexpected entry {member.name!r}", field="archive")
            content = self._content(name, member)
            yield expected[name], content
            for _ in content:  # what the caller did not read is still checked
                pass
            member = self._next()
        if member is None:
            raise InvalidSpec("archive: it ends too soon (truncated?)", field="archive")
        self._check_end(member, expected)

    def _content(self, name: str, first: tarfile.TarInfo) -> Iterator[bytes]:
        digest, size, index, member = hashlib.sha256(), 0, 0, first
        while True:
            if member.name != f"data/{name}/{index:06d}":
                raise InvalidSpec(f"archive: part {name!r} is missing a piece at {index}", field="archive")
            sealed = self._read(member)
            try:
                chunk, last = _open(self._key, sealed, _aad(name, index, False), f"part {name!r}"), False
            except InvalidSpec:
                chunk, last = _open(self._key, sealed, _aad(name, index, True), f"part {name!r}"), True
            digest.update(chunk)
            size += len(chunk)
            yield chunk
            if last:
                self._sums[name] = {"size": size, "sha256": digest.hexdigest()}
                return
            index += 1
            nxt = self._next()
            if nxt is None:
                raise InvalidSpec("archive: it ends too soon (truncated?)", field="archive")
            member = nxt

    def _check_end(self, member: tarfile.TarInfo, expected: dict[str, Any]) -> None:
        end = json.loads(_open(self._key, self._read(member), END.encode(), "its end"))
        if end.get("manifest_sha256") != self._manifest_sha:
            raise InvalidSpec("archive: its manifest was changed", field="archive")
        if end.get("parts") != self._sums or set(self._sums) != set(expected):
            raise InvalidSpec("archive: its parts do not match what was written", field="archive")

    def _next(self) -> tarfile.TarInfo | None:
        try:
            return self._tar.next()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSpec(f"archive: not a readable tar ({exc})", field="archive") from exc

    def _read(self, member: tarfile.TarInfo) -> bytes:
        if not member.isfile() or member.size > CHUNK + 64:
            raise InvalidSpec(f"archive: unexpected entry {member.name!r}", field="archive")
        try:
            f = self._tar.extractfile(member)
            data = f.read() if f is not None else b""
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidSpec(f"archive: it ends too soon (truncated?) ({exc})", field="archive") from exc
        if len(data) != member.size:
            raise InvalidSpec("archive: it ends too soon (truncated?)", field="archive")
        return data


def _part_of(member: str) -> str:
    if not member.startswith("data/") or member.count("/") < 2:
        raise InvalidSpec(f"archive: unexpected entry {member!r}", field="archive")
    return member[len("data/") : member.rindex("/")]


def open_archive(src: IO[bytes], passphrase: str) -> Reader:
    """Start reading: the manifest is read and the passphrase checked (one line when it is wrong)."""
    try:
        tar = tarfile.open(fileobj=src, mode="r|")  # noqa: SIM115 - the Reader keeps it
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isfile() or first.size > 16 * 2**20:
            raise InvalidSpec("archive: not a MyPaas backup (no manifest first)", field="archive")
        f = tar.extractfile(first)
        raw = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidSpec(f"archive: not a MyPaas backup or truncated ({exc})", field="archive") from exc
    try:
        manifest = json.loads(raw)
        if manifest.get("format") != FORMAT:
            raise ValueError("not a MyPaas backup")
        if int(manifest.get("version", 0)) > VERSION:
            raise ValueError(f"format version {manifest.get('version')} is newer than this MyPaas reads")
        kdf = dict(manifest["kdf"])
        salt = base64.b64decode(kdf.pop("salt"))
        check = base64.b64decode(manifest["check"])
        names = [str(p["name"]) for p in manifest["parts"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidSpec(f"archive: bad manifest ({exc})", field="archive") from exc
    if len(set(names)) != len(names):
        raise InvalidSpec("archive: bad manifest (a part named twice)", field="archive")
    key = derive_key(passphrase, salt, kdf)
    try:
        key.decrypt(check[:_NONCE], check[_NONCE:], b"check")
    except (InvalidTag, ValueError) as exc:
        raise InvalidSpec("wrong passphrase for this backup", field="passphrase") from exc
    return Reader(manifest, tar, key, hashlib.sha256(raw).hexdigest())


def read_manifest(src: IO[bytes]) -> dict[str, Any]:
    """The manifest alone (no passphrase needed): what the archive holds."""
    head = src.read(4 * 2**20)  # the manifest comes first; a few MB hold thousands of apps
    try:
        with tarfile.open(fileobj=io.BytesIO(head), mode="r|") as tar:
            first = tar.next()
            f = tar.extractfile(first) if first is not None and first.name == MANIFEST else None
            return dict(json.loads(f.read())) if f is not None else {}
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return {}
