"""Slice 13G: a user's own certificates per domain (certs add), keys encrypted

Revision ID: 0012
Revises: 0011c
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'certs',
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('cert_pem', sa.Text(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('key_digest', sa.String(length=64), nullable=False),
        sa.Column('issuer', sa.Text(), nullable=False),
        sa.Column('not_after', sa.Float(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('domain'),
    )
    with op.batch_alter_table('certs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certs_app_id'), ['app_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('certs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_certs_app_id'))
    op.drop_table('certs')
