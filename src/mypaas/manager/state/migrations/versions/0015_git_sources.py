"""Issue 17 (sources): an app's repository, deploy key and watch (`deploy --git`, `git watch`)

Revision ID: 0015
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'git_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('app', sa.String(length=64), nullable=False),
        sa.Column('team', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('ref', sa.String(length=255), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False),
        sa.Column('secrets', sa.JSON(), nullable=False),
        sa.Column('watching', sa.Boolean(), nullable=False),
        sa.Column('branch', sa.String(length=255), nullable=False),
        sa.Column('poll_s', sa.Float(), nullable=False),
        sa.Column('last_sha', sa.String(length=64), nullable=False),
        sa.Column('failed_sha', sa.String(length=64), nullable=False),
        sa.Column('user', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('git_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_git_sources_app'), ['app'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('git_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_git_sources_app'))
    op.drop_table('git_sources')
