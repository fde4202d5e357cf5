"""projects, tags and share links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 05:00:00

- ``projects``: a user's named folders of conversations, with instructions (added to the system
  prompt of their conversations) and a default model for new ones; ``conversations.project_id``
  (``ON DELETE SET NULL``: deleting a project moves its conversations out, never deletes them).
- ``ix_conversations_loose`` (the sidebar's rows in no project, by ``(user_id, pinned,
  updated_at, id)``) and ``ix_conversations_project`` (a project's, by ``(project_id, pinned,
  updated_at, id)``): the loose conversations and a project's page are each an index walk of the
  rows shown, however many conversations the projects hold. Partial indexes whose predicates
  the queries repeat, so both databases pick them without statistics.
- ``tags`` (a user's labels, unique by name) and ``conversation_tags`` (which conversation has
  which; ``(tag_id, conversation_id)`` indexed for the filter).
- ``shares``: read-only links to a snapshot of a conversation. The snapshot is its active leaf,
  the position ``(created_at, id)`` of its newest message, and (every branch) the leaves then;
  no message is copied.

On SQLite the new foreign-key column is added by a plain ``ALTER TABLE … ADD COLUMN …
REFERENCES`` (batch mode would rebuild ``conversations`` and drop its triggers).
"""

from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SIDEBAR = sa.text("deleted_at IS NULL AND archived_at IS NULL")
LOOSE = sa.text("deleted_at IS NULL AND archived_at IS NULL AND project_id IS NULL")


def upgrade():
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("default_model", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_projects_user_name", "projects", ["user_id", "name"])
    _add_reference("conversations", "project_id", "projects", "SET NULL")
    op.create_index(
        "ix_conversations_loose",
        "conversations",
        ["user_id", "pinned", "updated_at", "id"],
        sqlite_where=LOOSE,
        postgresql_where=LOOSE,
    )
    op.create_index(
        "ix_conversations_project",
        "conversations",
        ["project_id", "pinned", "updated_at", "id"],
        sqlite_where=SIDEBAR,
        postgresql_where=SIDEBAR,
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_tags_user_name"),
    )
    op.create_table(
        "conversation_tags",
        sa.Column(
            "conversation_id",
            sa.Uuid(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "tag_id", sa.Uuid(), sa.ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("ix_conversation_tags_tag", "conversation_tags", ["tag_id", "conversation_id"])
    op.create_table(
        "shares",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "conversation_id",
            sa.Uuid(),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("all_branches", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("include_tools", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("include_files", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("leaf_id", sa.Uuid(), nullable=True),
        sa.Column("cutoff_at", sa.DateTime(), nullable=True),
        sa.Column("cutoff_id", sa.Uuid(), nullable=True),
        sa.Column(
            "leaves",
            sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"),
            nullable=True,
        ),
        sa.Column("views", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_shares_user_created", "shares", ["user_id", "created_at"])
    op.create_index("ix_shares_conversation", "shares", ["conversation_id"])


def _add_reference(table, column, target, on_delete):
    name = f"fk_{table}_{column}_{target}"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} CHAR(32) "
            f"CONSTRAINT {name} REFERENCES {target} (id) ON DELETE {on_delete}"
        )
        return
    op.add_column(
        table,
        sa.Column(column, sa.Uuid(), sa.ForeignKey(f"{target}.id", name=name, ondelete=on_delete)),
    )


def downgrade():
    op.drop_index("ix_shares_conversation", table_name="shares")
    op.drop_index("ix_shares_user_created", table_name="shares")
    op.drop_table("shares")
    op.drop_index("ix_conversation_tags_tag", table_name="conversation_tags")
    op.drop_table("conversation_tags")
    op.drop_table("tags")
    op.drop_index("ix_conversations_project", table_name="conversations")
    op.drop_index("ix_conversations_loose", table_name="conversations")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(
            "fk_conversations_project_id_projects", "conversations", type_="foreignkey"
        )
    op.drop_column("conversations", "project_id")
    op.drop_index("ix_projects_user_name", table_name="projects")
    op.drop_table("projects")
