"""Columns stored encrypted: an app's config vars (its secrets, often) and its releases' specs (a
compose file's ``environment`` values) are kept in the state store as a token of the platform's key
(manager/vault/crypto.py), read back transparently. The key stays apart from the database
(``secrets_key_file``): a copy of ``state.db`` alone reveals no value.

The cipher belongs to the engine that opened the store (``use_sealer``), so two stores with two keys can
be open in one process. A stored value is ``{"$sealed": TOKEN}``; a plain object is a row written before
migration 0011 and is read as it is.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from sqlalchemy import JSON, Dialect, Engine
from sqlalchemy.types import TypeDecorator

from mypaas.errors import BackendError

SEALED_KEY = "$sealed"  # no config var is named so: their names are environment variable names


class Sealer(Protocol):
    """What encrypts the values (the vault's Cipher)."""

    def encrypt(self, value: bytes) -> str: ...

    def open_token(self, token: str) -> bytes: ...


_SEALERS: WeakKeyDictionary[Dialect, Sealer] = WeakKeyDictionary()


def use_sealer(engine: Engine, sealer: Sealer) -> None:
    """Values ``engine`` reads and writes in sealed columns are encrypted with ``sealer``."""
    _SEALERS[engine.dialect] = sealer


def sealer_of(dialect: Dialect) -> Sealer:
    try:
        return _SEALERS[dialect]
    except KeyError:
        raise BackendError("the state store was opened without the platform's secrets key") from None


def seal(sealer: Sealer, value: Any) -> dict[str, str]:
    return {SEALED_KEY: sealer.encrypt(json.dumps(value, sort_keys=True).encode())}


def is_sealed(stored: Any) -> bool:
    return isinstance(stored, dict) and set(stored) == {SEALED_KEY} and isinstance(stored[SEALED_KEY], str)


def unseal(sealer: Sealer, stored: Any) -> Any:
    """The value of ``stored`` (as it is when it was written before encryption)."""
    if not is_sealed(stored):
        return stored
    return json.loads(sealer.open_token(stored[SEALED_KEY]))


class SealedJSON(TypeDecorator[Any]):
    """A JSON column whose value is stored encrypted."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else seal(sealer_of(dialect), value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return unseal(sealer_of(dialect), value) if is_sealed(value) else value
