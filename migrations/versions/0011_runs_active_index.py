"""runs: a partial index of the active runs, by conversation

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 03:25:00

"Is a reply of this conversation still running, on any branch?" is asked by every send, edit,
regenerate and page view. Through ``ix_runs_conversation_status`` PostgreSQL sometimes planned
``status IN ('pending', 'streaming')`` as a scan of the conversation's every run (50,000 in a
conversation of 100,000 messages; seen in tests/test_streaming_writes.py). This index holds the
active runs only (a handful on the whole server), so the question reads at most those.
``webchat.conversations.services.has_active_reply`` writes the statuses as literals, which
both databases need to match a partial index's predicate.
"""
from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('pending', 'streaming')")


def upgrade():
    op.create_index(
        'ix_runs_active', 'runs', ['conversation_id'], sqlite_where=ACTIVE, postgresql_where=ACTIVE
    )


def downgrade():
    op.drop_index('ix_runs_active', table_name='runs')
