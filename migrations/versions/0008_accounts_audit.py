"""accounts and audit: session generation, disabled accounts, the audit log

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 02:20:00

``users.session_generation`` is part of every session's and remember-me cookie's user id
(``<id>:<generation>``): raising it (password change, "sign out everywhere", disabling) makes
every older session invalid at its next request. ``users.disabled_at`` marks an account an admin
disabled. ``audit_events`` is the security log (sign-ins, password changes, tokens, exports,
imports, account deletion, admin actions).

Stored message HTML said a table cell's alignment with a ``style`` attribute, which the new
Content-Security-Policy (no inline styles) refuses; it becomes a class (``align-right``), as
``webchat.rendering`` now writes it. Plain ADD COLUMN on ``users`` (no batch mode needed:
both columns are nullable or have a default); existing rows get generation 0, which is what their
existing sessions (``<id>`` alone) are read as, so nobody is signed out by the upgrade.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        'users',
        sa.Column('session_generation', sa.Integer(), nullable=False, server_default='0'),
    )
    op.add_column('users', sa.Column('disabled_at', sa.DateTime(), nullable=True))
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(40), nullable=False),
        sa.Column('ip', sa.String(64), nullable=True),
        sa.Column('user_agent', sa.String(300), nullable=True),
        sa.Column(
            'detail',
            sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
            nullable=False,
        ),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_events_user_created', 'audit_events', ['user_id', 'created_at'])
    op.create_index('ix_audit_events_created_at', 'audit_events', ['created_at'])
    op.create_index('ix_audit_events_actor_id', 'audit_events', ['actor_id'])
    _swap_alignment(' style="text-align:{}"', ' class="align-{}"')


ALIGNMENTS = ('left', 'center', 'right')


def _swap_alignment(old, new):
    """Rewrite the alignment of table cells in stored HTML (content_html only: no trigger of
    messages fires on it)."""
    for align in ALIGNMENTS:
        op.execute(
            sa.text(
                "UPDATE messages SET content_html = replace(content_html, :old, :new) "
                "WHERE content_html LIKE :pattern"
            ).bindparams(
                old=old.format(align), new=new.format(align), pattern=f"%{old.format(align)}%"
            )
        )


def downgrade():
    _swap_alignment(' class="align-{}"', ' style="text-align:{}"')
    op.drop_table('audit_events')
    # Plain DROP COLUMN (SQLite 3.35+), not batch mode: recreating users on SQLite would drop the
    # table its conversations and tokens refer to with ON DELETE CASCADE.
    op.drop_column('users', 'disabled_at')
    op.drop_column('users', 'session_generation')
