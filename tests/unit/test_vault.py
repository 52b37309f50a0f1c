"""The vault (manager/vault): the platform's key, encryption at rest, keyed digests, and the values a
release refers to — stored without their plaintext anywhere in the state store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from mypaas.domain import AppSpec, SecretMount, SecretSource, ServiceSpec
from mypaas.errors import BackendError, Conflict, InvalidSpec, NotFound
from mypaas.manager.state.db import Store, open_store
from mypaas.manager.state.models import AppRow, ReleaseRow, SecretRow
from mypaas.manager.vault import MASK, Cipher, Vault
from mypaas.manager.vault.crypto import load_or_make_key
from mypaas.states import AppState

VALUE = b"hunter2-correct-horse"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "state.db")


@pytest.fixture
def vault(store: Store, tmp_path: Path) -> Vault:
    return Vault(store.sessions, Cipher.from_file(tmp_path / "secrets.key"))


def app_row(store: Store, name: str = "shop") -> AppRow:
    with store.sessions.begin() as s:
        row = AppRow(name=name, state=AppState.RUNNING)
        s.add(row)
    return row


def spec(**secrets: SecretSource) -> AppSpec:
    web = ServiceSpec(
        name="web", image="x", secrets=[SecretMount(source=k, target=f"/run/secrets/{k}") for k in secrets]
    )
    return AppSpec(services={"web": web}, secrets=secrets)


def record(store: Store, app: AppRow, sealed: AppSpec, version: int) -> None:
    with store.sessions.begin() as s:
        s.add(ReleaseRow(app_id=app.id, version=version, spec=sealed.model_dump(mode="json"), config={}))


# -- the key and the cipher ------------------------------------------------------------------------


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.key"
    key = load_or_make_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_make_key(path) == key and len(key) == 32


def test_encryption_round_trip_checks_the_digest(tmp_path: Path) -> None:
    cipher = Cipher.from_file(tmp_path / "k")
    token = cipher.encrypt(VALUE)
    assert VALUE not in token.encode()
    assert cipher.decrypt(token, cipher.digest(VALUE)) == VALUE
    with pytest.raises(BackendError, match="does not match"):
        cipher.decrypt(token, cipher.digest(b"other"))
    with pytest.raises(BackendError, match="cannot be decrypted"):
        Cipher.from_file(tmp_path / "another").decrypt(token, cipher.digest(VALUE))


def test_digests_are_keyed(tmp_path: Path) -> None:
    one, two = Cipher.from_file(tmp_path / "a"), Cipher.from_file(tmp_path / "b")
    assert one.digest(VALUE) == one.digest(VALUE) != two.digest(VALUE)
    import hashlib

    assert one.digest(VALUE) != hashlib.sha256(VALUE).hexdigest()  # a guessable hash would leak short values


def test_a_broken_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "k").write_text("not base64!\n")
    with pytest.raises(BackendError, match="cannot read the secrets key"):
        Cipher.from_file(tmp_path / "k")


# -- values a deploy brings ------------------------------------------------------------------------


def test_seal_stores_values_encrypted_and_the_release_refers_to_digests(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    app = app_row(store)
    given = spec(db=SecretSource(kind="file", name="./db.txt"))
    with store.sessions.begin() as s:
        sealed = vault.seal(s, s.merge(app), given, {"secrets.db": VALUE})
    digest = sealed.secrets["db"].digest
    assert len(digest) == 64 and VALUE.decode() not in sealed.model_dump_json()
    record(store, app, sealed, 1)
    [file] = vault.files("shop", sealed, sealed.services["web"])
    assert (file.kind, file.name, file.digest, file.target, file.data) == (
        "secret",
        "db",
        digest,
        "/run/secrets/db",
        VALUE,
    )
    assert VALUE not in (tmp_path / "state.db").read_bytes()  # nor its plaintext anywhere in the store
    for wal in tmp_path.glob("state.db-*"):
        assert VALUE not in wal.read_bytes()


def test_inline_content_moves_into_the_store(store: Store, vault: Vault) -> None:
    app = app_row(store)
    given = AppSpec(
        services={"web": ServiceSpec(name="web", image="x")},
        configs={"c": SecretSource(kind="content", content="a=1")},
    )
    with store.sessions.begin() as s:
        sealed = vault.seal(s, s.merge(app), given, {})
    assert sealed.configs["c"].content is None and sealed.configs["c"].digest


@pytest.mark.parametrize(
    ("source", "values", "field", "words"),
    [
        (SecretSource(kind="file", name="./db.txt"), {}, "secrets.db.file", "'./db.txt' was not sent"),
        (
            SecretSource(kind="environment", name="DB"),
            {},
            "secrets.db.environment",
            "variable DB was not sent",
        ),
        (SecretSource(kind="file", name="./db.txt"), {"secrets.db": b""}, "secrets.db.file", "empty"),
        (
            SecretSource(kind="file", name="./db.txt"),
            {"secrets.db": b"x" * 600_000},
            "secrets.db.file",
            "at most 500 KiB",
        ),
        (SecretSource(kind="external", name="db_pw"), {}, "secrets.db", "`mypaas secrets set shop db_pw`"),
    ],
)
def test_a_value_that_cannot_be_had_names_its_field(
    store: Store, vault: Vault, source: SecretSource, values: dict[str, bytes], field: str, words: str
) -> None:
    app = app_row(store)
    with pytest.raises(InvalidSpec) as info, store.sessions.begin() as s:
        vault.seal(s, s.merge(app), spec(db=source), values)
    assert info.value.field == field and words in info.value.message


# -- secrets set outside the compose file ----------------------------------------------------------


def test_set_rebind_and_the_old_value_kept_for_its_release(store: Store, vault: Vault) -> None:
    app = app_row(store)
    with store.sessions.begin() as s:
        first, changed = vault.put(s, s.merge(app), "pw", b"one")
        assert changed
        assert vault.put(s, s.merge(app), "pw", b"one") == (first, False)
        sealed = vault.seal(s, s.merge(app), spec(pw=SecretSource(kind="external", name="pw")), {})
    assert sealed.secrets["pw"].digest == first
    record(store, app, sealed, 1)
    with store.sessions.begin() as s:
        second, _ = vault.put(s, s.merge(app), "pw", b"two")
    newer = vault.rebind(sealed, "pw", second)
    assert newer.secrets["pw"].digest == second and vault.rebind(sealed, "other", second) == sealed
    assert vault.files("shop", sealed, sealed.services["web"])[0].data == b"one"  # a rollback's value
    assert vault.files("shop", newer, newer.services["web"])[0].data == b"two"


def test_values_no_release_refers_to_go(store: Store, vault: Vault) -> None:
    app = app_row(store)
    with store.sessions.begin() as s:
        for value in (b"one", b"two", b"three"):
            vault.put(s, s.merge(app), "pw", value)
    with store.sessions() as s:
        rows = s.scalars(select(SecretRow)).all()
    assert [(r.name, r.current) for r in rows] == [("pw", True)]


def test_remove_is_refused_while_the_release_mounts_it(store: Store, vault: Vault) -> None:
    app = app_row(store)
    target = spec(pw=SecretSource(kind="external", name="pw"))
    with store.sessions.begin() as s:
        vault.put(s, s.merge(app), "pw", b"one")
        with pytest.raises(Conflict, match="remove it from the compose file"):
            vault.remove(s, s.merge(app), "pw", target)
        vault.remove(s, s.merge(app), "pw", None)
        with pytest.raises(NotFound):
            vault.remove(s, s.merge(app), "pw", None)


def test_the_listing_is_masked(store: Store, vault: Vault) -> None:
    app = app_row(store)
    with store.sessions.begin() as s:
        vault.put(s, s.merge(app), "pw", VALUE)
        vault.put(s, s.merge(app), "spare", VALUE)
        sealed = vault.seal(
            s,
            s.merge(app),
            spec(pw=SecretSource(kind="external", name="pw"), db=SecretSource(kind="file", name="./db")),
            {"secrets.db": VALUE},
        )
        listing = vault.listing(s, s.merge(app), sealed)
    assert [(e["name"], e["source"], e["value"], e["mounts"]) for e in listing] == [
        ("pw", "set as pw", MASK, ["web:/run/secrets/pw"]),
        ("db", "file ./db", MASK, ["web:/run/secrets/db"]),
        ("spare", "set", MASK, []),
    ]
    assert VALUE.decode() not in repr(listing)
