"""search index: titles and message text (tool calls and results included), kept by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:00:00

One row of ``search_docs`` per searchable thing: a conversation's title (``message_id`` NULL) or
one final message (its content, tool name, and the string values of its tool call and tool
result). Database triggers keep it in step with ``messages`` and ``conversations``; rows go with
their conversation or message through ``ON DELETE CASCADE``. Messages are indexed once they are
final (not while ``pending``/``streaming``), so a streamed append costs nothing extra.

- SQLite: ``search_docs.id`` is the rowid of the FTS5 table ``search_fts(title, body)``
  (porter stemming over unicode61, diacritics folded); a trigger on ``search_docs`` deletes the
  FTS row, so the cascade cleans both.
- PostgreSQL: ``search_docs.tsv`` is a ``tsvector`` ('english'; titles weight A, messages D) with
  a GIN index; ``webchat_search_body()`` builds the text the triggers index and the query
  highlights.

Existing rows are backfilled.
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ACTIVE = "('pending', 'streaming')"

# SQLite: the text of one message, as indexed (and as FTS5 keeps it for snippets).
SQLITE_JSON_TEXT = (
    "coalesce((SELECT group_concat(value, ' ') FROM json_tree({col}) WHERE type = 'text'), '')"
)
SQLITE_BODY = (
    "coalesce({m}.content, '') || ' ' || coalesce({m}.tool_name, '') || ' ' || "
    + SQLITE_JSON_TEXT.format(col="json_remove({m}.tool_call, '$.id')")
    + " || ' ' || "
    + SQLITE_JSON_TEXT.format(col="{m}.tool_result")
)

SQLITE_UP = [
    """CREATE TABLE search_docs (
        id INTEGER PRIMARY KEY,
        conversation_id CHAR(32) NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        message_id CHAR(32) REFERENCES messages(id) ON DELETE CASCADE
    )""",
    "CREATE UNIQUE INDEX ix_search_docs_message ON search_docs (message_id)",
    "CREATE UNIQUE INDEX ix_search_docs_title ON search_docs (conversation_id) "
    "WHERE message_id IS NULL",
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "title, body, tokenize = 'porter unicode61 remove_diacritics 2')",
    """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
        DELETE FROM search_fts WHERE rowid = old.id;
    END""",
    f"""CREATE TRIGGER search_messages_ai AFTER INSERT ON messages
        WHEN new.status NOT IN {ACTIVE} BEGIN
        INSERT INTO search_docs (conversation_id, message_id) VALUES (new.conversation_id, new.id);
        INSERT INTO search_fts (rowid, title, body)
            VALUES (last_insert_rowid(), '', {SQLITE_BODY.format(m='new')});
    END""",
    f"""CREATE TRIGGER search_messages_au
        AFTER UPDATE OF content, tool_name, tool_call, tool_result, status ON messages
        WHEN new.status NOT IN {ACTIVE} BEGIN
        DELETE FROM search_docs WHERE message_id = old.id;
        INSERT INTO search_docs (conversation_id, message_id) VALUES (new.conversation_id, new.id);
        INSERT INTO search_fts (rowid, title, body)
            VALUES (last_insert_rowid(), '', {SQLITE_BODY.format(m='new')});
    END""",
    """CREATE TRIGGER search_conversations_ai AFTER INSERT ON conversations BEGIN
        INSERT INTO search_docs (conversation_id, message_id) VALUES (new.id, NULL);
        INSERT INTO search_fts (rowid, title, body) VALUES (last_insert_rowid(), new.title, '');
    END""",
    """CREATE TRIGGER search_conversations_au AFTER UPDATE OF title ON conversations BEGIN
        DELETE FROM search_docs WHERE conversation_id = old.id AND message_id IS NULL;
        INSERT INTO search_docs (conversation_id, message_id) VALUES (new.id, NULL);
        INSERT INTO search_fts (rowid, title, body) VALUES (last_insert_rowid(), new.title, '');
    END""",
    # Backfill: titles, then every final message.
    "INSERT INTO search_docs (conversation_id, message_id) SELECT id, NULL FROM conversations",
    f"""INSERT INTO search_docs (conversation_id, message_id)
        SELECT conversation_id, id FROM messages WHERE status NOT IN {ACTIVE}""",
    """INSERT INTO search_fts (rowid, title, body)
        SELECT d.id, c.title, '' FROM search_docs d JOIN conversations c ON c.id = d.conversation_id
        WHERE d.message_id IS NULL""",
    f"""INSERT INTO search_fts (rowid, title, body)
        SELECT d.id, '', {SQLITE_BODY.format(m='m')}
        FROM search_docs d JOIN messages m ON m.id = d.message_id""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS search_conversations_au",
    "DROP TRIGGER IF EXISTS search_conversations_ai",
    "DROP TRIGGER IF EXISTS search_messages_au",
    "DROP TRIGGER IF EXISTS search_messages_ai",
    "DROP TRIGGER IF EXISTS search_docs_ad",
    "DROP TABLE IF EXISTS search_fts",
    "DROP TABLE IF EXISTS search_docs",
]

PG_UP = [
    """CREATE TABLE search_docs (
        id BIGSERIAL PRIMARY KEY,
        conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        message_id UUID REFERENCES messages(id) ON DELETE CASCADE,
        tsv TSVECTOR NOT NULL
    )""",
    "CREATE UNIQUE INDEX ix_search_docs_message ON search_docs (message_id)",
    "CREATE UNIQUE INDEX ix_search_docs_title ON search_docs (conversation_id) "
    "WHERE message_id IS NULL",
    "CREATE INDEX ix_search_docs_tsv ON search_docs USING GIN (tsv)",
    """CREATE FUNCTION webchat_json_text(j JSONB) RETURNS TEXT
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT coalesce(string_agg(v #>> '{}', ' '), '')
        FROM jsonb_path_query(j, 'strict $.** ? (@.type() == "string")') AS v
    $$""",
    """CREATE FUNCTION webchat_search_body(content TEXT, tool_name TEXT, tool_call JSONB,
                                           tool_result JSONB) RETURNS TEXT
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT concat_ws(' ', content, tool_name,
            webchat_json_text(CASE WHEN jsonb_typeof(tool_call) = 'object'
                                   THEN tool_call - 'id' ELSE tool_call END),
            webchat_json_text(tool_result))
    $$""",
    """CREATE FUNCTION webchat_search_message() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_docs (conversation_id, message_id, tsv)
        VALUES (NEW.conversation_id, NEW.id, setweight(to_tsvector('english',
            webchat_search_body(NEW.content, NEW.tool_name, NEW.tool_call, NEW.tool_result)), 'D'))
        ON CONFLICT (message_id) DO UPDATE SET tsv = EXCLUDED.tsv;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION webchat_search_title() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_docs (conversation_id, message_id, tsv)
        VALUES (NEW.id, NULL, setweight(to_tsvector('english', NEW.title), 'A'))
        ON CONFLICT (conversation_id) WHERE message_id IS NULL DO UPDATE SET tsv = EXCLUDED.tsv;
        RETURN NULL;
    END $$""",
    f"""CREATE TRIGGER search_messages_ai AFTER INSERT ON messages FOR EACH ROW
        WHEN (NEW.status NOT IN {ACTIVE}) EXECUTE FUNCTION webchat_search_message()""",
    f"""CREATE TRIGGER search_messages_au
        AFTER UPDATE OF content, tool_name, tool_call, tool_result, status ON messages
        FOR EACH ROW WHEN (NEW.status NOT IN {ACTIVE}) EXECUTE FUNCTION webchat_search_message()""",
    """CREATE TRIGGER search_conversations_ai AFTER INSERT ON conversations FOR EACH ROW
        EXECUTE FUNCTION webchat_search_title()""",
    """CREATE TRIGGER search_conversations_au AFTER UPDATE OF title ON conversations FOR EACH ROW
        EXECUTE FUNCTION webchat_search_title()""",
    """INSERT INTO search_docs (conversation_id, message_id, tsv)
        SELECT id, NULL, setweight(to_tsvector('english', title), 'A') FROM conversations""",
    f"""INSERT INTO search_docs (conversation_id, message_id, tsv)
        SELECT conversation_id, id, setweight(to_tsvector('english',
            webchat_search_body(content, tool_name, tool_call, tool_result)), 'D')
        FROM messages WHERE status NOT IN {ACTIVE}""",
]

PG_DOWN = [
    "DROP TRIGGER IF EXISTS search_conversations_au ON conversations",
    "DROP TRIGGER IF EXISTS search_conversations_ai ON conversations",
    "DROP TRIGGER IF EXISTS search_messages_au ON messages",
    "DROP TRIGGER IF EXISTS search_messages_ai ON messages",
    "DROP FUNCTION IF EXISTS webchat_search_title()",
    "DROP FUNCTION IF EXISTS webchat_search_message()",
    "DROP TABLE IF EXISTS search_docs",
    "DROP FUNCTION IF EXISTS webchat_search_body(TEXT, TEXT, JSONB, JSONB)",
    "DROP FUNCTION IF EXISTS webchat_json_text(JSONB)",
]


def _statements(up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        return SQLITE_UP if up else SQLITE_DOWN
    if dialect == 'postgresql':
        return PG_UP if up else PG_DOWN
    raise NotImplementedError(f'search index: no support for {dialect}')


def upgrade():
    for statement in _statements(up=True):
        op.execute(statement)


def downgrade():
    for statement in _statements(up=False):
        op.execute(statement)
