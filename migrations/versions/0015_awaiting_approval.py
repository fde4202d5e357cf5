"""runs and messages: the status awaiting_approval (17 characters) fits

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-01 05:10:00

A reply whose tool call waits for a person's approval is stored with run and message status
``awaiting_approval`` (webchat.mcp): ``status`` grows from VARCHAR(16) to VARCHAR(32). SQLite
does not enforce a VARCHAR's length, so only PostgreSQL's columns change (batch mode, which
would drop the messages' triggers, is not used). The downgrade first ends every waiting reply as
``interrupted``, which fits the old width.
"""
from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        for table in ('runs', 'messages'):
            op.alter_column(table, 'status', type_=sa.String(32), existing_nullable=False)


def downgrade():
    for table in ('runs', 'messages'):
        op.execute(
            sa.text(
                f"UPDATE {table} SET status = 'interrupted' WHERE status = 'awaiting_approval'"
            )
        )
    if op.get_bind().dialect.name == 'postgresql':
        for table in ('runs', 'messages'):
            op.alter_column(table, 'status', type_=sa.String(16), existing_nullable=False)
