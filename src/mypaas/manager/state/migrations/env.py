"""Alembic environment: runs migrations on the connection MyPaas hands over (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from mypaas.manager.state.models import Base
from mypaas.monitor.tables import metadata as monitor_metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic revision --autogenerate` by a developer
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://").connect()

context.configure(
    connection=connection, target_metadata=[Base.metadata, monitor_metadata], render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
