"""Passwords: hashed with argon2id (argon2-cffi, RFC 9106's memory-hard KDF), and the rule a new one
must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mypaas.errors import InvalidSpec

MIN_LENGTH = 12
MAX_LENGTH = 1024
MIN_DISTINCT = 5
RULE = (
    f"a password needs at least {MIN_LENGTH} characters, {MIN_DISTINCT} of them different,"
    " and must not contain the user name"
)

# argon2-cffi's defaults are RFC 9106's second recommended setting (argon2id, 64 MiB, 3 passes)
_hasher = PasswordHasher()
# a hash to verify against when the user does not exist, so that a wrong name costs as much as a wrong
# password (nobody learns which names exist from how fast the answer comes)
_DUMMY = _hasher.hash("not a password of anyone")


def check_rule(password: str, user: str) -> None:
    """Raise InvalidSpec naming the rule when ``password`` is too weak."""
    if not password:
        raise InvalidSpec(f"empty password: {RULE}", field="password")
    if len(password) > MAX_LENGTH:
        raise InvalidSpec(f"password longer than {MAX_LENGTH} characters", field="password")
    if len(password) < MIN_LENGTH or len(set(password)) < MIN_DISTINCT:
        raise InvalidSpec(f"password too weak: {RULE}", field="password")
    if user and user.lower() in password.lower():
        raise InvalidSpec(f"password contains the user name: {RULE}", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: the user has no password, or does not exist)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
