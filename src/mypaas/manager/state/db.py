"""Opening the state store: an SQLite file in WAL mode, migrated to the newest schema with Alembic."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import BackendError, Unavailable
from mypaas.manager.state.sealed import Sealer, use_sealer

_MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 5000  # a write waits this long for another's lock; then the store is busy (Unavailable)
RETRY_AFTER_S = 1  # what a busy store's answer tells the client to wait before trying again


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite would start transactions only before writes, so a read-then-write is not atomic;
    # take transactions over (the SQLAlchemy recipe) and begin each one IMMEDIATE, below.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    cur.execute("PRAGMA secure_delete=ON")  # a value replaced (a config var encrypted) leaves no trace
    cur.close()


def open_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        event.listen(engine, "handle_error", _busy)
    return engine


def _busy(context: ExceptionContext) -> None:
    """SQLite's "database is locked" (SQLITE_BUSY): a write waited BUSY_TIMEOUT_MS for another's lock
    (a machine under heavy load). Nothing was written (the transaction rolls back): the store is busy,
    not broken, and the caller may try again (the API answers 503 with Retry-After)."""
    error = context.original_exception
    if not isinstance(error, sqlite3.OperationalError):
        return
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "database is locked" in str(error):
        raise Unavailable(
            f"the state store is busy (a write waited {BUSY_TIMEOUT_MS / 1000:g} s for another's lock): "
            f"try again in a moment",
            retry_after=RETRY_AFTER_S,
        ) from error


def _begin_immediate(conn: Any) -> None:
    """Every transaction takes the write lock at its start: a check and the write it guards (the API
    and the reconcile loop both change apps) can never interleave. Transactions here last milliseconds.
    A session made by ``reading`` only reads: it begins deferred, so that (in WAL mode) it neither waits
    for a writer nor holds one up."""
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_READ_ONLY = "mypaas_read_only"


def reading(sessions: sessionmaker[Session]) -> Session:
    """A session for reads only (the reconcile loop's view of desired state, a listing): a consistent
    snapshot that waits for no write in progress. Never write through it."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, Engine) or engine.dialect.name != "sqlite":
        return sessions()
    return sessions(bind=engine.execution_options(**{_READ_ONLY: True}))


# The newest migration; a unit test checks it against Alembic's own idea of the head.
SCHEMA_HEAD = "0016"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Bring the schema to the newest revision (or to ``revision``; ``down``: back to it). Alembic (a dozen
    MB of memory) loads only when a migration is due, not at every start."""
    if revision == "head" and not down and current_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with _without_cascades(engine) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
        _check_foreign_keys(conn)
    if engine.dialect.name == "sqlite":  # what a migration replaced (values in clear) leaves the WAL too
        with engine.connect() as conn:  # outside a transaction (where a checkpoint cannot run)
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]


@contextmanager
def _without_cascades(engine: Engine) -> Iterator[Connection]:
    """A connection for migrating. On SQLite, foreign keys are off meanwhile (SQLite's own recipe for
    changing a table): a migration that rebuilds a table (``batch_alter_table``: a new table, the rows
    copied, the old one dropped) would otherwise cascade the drop to every row that refers to it — the
    apps table rebuilt would take every release, domain and secret with it."""
    with engine.connect() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:  # outside any transaction (there the pragma does nothing); no BEGIN is sent for it
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            yield conn
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    """Refuse (roll back) a migration that left a row pointing at nothing."""
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise BackendError(f"migrating the state store left rows that refer to nothing: {broken[:5]}")


@dataclass(frozen=True)
class Store:
    """The opened store: the engine (for the monitor's tables) and the ORM's sessions."""

    engine: Engine
    sessions: sessionmaker[Session]


def open_store(path: Path, sealer: Sealer | None = None) -> Store:
    """The store in ``path``; config vars encrypted with ``sealer`` (default: the key in the same folder)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sealer is None:
        from mypaas.manager.vault.crypto import KEY_FILE, Cipher

        sealer = Cipher.from_file(path.parent / KEY_FILE)
    engine = open_engine(f"sqlite:///{path}")
    use_sealer(engine, sealer)
    migrate(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
