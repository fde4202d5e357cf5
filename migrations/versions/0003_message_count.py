"""conversations.message_count, kept by triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:00:00

How many messages a conversation has, so a page of its messages can say ``total`` without
counting 100,000 rows. Database triggers keep it whoever inserts or deletes messages (the app,
an import, a cascade). Existing rows are backfilled.

- SQLite: row triggers (an update of one row by its key, in place).
- PostgreSQL: statement triggers over the transition tables, so a multi-row ``INSERT`` updates
  each conversation once. Updating one row many times in one transaction is quadratic on
  PostgreSQL (each update walks the row's chain of versions), so bulk writers insert many rows per
  statement (``webchat.seed`` does).
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BACKFILL = (
    "UPDATE conversations SET message_count = "
    "(SELECT count(*) FROM messages WHERE messages.conversation_id = conversations.id)"
)

SQLITE_UP = [
    """CREATE TRIGGER message_count_ai AFTER INSERT ON messages BEGIN
        UPDATE conversations SET message_count = message_count + 1 WHERE id = new.conversation_id;
    END""",
    """CREATE TRIGGER message_count_ad AFTER DELETE ON messages BEGIN
        UPDATE conversations SET message_count = message_count - 1 WHERE id = old.conversation_id;
    END""",
    BACKFILL,
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS message_count_ad",
    "DROP TRIGGER IF EXISTS message_count_ai",
]

PG_UP = [
    """CREATE FUNCTION webchat_message_count_ai() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE conversations c SET message_count = c.message_count + n.k
        FROM (SELECT conversation_id, count(*) AS k FROM new_rows GROUP BY conversation_id) n
        WHERE c.id = n.conversation_id;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION webchat_message_count_ad() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE conversations c SET message_count = c.message_count - n.k
        FROM (SELECT conversation_id, count(*) AS k FROM old_rows GROUP BY conversation_id) n
        WHERE c.id = n.conversation_id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER message_count_ai AFTER INSERT ON messages
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
        EXECUTE FUNCTION webchat_message_count_ai()""",
    """CREATE TRIGGER message_count_ad AFTER DELETE ON messages
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
        EXECUTE FUNCTION webchat_message_count_ad()""",
    BACKFILL,
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS message_count_ad ON messages",
    "DROP TRIGGER IF EXISTS message_count_ai ON messages",
    "DROP FUNCTION IF EXISTS webchat_message_count_ad()",
    "DROP FUNCTION IF EXISTS webchat_message_count_ai()",
]


def _statements(up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        return SQLITE_UP if up else SQLITE_DOWN
    if dialect == 'postgresql':
        return PG_UP if up else PG_DOWN
    raise NotImplementedError(f'message count: no support for {dialect}')


def upgrade():
    # Plain ALTER TABLE (no batch copy): a copied table would lose the triggers of 0002.
    op.add_column(
        'conversations',
        sa.Column('message_count', sa.Integer(), nullable=False, server_default='0'),
    )
    for statement in _statements(up=True):
        op.execute(statement)


def downgrade():
    for statement in _statements(up=False):
        op.execute(statement)
    op.drop_column('conversations', 'message_count')
