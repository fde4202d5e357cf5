"""files: blobs stored once by SHA-256, users' files, and messages' references to them

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-01 05:20:00

New tables only: ``messages`` and ``conversations`` are not altered (no batch mode, their
triggers stay). ``message_files`` cascades from messages, so a purged conversation drops its
references; ``flask files gc`` then deletes the files and blobs nobody refers to.
"""

from alembic import op
import sqlalchemy as sa

revision = "0016"
down_revision = "0011"
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


def downgrade():
    op.drop_table("message_files")
    op.drop_table("files")
    op.drop_table("blobs")
