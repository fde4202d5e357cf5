"""runs: index (conversation_id, status)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:00:00

"Is a reply of this conversation still running?" (asked by every send and page view) was
answered through ``ix_runs_conversation_id``, reading every run the conversation ever had: a
100,000-message conversation has 50,000. With ``status`` in the index it reads the active ones
only.
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_runs_conversation_status', 'runs', ['conversation_id', 'status'])


def downgrade():
    op.drop_index('ix_runs_conversation_status', table_name='runs')
