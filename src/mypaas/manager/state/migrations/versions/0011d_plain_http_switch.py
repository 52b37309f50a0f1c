"""Slice 13D: an app can keep plain HTTP (no redirect to HTTPS)

Revision ID: 0011d
Revises: 0011b
"""

from alembic import op
import sqlalchemy as sa


revision = '0011d'
down_revision = '0011b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plain_http', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('plain_http')
