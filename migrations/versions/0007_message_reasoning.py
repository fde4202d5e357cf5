"""messages.reasoning: the model's thinking, kept apart from the reply's content

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 02:00:00

Reasoning models stream their thinking beside the answer (``reasoning_content``, ``reasoning``,
``<think>…</think>``, Anthropic ``thinking`` blocks). It is stored in its own nullable column so
that ``content`` stays exactly what the model answered. Existing rows get NULL (no thinking).
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('messages', sa.Column('reasoning', sa.Text(), nullable=True))


def downgrade():
    op.drop_column('messages', 'reasoning')
