"""Slice B: an alert rule says whether its webhook may be on a private network (off for every rule so far)

Revision ID: 0011b
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011b'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_private', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.drop_column('allow_private')
