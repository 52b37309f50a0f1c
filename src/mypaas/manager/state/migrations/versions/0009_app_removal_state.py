"""An app's removal keeps its volumes unless asked, can be forced, and says what blocks it

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remove_volumes', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('remove_force', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('blocked', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('blocked')
        batch_op.drop_column('remove_force')
        batch_op.drop_column('remove_volumes')
