"""Users, teams and their members; scoped, expiring, revocable tokens; every app in a team; the audit log

The tokens move to a new table (a token's name is unique per user now). On an upgrade the old admin
tokens become tokens of the platform admin "admin", who owns the team "default" that every existing app
joins; the hosts' pull token stays pull-only.

Revision ID: 0010
Revises: 0009
"""

import time

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'teams',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('teams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_teams_name'), ['name'], unique=True)

    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('password', sa.Text(), nullable=True),
        sa.Column('admin', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_name'), ['name'], unique=True)

    op.create_table(
        'members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'user_id'),
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_user_id'), ['user_id'], unique=False)

    op.create_table(
        'access_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('app', sa.String(length=63), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=True),
        sa.Column('revoked_at', sa.Float(), nullable=True),
        sa.Column('last_used_at', sa.Float(), nullable=True),
        sa.Column('last_used_from', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('user_id', 'name'),
    )
    with op.batch_alter_table('access_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_tokens_digest'), ['digest'], unique=True)

    op.create_table(
        'audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('user', sa.String(length=63), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('app', sa.String(length=63), nullable=False),
        sa.Column('host', sa.String(length=253), nullable=False),
        sa.Column('team', sa.String(length=63), nullable=False),
        sa.Column('result', sa.String(length=16), nullable=False),
        sa.Column('status', sa.Integer(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_user'), ['user'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_app'), ['app'], unique=False)

    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_apps_team_id'), ['team_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_apps_team_id_teams'), 'teams', ['team_id'], ['id'])

    _carry_over(op.get_bind())
    op.drop_table('tokens')


def _carry_over(bind: sa.engine.Connection) -> None:
    """An upgraded platform: its admin tokens belong to the platform admin "admin", owner of the team
    "default", which every existing app joins; the pull token stays a pull token (no user)."""
    now = time.time()
    old = bind.execute(sa.text("SELECT name, digest, role, created_at FROM tokens")).fetchall()
    apps = bind.execute(sa.text("SELECT count(*) FROM apps")).scalar() or 0
    if not old and not apps:
        return  # a new platform: the manager makes its admin and team at first start
    bind.execute(sa.text("INSERT INTO teams (name, created_at) VALUES ('default', :now)"), {"now": now})
    team = bind.execute(sa.text("SELECT id FROM teams WHERE name = 'default'")).scalar()
    bind.execute(sa.text("UPDATE apps SET team_id = :team"), {"team": team})
    if not any(role == "admin" for _, _, role, _ in old):
        for name, digest, role, created in old:
            _token(bind, name, digest, None, role, created)
        return
    bind.execute(
        sa.text("INSERT INTO users (name, password, admin, created_at) VALUES ('admin', NULL, 1, :now)"),
        {"now": now},
    )
    user = bind.execute(sa.text("SELECT id FROM users WHERE name = 'admin'")).scalar()
    bind.execute(
        sa.text("INSERT INTO members (team_id, user_id, role, created_at) VALUES (:t, :u, 'owner', :now)"),
        {"t": team, "u": user, "now": now},
    )
    for name, digest, role, created in old:
        _token(bind, name, digest, user if role == "admin" else None, role, created)


def _token(bind: sa.engine.Connection, name: str, digest: str, user: int | None, role: str, created: float) -> None:
    kind, scope = ("file", "") if role == "admin" else ("pull", "pull")
    bind.execute(
        sa.text(
            "INSERT INTO access_tokens (name, digest, kind, user_id, team_id, role, app, created_at,"
            " last_used_from) VALUES (:name, :digest, :kind, :user, NULL, :role, NULL, :created, '')"
        ),
        {"name": name, "digest": digest, "kind": kind, "user": user, "role": scope, "created": created},
    )


def downgrade() -> None:
    op.create_table(
        'tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_digest'), ['digest'], unique=True)
    op.get_bind().execute(
        sa.text(
            "INSERT INTO tokens (name, digest, role, created_at) SELECT name || '-' || id, digest,"
            " CASE WHEN role = 'pull' THEN 'pull' ELSE 'admin' END, created_at FROM access_tokens"
            " WHERE revoked_at IS NULL AND (role = 'pull' OR user_id IN (SELECT id FROM users WHERE admin))"
        )
    )
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_apps_team_id_teams'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_apps_team_id'))
        batch_op.drop_column('team_id')
    op.drop_table('audit')
    op.drop_table('access_tokens')
    op.drop_table('members')
    op.drop_table('users')
    op.drop_table('teams')
