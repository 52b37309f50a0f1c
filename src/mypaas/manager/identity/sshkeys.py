"""Users' SSH public keys (`mypaas user key add|ls|rm`): parsed and checked with ``cryptography``
(ed25519, ECDSA, RSA of 2048 bits or more), stored with their SHA256 fingerprint, which is unique: one
key signs in one user only. The platform's git endpoint finds the pusher by the key they signed in with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import Conflict, InvalidSpec, NotFound
from mypaas.manager.identity.policy import Principal
from mypaas.manager.state.models import SshKeyRow, UserRow

MIN_RSA_BITS = 2048
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
MAX_KEY_TEXT = 16384
_NAME_UNSAFE = re.compile(r"[^\x20-\x7e]")


@dataclass(frozen=True)
class PublicKey:
    """A checked OpenSSH public key: its type, ``TYPE BASE64`` form, comment and SHA256 fingerprint."""

    type: str
    text: str
    comment: str
    fingerprint: str


def fingerprint_of(blob: bytes) -> str:
    """``SHA256:<base64, no padding>`` of a key's wire form: what `ssh-keygen -lf` prints."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_public_key(text: str) -> PublicKey:
    """One OpenSSH public key line (``TYPE BASE64 [COMMENT]``, as in ``id_ed25519.pub``); InvalidSpec
    naming what is wrong for a private key, several keys, an unknown type, a short RSA key, or garbage."""
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise InvalidSpec("that is a private key: give its public half (the .pub file)", field="key")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1 or len(text) > MAX_KEY_TEXT:
        raise InvalidSpec(
            "expected one OpenSSH public key line (TYPE BASE64 [COMMENT], e.g. id_ed25519.pub)", field="key"
        )
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        kinds = ", ".join(KEY_TYPES)
        raise InvalidSpec(f"not an OpenSSH public key of a known type ({kinds})", field="key")
    kind, body = parts[0], parts[1]
    blob = _decode(body)
    _check_key(kind, lines[0])
    comment = parts[2].strip() if len(parts) > 2 else ""
    return PublicKey(kind, f"{kind} {body}", _NAME_UNSAFE.sub("?", comment)[:200], fingerprint_of(blob))


def _decode(body: str) -> bytes:
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSpec("the key's body is not valid base64", field="key") from None


def _check_key(kind: str, line: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(line.encode())
    except (ValueError, TypeError) as exc:
        raise InvalidSpec(f"not a valid {kind} public key ({exc})", field="key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidSpec(
            f"an RSA key of {key.key_size} bits is too weak: use ed25519, ECDSA or RSA of at least "
            f"{MIN_RSA_BITS} bits",
            field="key",
        )


def _may_manage(who: Principal, user: str) -> None:
    """One's own keys, or anyone's for the platform admin; another user's are not found (404), as another
    user's tokens are not."""
    if who.user != user and not (who.admin and who.app is None):
        raise NotFound(
            f"no keys of user {user!r} for you: only a platform admin manages another user's keys",
            field="user",
        )


class SshKeys:
    """Mixed into Identity: the users' SSH keys."""

    _sessions: sessionmaker[Session]

    def add_key(self, who: Principal, user: str, text: str, name: str = "") -> dict[str, Any]:
        """Register a public key for ``user`` (the caller themself, or anyone for a platform admin)."""
        _may_manage(who, user)
        key = parse_public_key(text)
        with self._sessions.begin() as s:
            owner = _user_row(s, user)
            taken = s.scalar(select(SshKeyRow).where(SshKeyRow.fingerprint == key.fingerprint))
            if taken is not None:
                raise Conflict(f"key {key.fingerprint} is already registered", field="key")
            row = SshKeyRow(
                user_id=owner.id,
                name=(name or key.comment or key.type)[:200],
                type=key.type,
                fingerprint=key.fingerprint,
                public_key=key.text,
            )
            s.add(row)
            s.flush()
            return _key_dict(row, user)

    def keys(self, who: Principal, user: str) -> list[dict[str, Any]]:
        _may_manage(who, user)
        with self._sessions() as s:
            owner = _user_row(s, user)
            rows = s.scalars(select(SshKeyRow).where(SshKeyRow.user_id == owner.id).order_by(SshKeyRow.id))
            return [_key_dict(r, user) for r in rows]

    def remove_key(self, who: Principal, user: str, fingerprint: str) -> dict[str, Any]:
        _may_manage(who, user)
        wanted = fingerprint.strip()
        if not wanted.startswith("SHA256:"):
            wanted = "SHA256:" + wanted
        with self._sessions.begin() as s:
            owner = _user_row(s, user)
            row = s.scalar(
                select(SshKeyRow).where(SshKeyRow.user_id == owner.id, SshKeyRow.fingerprint == wanted)
            )
            if row is None:
                raise NotFound(f"user {user!r} has no key {wanted}", field="fingerprint")
            s.delete(row)
            return _key_dict(row, user)

    def key_owner(self, blob: bytes) -> str | None:
        """The user a public key (its wire form) is registered to, or None."""
        with self._sessions() as s:
            row = s.scalar(select(SshKeyRow).where(SshKeyRow.fingerprint == fingerprint_of(blob)))
            return row.user.name if row is not None else None


def _user_row(s: Session, name: str) -> UserRow:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        raise NotFound(f"no user {name!r}", field="user")
    return row


def _key_dict(row: SshKeyRow, user: str) -> dict[str, Any]:
    return {
        "user": user,
        "name": row.name,
        "type": row.type,
        "fingerprint": row.fingerprint,
        "public_key": row.public_key,
        "created": row.created_at or time.time(),
    }
