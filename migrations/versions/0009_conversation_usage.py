"""conversations.usage: the sums of its replies' metadata.usage, kept as replies finish

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 02:45:00

The conversation header and the API show what a conversation used and cost. Summing every
reply's ``metadata.usage`` on each page view grows with the conversation (150 ms at 100,000
messages on SQLite), so the sums are kept on the conversation and added to as each reply step
finishes (``webchat.streaming.store.add_usage``). Existing conversations are backfilled from
their messages: ``{input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd}``,
tokens summed (0 where nothing was reported), cost null until a reply had a known one.
"""
import json

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TOKENS = ('input_tokens', 'output_tokens', 'cached_tokens', 'reasoning_tokens')


def _add(total, usage):
    # webchat.usage.services.add_usage as of this revision (a migration imports no app code)
    for key in TOKENS:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] += value
    cost = usage.get('cost_usd')
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        total['cost_usd'] = round((total['cost_usd'] or 0) + cost, 9)


def upgrade():
    op.add_column('conversations', sa.Column('usage', sa.JSON().with_variant(
        sa.dialects.postgresql.JSONB(), 'postgresql'), nullable=True))
    bind = op.get_bind()
    totals = {}
    rows = bind.execute(sa.text(
        "SELECT conversation_id, metadata FROM messages WHERE role = 'assistant'"
    ))
    for conversation_id, meta in rows:
        meta = json.loads(meta) if isinstance(meta, str) else meta
        usage = (meta or {}).get('usage') if isinstance(meta, dict) else None
        if isinstance(usage, dict):
            total = totals.setdefault(
                conversation_id, {**{key: 0 for key in TOKENS}, 'cost_usd': None}
            )
            _add(total, usage)
    cast = 'CAST(:usage AS JSONB)' if bind.dialect.name == 'postgresql' else ':usage'
    update = sa.text(f'UPDATE conversations SET usage = {cast} WHERE id = :id')
    for conversation_id, total in totals.items():
        bind.execute(update, {'usage': json.dumps(total), 'id': conversation_id})


def downgrade():
    op.drop_column('conversations', 'usage')
