"""The SSH keys `mypaas host add --key` sends: kept by the manager (mode 0600, one file per address)
to log in to the host again, and removed with it."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from mypaas.errors import InvalidSpec

MAX_KEY_BYTES = 16 * 1024


class KeyStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, address: str, pem: str) -> Path:
        """Keep the private key the manager logs in to ``address`` with (mode 0600)."""
        text = pem.strip()
        if (
            len(text) > MAX_KEY_BYTES
            or not text.startswith("-----BEGIN ")
            or not re.search(r"-----END [A-Z0-9 ]*PRIVATE KEY-----$", text)
        ):
            raise InvalidSpec(
                "the key is not a PEM private key (-----BEGIN ... PRIVATE KEY-----, as in ~/.ssh/id_ed25519)",
                field="key",
            )
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / _key_file(address)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (text + "\n").encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return path

    def drop(self, path: Path | None) -> None:
        if path is not None and path.parent == self.folder:
            path.unlink(missing_ok=True)


def _key_file(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", address) + ".key"


class MachineKey:
    """The platform's own SSH key pair for the machines `host create` makes: made once (ed25519,
    private half mode 0600), its public half put on every created machine for root at first boot."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the private key; the public one is beside it, ``.pub``
        self._lock = threading.Lock()  # two first creations at once make one pair

    def public(self) -> str:
        """The public key, one OpenSSH line; the pair is made on first use."""
        pub = self.path.with_name(self.path.name + ".pub")
        with self._lock:
            if not self.path.is_file() or not pub.is_file():
                self._make(pub)
            return pub.read_text(encoding="utf-8").strip()

    def _make(self, pub: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, private)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        pub.write_text(public.decode() + " mypaas-machines\n", encoding="utf-8")  # last: the pair is whole
