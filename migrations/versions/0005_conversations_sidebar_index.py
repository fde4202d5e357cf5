"""conversations: partial index for the sidebar (user_id, pinned, updated_at, id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 15:00:00

The sidebar lists a user's conversations out of Trash and not archived, pinned first, then by
newest activity, a page at a time (webchat.conversations.paging.conversations_page). Through
``ix_conversations_user_updated`` a page of pinned ones read every conversation of the user
looking for them (10,000 rows for 10,000 conversations); this index, over just the rows the
sidebar shows, starts each page where it is.
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SHOWN = sa.text('deleted_at IS NULL AND archived_at IS NULL')


def upgrade():
    op.create_index(
        'ix_conversations_sidebar',
        'conversations',
        ['user_id', 'pinned', 'updated_at', 'id'],
        sqlite_where=SHOWN,
        postgresql_where=SHOWN,
    )


def downgrade():
    op.drop_index('ix_conversations_sidebar', table_name='conversations')
