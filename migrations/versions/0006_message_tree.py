"""the conversation as a tree: segments, message depth, active leaf, feedback

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 02:20:00

A conversation's messages already form a tree by ``parent_id``; what a person reads is one path
of it, from a root to ``conversations.active_message_id``. To read a path by index ranges rather
than a walk from message to message, each message gets its ``depth`` (0 for a root) and its
segment: a chain of first children (see ``webchat.conversations.tree``). ``segments`` keeps, per
chain, its depths, its tail, and the newest leaf of its subtree.

Existing conversations are backfilled: every message placed (parents first, a parent's oldest
child continuing its chain), and the active leaf set to the conversation's newest message. Each
message row is updated once. Messages also gain ``feedback_rating`` (up or down) and
``feedback_comment``.
"""
import uuid

from alembic import op
import sqlalchemy as sa
import uuid6

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade():
    op.create_table(
        'segments',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('conversation_id', sa.Uuid(), nullable=False),
        sa.Column('parent_segment_id', sa.Uuid(), nullable=True),
        sa.Column('parent_message_id', sa.Uuid(), nullable=True),
        sa.Column('start_depth', sa.Integer(), nullable=False),
        sa.Column('end_depth', sa.Integer(), nullable=False),
        sa.Column('tail_id', sa.Uuid(), nullable=False),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.Column('newest_leaf_id', sa.Uuid(), nullable=False),
        sa.Column('newest_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['parent_segment_id'], ['segments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_segments_conversation_id', 'segments', ['conversation_id'])
    op.create_index('ix_segments_parent_message_id', 'segments', ['parent_message_id'])
    op.create_index('ix_segments_parent_newest', 'segments', ['parent_segment_id', 'newest_at'])
    # Added without batch mode: recreating messages or conversations on SQLite would drop their
    # search and message-count triggers. SQLite takes a REFERENCES clause on ADD COLUMN, which
    # Alembic does not write for it.
    _add_reference('messages', 'segment_id', 'segments', 'CASCADE')
    _add_reference('conversations', 'active_message_id', 'messages', 'SET NULL')
    op.add_column(
        'messages', sa.Column('depth', sa.Integer(), nullable=False, server_default='0')
    )
    op.add_column('messages', sa.Column('feedback_rating', sa.String(8), nullable=True))
    op.add_column('messages', sa.Column('feedback_comment', sa.Text(), nullable=True))
    _backfill(op.get_bind())
    op.create_index('ix_messages_segment_depth', 'messages', ['segment_id', 'depth'], unique=True)


def _add_reference(table, column, target, on_delete):
    name = f'fk_{table}_{column}_{target}'
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            f'ALTER TABLE {table} ADD COLUMN {column} CHAR(32) '
            f'CONSTRAINT {name} REFERENCES {target} (id) ON DELETE {on_delete}'
        )
        return
    op.add_column(
        table,
        sa.Column(column, sa.Uuid(), sa.ForeignKey(f'{target}.id', name=name, ondelete=on_delete)),
    )


def _backfill(bind):
    messages = sa.table(
        'messages',
        sa.column('id', sa.Uuid()),
        sa.column('conversation_id', sa.Uuid()),
        sa.column('parent_id', sa.Uuid()),
        sa.column('created_at', sa.DateTime()),
        sa.column('segment_id', sa.Uuid()),
        sa.column('depth', sa.Integer()),
    )
    segments = sa.table(
        'segments',
        *(
            sa.column(name, kind)
            for name, kind in (
                ('id', sa.Uuid()),
                ('conversation_id', sa.Uuid()),
                ('parent_segment_id', sa.Uuid()),
                ('parent_message_id', sa.Uuid()),
                ('start_depth', sa.Integer()),
                ('end_depth', sa.Integer()),
                ('tail_id', sa.Uuid()),
                ('last_at', sa.DateTime()),
                ('newest_leaf_id', sa.Uuid()),
                ('newest_at', sa.DateTime()),
            )
        ),
    )
    conversations = sa.table(
        'conversations', sa.column('id', sa.Uuid()), sa.column('active_message_id', sa.Uuid())
    )
    conversation_ids = bind.execute(sa.select(conversations.c.id)).scalars().all()
    for cid in conversation_ids:
        rows = bind.execute(
            sa.select(messages.c.id, messages.c.parent_id, messages.c.created_at)
            .where(messages.c.conversation_id == cid)
            .order_by(messages.c.created_at, messages.c.id)
        ).all()
        if not rows:
            continue
        seg_rows, placed = _place(cid, rows)
        for start in range(0, len(seg_rows), BATCH):
            bind.execute(segments.insert(), seg_rows[start : start + BATCH])
        updates = [{'mid': mid, 'sid': sid, 'd': depth} for mid, (sid, depth) in placed.items()]
        statement = (
            messages.update()
            .where(messages.c.id == sa.bindparam('mid'))
            .values(segment_id=sa.bindparam('sid'), depth=sa.bindparam('d'))
        )
        for start in range(0, len(updates), BATCH):
            bind.execute(statement, updates[start : start + BATCH])
        bind.execute(
            conversations.update()
            .where(conversations.c.id == cid)
            .values(active_message_id=rows[-1].id)
        )


def _place(cid, rows):
    """Segments and ``{message id: (segment id, depth)}`` for a conversation's messages
    (rows of id, parent_id, created_at, oldest first). Parents first: children are visited in
    creation order from each root, the oldest child continuing its parent's segment."""
    known = {r.id for r in rows}
    children = {}
    roots = []
    for r in rows:
        if r.parent_id is not None and r.parent_id in known and r.parent_id != r.id:
            children.setdefault(r.parent_id, []).append(r)
        else:
            roots.append(r)
    segs = {}  # id -> dict
    order = []
    placed = {}
    stack = [(r, None) for r in reversed(roots)]
    while stack:
        row, parent = stack.pop()
        if row.id in placed:
            continue
        if parent is not None:
            pseg, pdepth = placed[parent.id]
            seg = segs[pseg]
            if seg['end_depth'] == pdepth:
                seg.update(end_depth=pdepth + 1, tail_id=row.id, last_at=row.created_at)
                placed[row.id] = (pseg, pdepth + 1)
            else:
                sid = _new_id()
                segs[sid] = _segment(sid, cid, pseg, parent.id, pdepth + 1, row)
                order.append(sid)
                placed[row.id] = (sid, pdepth + 1)
        else:
            sid = _new_id()
            segs[sid] = _segment(sid, cid, None, None, 0, row)
            order.append(sid)
            placed[row.id] = (sid, 0)
        for child in reversed(children.get(row.id, [])):
            stack.append((child, row))
    # Newest leaf of each subtree: children segments come after their parents in ``order``.
    for sid in reversed(order):
        seg = segs[sid]
        if (seg['last_at'], seg['tail_id']) > (seg['newest_at'], seg['newest_leaf_id']):
            seg.update(newest_at=seg['last_at'], newest_leaf_id=seg['tail_id'])
        parent = segs.get(seg['parent_segment_id'])
        if parent is not None and (seg['newest_at'], seg['newest_leaf_id']) > (
            parent['newest_at'],
            parent['newest_leaf_id'],
        ):
            parent.update(newest_at=seg['newest_at'], newest_leaf_id=seg['newest_leaf_id'])
    return [segs[sid] for sid in order], placed


def _new_id():
    return uuid.UUID(int=uuid6.uuid7().int)


def _segment(sid, cid, parent_segment_id, parent_message_id, depth, row):
    return {
        'id': sid,
        'conversation_id': cid,
        'parent_segment_id': parent_segment_id,
        'parent_message_id': parent_message_id,
        'start_depth': depth,
        'end_depth': depth,
        'tail_id': row.id,
        'last_at': row.created_at,
        'newest_leaf_id': row.id,
        'newest_at': row.created_at,
    }


def downgrade():
    op.drop_index('ix_messages_segment_depth', table_name='messages')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(
            'fk_conversations_active_message_id_messages', 'conversations', type_='foreignkey'
        )
        op.drop_constraint('fk_messages_segment_id_segments', 'messages', type_='foreignkey')
    op.drop_column('conversations', 'active_message_id')
    for column in ('feedback_comment', 'feedback_rating', 'depth', 'segment_id'):
        op.drop_column('messages', column)
    op.drop_index('ix_segments_parent_newest', table_name='segments')
    op.drop_index('ix_segments_parent_message_id', table_name='segments')
    op.drop_index('ix_segments_conversation_id', table_name='segments')
    op.drop_table('segments')
