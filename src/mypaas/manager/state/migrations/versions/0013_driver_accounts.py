"""Slice 15: driver accounts (`mypaas driver add`), and which account made a host (`host create`)

Revision ID: 0013
Revises: 0012
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'driver_accounts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('secrets', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('driver_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_driver_accounts_name'), ['name'], unique=True)
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('machine_id', sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f('ix_hosts_account'), ['account'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hosts_account'))
        batch_op.drop_column('machine_id')
        batch_op.drop_column('account')
    with op.batch_alter_table('driver_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_driver_accounts_name'))
    op.drop_table('driver_accounts')
