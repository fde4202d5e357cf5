"""files: blobs stored once by SHA-256, users' files, and messages' references to them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 05:20:00

The text of text files and PDFs is searchable: an FTS5 table ``files_fts`` kept by triggers on
SQLite, a GIN expression index on PostgreSQL.

New tables only: ``messages`` and ``conversations`` are not altered (no batch mode, their
triggers stay). ``message_files`` cascades from messages, so a purged conversation drops its
references; ``flask files gc`` then deletes the files and blobs nobody refers to.
"""

from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=False),
        sa.Column("thumbnail_sha256", sa.String(64), sa.ForeignKey("blobs.sha256"), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attached_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_files_user_id", "files", ["user_id"])
    op.create_index("ix_files_sha256", "files", ["sha256"])
    op.create_index("ix_files_thumbnail_sha256", "files", ["thumbnail_sha256"])
    op.create_index("ix_files_user_sha256", "files", ["user_id", "sha256"])
    op.create_table(
        "message_files",
        sa.Column(
            "message_id",
            sa.Uuid(),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "file_id", sa.Uuid(), sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_message_files_file_id", "message_files", ["file_id"])
    # Search of the text of text files and PDFs (webchat.files.search).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_files_search ON files USING gin ({PG_VECTOR}) "
            "WHERE kind IN ('text', 'pdf')"
        )
    else:
        for statement in SQLITE_SEARCH:
            op.execute(statement)


# The same expressions as webchat/files/search.py.
PG_VECTOR = "to_tsvector('english', name || ' ' || coalesce(text, ''))"
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE files_fts USING fts5("
    "name, body, file_id UNINDEXED, tokenize = 'porter unicode61 remove_diacritics 2')",
    # by the file's id, not its rowid (VACUUM may renumber the rowids of a table keyed by a
    # UUID); the triggers keep the index in step, cascades included
    "CREATE TRIGGER files_fts_insert AFTER INSERT ON files WHEN new.kind IN ('text', 'pdf') "
    "BEGIN INSERT INTO files_fts(name, body, file_id) "
    "VALUES (new.name, coalesce(new.text, ''), new.id); END",
    "CREATE TRIGGER files_fts_delete AFTER DELETE ON files WHEN old.kind IN ('text', 'pdf') "
    "BEGIN DELETE FROM files_fts WHERE file_id = old.id; END",
)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_files_search")
    else:
        op.execute("DROP TRIGGER IF EXISTS files_fts_insert")
        op.execute("DROP TRIGGER IF EXISTS files_fts_delete")
        op.execute("DROP TABLE IF EXISTS files_fts")
    op.drop_table("message_files")
    op.drop_table("files")
    op.drop_table("blobs")
