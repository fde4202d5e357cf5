"""runs and messages: the status awaiting_approval (17 characters) fits; mcp_servers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 05:10:00

A reply whose tool call waits for a person's approval is stored with run and message status
``awaiting_approval`` (webchat.mcp): ``status`` grows from VARCHAR(16) to VARCHAR(32). SQLite
does not enforce a VARCHAR's length, so only PostgreSQL's columns change (batch mode, which
would drop the messages' triggers, is not used). PostgreSQL refuses to change the type of a
column a trigger's WHEN names (the search triggers of 0002/0010): those triggers are dropped and
created again from their own stored definitions (``pg_get_triggerdef``). The downgrade first
ends every waiting reply as ``interrupted``, which fits the old width.

``mcp_servers``: the Streamable HTTP MCP servers users add for themselves (a name and a URL).
"""
from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _set_width(length):
    bind = op.get_bind()
    for table in ('runs', 'messages'):
        triggers = bind.execute(
            sa.text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = CAST(:table AS regclass) AND NOT tgisinternal"
            ),
            {'table': table},
        ).all()
        triggers = [(name, sql) for name, sql in triggers if 'status' in sql]
        for name, _sql in triggers:
            op.execute(sa.text(f'DROP TRIGGER {name} ON {table}'))
        op.alter_column(table, 'status', type_=sa.String(length), existing_nullable=False)
        for _name, sql in triggers:
            op.execute(sa.text(sql))


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        _set_width(32)
    op.create_table(
        'mcp_servers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_mcp_servers_user_name', 'mcp_servers', ['user_id', 'name'], unique=True)


def downgrade():
    op.drop_index('ix_mcp_servers_user_name', table_name='mcp_servers')
    op.drop_table('mcp_servers')
    for table in ('runs', 'messages'):
        op.execute(
            sa.text(
                f"UPDATE {table} SET status = 'interrupted' WHERE status = 'awaiting_approval'"
            )
        )
    if op.get_bind().dialect.name == 'postgresql':
        _set_width(16)
