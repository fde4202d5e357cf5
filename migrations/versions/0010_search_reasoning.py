"""search index: a message's reasoning too, apart from its text

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 03:15:00

``messages.reasoning`` (0007) holds the model's thinking. The index now covers it as a part of
its own, so a search can tell a hit in the thinking from a hit in the answer:

- SQLite: ``search_fts(title, body, reasoning)``. FTS5 tables take no ``ADD COLUMN``, so the
  table is recreated and refilled, and the message triggers with it.
- PostgreSQL: ``search_docs.tsv`` gets the reasoning at weight C (the text stays D, titles A);
  ``webchat_search_message()`` adds it.

The update trigger also fires on ``UPDATE OF reasoning``; as before only final messages are
indexed, so a streamed append of text or thinking costs nothing extra. Existing rows are
backfilled; the downgrade restores 0002's index (the reasoning dropped from it).
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ACTIVE = "('pending', 'streaming')"

# SQLite: the text of one message, as 0002 indexes it (copied: a migration stays as written).
SQLITE_JSON_TEXT = (
    "coalesce((SELECT group_concat(value, ' ') FROM json_tree({col}) WHERE type = 'text'), '')"
)
SQLITE_BODY = (
    "coalesce({m}.content, '') || ' ' || coalesce({m}.tool_name, '') || ' ' || "
    + SQLITE_JSON_TEXT.format(col="json_remove({m}.tool_call, '$.id')")
    + " || ' ' || "
    + SQLITE_JSON_TEXT.format(col="{m}.tool_result")
)


def _watched(reasoning: bool) -> str:
    """The columns whose update re-indexes a final message."""
    return 'content, tool_name, tool_call, tool_result, ' + ('reasoning, ' if reasoning else '') + (
        'status'
    )


def _sqlite(reasoning: bool) -> list[str]:
    """The FTS table, its message triggers and its rows: with the reasoning column (0010) or
    without it (0002)."""
    columns = 'title, body, reasoning' if reasoning else 'title, body'
    extra = {m: f", coalesce({m}.reasoning, '')" if reasoning else '' for m in ('new', 'm')}
    blank = ", ''" if reasoning else ''
    updated = _watched(reasoning)
    return [
        'DROP TRIGGER IF EXISTS search_messages_au',
        'DROP TRIGGER IF EXISTS search_messages_ai',
        'DROP TABLE IF EXISTS search_fts',
        f"CREATE VIRTUAL TABLE search_fts USING fts5("
        f"{columns}, tokenize = 'porter unicode61 remove_diacritics 2')",
        f"""CREATE TRIGGER search_messages_ai AFTER INSERT ON messages
            WHEN new.status NOT IN {ACTIVE} BEGIN
            INSERT INTO search_docs (conversation_id, message_id)
                VALUES (new.conversation_id, new.id);
            INSERT INTO search_fts (rowid, {columns})
                VALUES (last_insert_rowid(), '', {SQLITE_BODY.format(m='new')}{extra['new']});
        END""",
        f"""CREATE TRIGGER search_messages_au AFTER UPDATE OF {updated} ON messages
            WHEN new.status NOT IN {ACTIVE} BEGIN
            DELETE FROM search_docs WHERE message_id = old.id;
            INSERT INTO search_docs (conversation_id, message_id)
                VALUES (new.conversation_id, new.id);
            INSERT INTO search_fts (rowid, {columns})
                VALUES (last_insert_rowid(), '', {SQLITE_BODY.format(m='new')}{extra['new']});
        END""",
        f"""INSERT INTO search_fts (rowid, {columns})
            SELECT d.id, c.title, ''{blank} FROM search_docs d
            JOIN conversations c ON c.id = d.conversation_id WHERE d.message_id IS NULL""",
        f"""INSERT INTO search_fts (rowid, {columns})
            SELECT d.id, '', {SQLITE_BODY.format(m='m')}{extra['m']}
            FROM search_docs d JOIN messages m ON m.id = d.message_id""",
    ]


# PostgreSQL: a message's index entry, with or without its reasoning (weight C).
PG_BODY = (
    "setweight(to_tsvector('english', webchat_search_body({m}.content, {m}.tool_name, "
    "{m}.tool_call, {m}.tool_result)), 'D')"
)
PG_REASONING = " || setweight(to_tsvector('english', coalesce({m}.reasoning, '')), 'C')"


def _postgres(reasoning: bool) -> list[str]:
    """The message function and update trigger, and the entries of messages with reasoning:
    with the reasoning (0010) or without it (0002)."""
    entry = PG_BODY + (PG_REASONING if reasoning else '')
    updated = _watched(reasoning)
    return [
        f"""CREATE OR REPLACE FUNCTION webchat_search_message() RETURNS TRIGGER
            LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO search_docs (conversation_id, message_id, tsv)
            VALUES (NEW.conversation_id, NEW.id, {entry.format(m='NEW')})
            ON CONFLICT (message_id) DO UPDATE SET tsv = EXCLUDED.tsv;
            RETURN NULL;
        END $$""",
        'DROP TRIGGER IF EXISTS search_messages_au ON messages',
        f"""CREATE TRIGGER search_messages_au AFTER UPDATE OF {updated} ON messages
            FOR EACH ROW WHEN (NEW.status NOT IN {ACTIVE})
            EXECUTE FUNCTION webchat_search_message()""",
        # Only messages with reasoning have an entry that changes.
        f"""UPDATE search_docs d SET tsv = {entry.format(m='m')} FROM messages m
            WHERE m.id = d.message_id AND m.reasoning <> ''""",
    ]


def _statements(reasoning: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        return _sqlite(reasoning)
    if dialect == 'postgresql':
        return _postgres(reasoning)
    raise NotImplementedError(f'search index: no support for {dialect}')


def upgrade():
    for statement in _statements(reasoning=True):
        op.execute(statement)


def downgrade():
    for statement in _statements(reasoning=False):
        op.execute(statement)
