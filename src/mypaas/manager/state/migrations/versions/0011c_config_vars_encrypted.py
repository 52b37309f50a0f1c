"""slice C: the apps' config vars encrypted at rest

Each release's ``config`` and ``spec`` (a compose file's ``environment`` values are in it) are stored as
a token of the platform's key (manager/state/sealed.py); the downgrade writes them back in clear. The values do not change, so no running app is rolled out.

Revision ID: 0011c
Revises: 0011d
"""

import json

from alembic import op
import sqlalchemy as sa

from mypaas.manager.state.sealed import is_sealed, seal, sealer_of, unseal


revision = '0011c'
down_revision = '0011d'
branch_labels = None
depends_on = None


COLUMNS = ("config", "spec")


def _rewrite(encrypt: bool) -> None:
    for column in COLUMNS:
        _rewrite_column(column, encrypt)


def _rewrite_column(column: str, encrypt: bool) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {column} FROM releases")).fetchall()
    values = [(row_id, json.loads(stored) if isinstance(stored, str) else stored) for row_id, stored in rows]
    due = [(row_id, value) for row_id, value in values if encrypt != is_sealed(value)]
    if not due:
        return
    sealer = sealer_of(conn.dialect)  # the key is needed only when there is something to change
    for row_id, value in due:
        new = seal(sealer, value) if encrypt else unseal(sealer, value)
        conn.execute(
            sa.text(f"UPDATE releases SET {column} = :value WHERE id = :id"),
            {"value": json.dumps(new), "id": row_id},
        )


def upgrade() -> None:
    _rewrite(encrypt=True)


def downgrade() -> None:
    _rewrite(encrypt=False)
