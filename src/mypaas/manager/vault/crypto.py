"""The platform's secret key and what it does: encrypts values at rest (Fernet: AES-128-CBC with an
HMAC-SHA256) and gives each value a keyed digest (HMAC-SHA256), which releases and engine objects are
named by without revealing anything about the value (a plain hash of a short password could be
guessed by trying).

The key is 32 random bytes made at first start in ``$MYPAAS_HOME/secrets.key`` (mode 0600); the two
keys in use are derived from it. Back it up with the state store: without it the values are lost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mypaas.errors import BackendError

KEY_FILE = "secrets.key"
_KEY_BYTES = 32


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class Cipher:
    """Encrypts and decrypts values with the platform's key, and digests them."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise BackendError(f"the secrets key must be {_KEY_BYTES} bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(key, b"mypaas secrets: encryption")))
        self._mac_key = _derive(key, b"mypaas secrets: digests")

    @classmethod
    def from_file(cls, path: Path) -> Cipher:
        """The key in ``path``, made there (mode 0600) when the file does not exist yet."""
        return cls(load_or_make_key(path))

    def encrypt(self, value: bytes) -> str:
        return self._fernet.encrypt(value).decode("ascii")

    def open_token(self, token: str) -> bytes:
        """The value of ``token`` (Fernet checks its own MAC: a changed token is refused)."""
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError) as exc:
            raise BackendError("a stored value cannot be decrypted with this platform's key") from exc

    def decrypt(self, token: str, digest: str) -> bytes:
        """The value of ``token``, checked against its ``digest``."""
        value = self.open_token(token)
        if not hmac.compare_digest(self.digest(value), digest):
            raise BackendError("a stored secret does not match its digest")
        return value

    def digest(self, value: bytes) -> str:
        return hmac.new(self._mac_key, value, hashlib.sha256).hexdigest()


def load_or_make_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_key(path)
    except OSError as exc:
        raise BackendError(f"cannot make the secrets key {path}: {exc.strerror or exc}") from exc
    key = os.urandom(_KEY_BYTES)
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def _read_key(path: Path) -> bytes:
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot read the secrets key {path}: {exc}") from exc
    if len(key) != _KEY_BYTES:
        raise BackendError(f"the secrets key {path} is not {_KEY_BYTES} bytes of base64")
    return key
