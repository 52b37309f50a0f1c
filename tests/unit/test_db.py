"""The state store: migrations reach the newest schema, and the recorded head matches Alembic's."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from mypaas.manager.state import db


def test_schema_head_constant_matches_the_migrations() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == db.SCHEMA_HEAD


def test_open_store_migrates_once(tmp_path: Path) -> None:
    db.open_store(tmp_path / "state.db")
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    assert db.current_revision(engine) == db.SCHEMA_HEAD
    db.migrate(engine)  # at the head: nothing to do
    assert db.current_revision(engine) == db.SCHEMA_HEAD


def test_the_migrations_make_exactly_the_tables_the_code_declares(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mypaas.manager.state.models import Base
    from mypaas.monitor.tables import metadata as monitor_metadata

    db.open_store(tmp_path / "state.db")
    engine = db.open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), [Base.metadata, monitor_metadata])
    assert diff == []


def test_a_reading_session_waits_for_no_writer(tmp_path: Path) -> None:
    """The reconcile loop's view of desired state and the app listing read a snapshot: a write in
    progress (which holds SQLite's write lock from its start) does not hold them up."""
    from sqlalchemy import select, text

    from mypaas.manager.state.models import AppRow

    store = db.open_store(tmp_path / "state.db")
    with store.sessions.begin() as writer:
        writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is taken
        with db.reading(store.sessions) as reader:
            assert reader.scalars(select(AppRow)).all() == []
