"""Issue 17: preview apps per git branch (`mypaas previews on|off`, `deploy --preview BRANCH`)

Revision ID: 0016
Revises: 0013
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'preview_settings',
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('max_previews', sa.Integer(), nullable=False),
        sa.Column('with_secrets', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('app_id'),
    )
    op.create_table(
        'previews',
        sa.Column('app_id', sa.Integer(), nullable=False),
        sa.Column('parent_id', sa.Integer(), nullable=False),
        sa.Column('branch', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['parent_id'], ['apps.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('app_id'),
        sa.UniqueConstraint('parent_id', 'branch'),
    )
    with op.batch_alter_table('previews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_previews_parent_id'), ['parent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('previews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_previews_parent_id'))
    op.drop_table('previews')
    op.drop_table('preview_settings')
