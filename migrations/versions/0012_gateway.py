"""the recording gateway: messages.path_hash, runs.options, runs.request_key

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 05:00:00

``messages.path_hash`` is the SHA-256 of the canonical path from the root to that message (its
user, its conversation's system prompt and every message's role, content, tool call and tool
result; ``webchat.gateway.canonical``), written for the messages of gateway conversations only.
A request to ``/v1/chat/completions`` or ``/v1/messages`` finds the conversation it continues by
one lookup of ``ix_messages_path_hash`` (NULL for every other message: no backfill).

``runs.options`` holds what a gateway request asked of its run (the client's tools, which the run
passes to the provider but does not execute; generation parameters); ``runs.request_key`` is
``<user id>:<Idempotency-Key>``, unique, so a repeated request finds its run and stores nothing
twice. Plain columns: ``ALTER TABLE … ADD COLUMN`` on both databases (no batch mode, which would
drop the triggers of messages).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.add_column('messages', sa.Column('path_hash', sa.String(64), nullable=True))
    op.create_index('ix_messages_path_hash', 'messages', ['path_hash'])
    op.add_column('runs', sa.Column('options', JSON, nullable=True))
    op.add_column('runs', sa.Column('request_key', sa.String(300), nullable=True))
    op.create_index('ix_runs_request_key', 'runs', ['request_key'], unique=True)


def downgrade():
    op.drop_index('ix_runs_request_key', table_name='runs')
    op.drop_index('ix_messages_path_hash', table_name='messages')
    # Plain columns: SQLite (3.35+) drops them in place, no table rebuild, triggers kept.
    op.execute('ALTER TABLE runs DROP COLUMN request_key')
    op.execute('ALTER TABLE runs DROP COLUMN options')
    op.execute('ALTER TABLE messages DROP COLUMN path_hash')
