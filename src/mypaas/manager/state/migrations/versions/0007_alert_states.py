"""alert states kept across restarts

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_states',
    sa.Column('rule', sa.String(length=63), nullable=False),
    sa.Column('target', sa.String(length=140), nullable=False),
    sa.Column('since', sa.Float(), nullable=True),
    sa.Column('firing', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('rule', 'target')
    )


def downgrade() -> None:
    op.drop_table('alert_states')
