"""The conversation as a tree of messages: placing a message in it, and reading a path.

A conversation's messages form a tree by ``parent_id``. People read one path of it, from a root
to the conversation's active leaf (``conversations.active_message_id``). A path is a linked
list, and walking it message by message would make opening, paging and switching cost
O(depth). Instead every message carries its ``depth`` (0 for a root) and its
:class:`~webchat.models.Segment`: a message's first child continues its parent's segment, any
later child (an edit, a regenerated reply) starts a new one hanging under the parent. Segments
never split, so a path is a handful of :class:`Span` s, ``(segment, depth range)``, each read by
one range scan of the index ``(segment_id, depth)``, and a message's position on a path is its
depth. The spans of a path come from one recursive query over segments (one row per segment the
path crosses: a branch point on the path, not a message).

Costs, in rows read: a path's spans, the number of segments it crosses; a window of ``n``
messages, ``n`` (plus one statement per span it crosses); the newest leaf under a message, two
segment rows in the common case (each segment keeps the newest leaf of its subtree).

Every function flushes at most; the caller commits. Statements use Core tables, so none of them
autoflushes a pending ORM message before its segment exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, literal, or_, select, tuple_, update
from sqlalchemy.orm.util import identity_key

from .extensions import db
from .models import Conversation, Message, Segment, new_id

_segments = cast(Table, Segment.__table__)
_messages = cast(Table, Message.__table__)
_conversations = cast(Table, Conversation.__table__)


@dataclass(frozen=True)
class Span:
    """Messages ``lo``..``hi`` (depths, inclusive) of segment ``segment_id``: part of a path."""

    segment_id: uuid.UUID
    lo: int
    hi: int


# --- Placing messages ------------------------------------------------------------------------


def _new_segment(
    conversation_id: uuid.UUID,
    parent: Message | None,
    message_id: uuid.UUID,
    created_at: datetime,
) -> uuid.UUID:
    depth = parent.depth + 1 if parent is not None else 0
    segment_id = new_id()
    db.session.execute(
        insert(_segments).values(
            id=segment_id,
            conversation_id=conversation_id,
            parent_segment_id=parent.segment_id if parent is not None else None,
            parent_message_id=parent.id if parent is not None else None,
            start_depth=depth,
            end_depth=depth,
            tail_id=message_id,
            last_at=created_at,
            newest_leaf_id=message_id,
            newest_at=created_at,
        )
    )
    return segment_id


def _ancestors_and_self(segment_id: uuid.UUID) -> Any:
    """A subquery of the ids of ``segment_id`` and every segment above it."""
    up = (
        select(_segments.c.id, _segments.c.parent_segment_id)
        .where(_segments.c.id == segment_id)
        .cte("up", recursive=True)
    )
    above = _segments.alias("above")
    up = up.union_all(
        select(above.c.id, above.c.parent_segment_id).join(up, above.c.id == up.c.parent_segment_id)
    )
    return select(up.c.id)


def raise_newest(segment_id: uuid.UUID, leaf_id: uuid.UUID, at: datetime) -> None:
    """Record ``leaf_id`` (created at ``at``) as the newest leaf of ``segment_id`` and of every
    segment above it, where it is newer than what they hold. One UPDATE of as many rows as the
    path has segments."""
    db.session.execute(
        update(_segments)
        .where(_segments.c.id.in_(_ancestors_and_self(segment_id)), _segments.c.newest_at <= at)
        .values(newest_leaf_id=leaf_id, newest_at=at)
    )


def attach(message: Message, parent: Message | None) -> None:
    """Place the new ``message`` (not yet added to the session) under ``parent`` (None: a root).

    Sets ``message.segment_id`` and ``message.depth``: the message continues its parent's
    segment when the parent has no child yet, else starts a segment of its own. The test is a
    conditional UPDATE of the parent's segment (``end_depth`` still the parent's depth), so two
    children placed at once never both continue it. ``message.id`` and ``created_at`` must be
    set. Writes the segment rows; call before ``db.session.add(message)``.
    """
    assert message.id is not None and message.created_at is not None
    if parent is not None and parent.segment_id is not None:
        continued = db.session.execute(
            update(_segments)
            .where(_segments.c.id == parent.segment_id, _segments.c.end_depth == parent.depth)
            .values(end_depth=parent.depth + 1, tail_id=message.id, last_at=message.created_at)
        )
        if _rowcount(continued) == 1:
            message.segment_id = parent.segment_id
            message.depth = parent.depth + 1
            raise_newest(parent.segment_id, message.id, message.created_at)
            return
    message.segment_id = _new_segment(
        message.conversation_id, parent, message.id, message.created_at
    )
    message.depth = parent.depth + 1 if parent is not None else 0
    if parent is not None and parent.segment_id is not None:
        raise_newest(parent.segment_id, message.id, message.created_at)


def _rowcount(result: Any) -> int:
    return result.rowcount or 0


@dataclass
class _Seg:
    """A segment as :func:`place_rows` sees it: known in the database, or new in this batch."""

    id: uuid.UUID
    parent_segment_id: uuid.UUID | None
    parent_message_id: uuid.UUID | None
    start_depth: int
    end_depth: int
    tail_id: uuid.UUID
    last_at: datetime
    new: bool = False
    grew: bool = False
    children: list[_Seg] = field(default_factory=list)


def place_rows(conversation_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
    """Place many new messages at once (imports, seeding): rows are dicts of message columns
    with ``id``, ``parent_id`` and ``created_at``, parents before children; sets each row's
    ``segment_id`` and ``depth``.

    Parents may be earlier rows or messages already stored. Inserts the new segments and
    updates the stored ones it extends (call it before inserting the rows), and raises the
    newest leaf of every segment above. Not safe against a concurrent writer adding children to
    the same stored parents (imports write their own new rows; a run's messages use
    :func:`attach`).
    """
    placed: dict[uuid.UUID, tuple[_Seg, int]] = {}
    outside = {r["parent_id"] for r in rows if r.get("parent_id") is not None} - {
        r["id"] for r in rows
    }
    segs: dict[uuid.UUID, _Seg] = {}
    if outside:
        found = db.session.execute(
            select(
                _messages.c.id,
                _messages.c.depth,
                _segments.c.id.label("segment_id"),
                _segments.c.parent_segment_id,
                _segments.c.parent_message_id,
                _segments.c.start_depth,
                _segments.c.end_depth,
                _segments.c.tail_id,
                _segments.c.last_at,
            )
            .join(_segments, _segments.c.id == _messages.c.segment_id)
            .where(_messages.c.id.in_(list(outside)))
        ).all()
        for f in found:
            seg = segs.get(f.segment_id) or _Seg(
                f.segment_id,
                f.parent_segment_id,
                f.parent_message_id,
                f.start_depth,
                f.end_depth,
                f.tail_id,
                f.last_at,
            )
            segs[seg.id] = seg
            placed[f.id] = (seg, f.depth)
    for row in rows:
        parent = placed.get(row["parent_id"]) if row.get("parent_id") is not None else None
        if parent is not None and parent[0].end_depth == parent[1]:
            seg, depth = parent[0], parent[1] + 1
            seg.end_depth, seg.tail_id, seg.last_at, seg.grew = (
                depth,
                row["id"],
                row["created_at"],
                True,
            )
        else:
            depth = parent[1] + 1 if parent is not None else 0
            seg = _Seg(
                new_id(),
                parent[0].id if parent is not None else None,
                row["parent_id"] if parent is not None else None,
                depth,
                depth,
                row["id"],
                row["created_at"],
                new=True,
            )
            segs[seg.id] = seg
            if parent is not None:
                parent[0].children.append(seg)
        row["segment_id"], row["depth"] = seg.id, depth
        placed[row["id"]] = (seg, depth)
    _write_segments(conversation_id, segs)


def _write_segments(conversation_id: uuid.UUID, segs: dict[uuid.UUID, _Seg]) -> None:
    """Insert the new segments and update the grown ones, each with its subtree's newest leaf."""
    newest: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}

    def best(seg: _Seg) -> tuple[datetime, uuid.UUID]:
        if seg.id not in newest:
            candidates = [(seg.last_at, seg.tail_id)] + [best(c) for c in seg.children]
            newest[seg.id] = max(candidates)
        return newest[seg.id]

    new_rows = []
    for seg in segs.values():
        at, leaf = best(seg)
        if seg.new:
            new_rows.append(
                {
                    "id": seg.id,
                    "conversation_id": conversation_id,
                    "parent_segment_id": seg.parent_segment_id,
                    "parent_message_id": seg.parent_message_id,
                    "start_depth": seg.start_depth,
                    "end_depth": seg.end_depth,
                    "tail_id": seg.tail_id,
                    "last_at": seg.last_at,
                    "newest_leaf_id": leaf,
                    "newest_at": at,
                }
            )
    if new_rows:
        db.session.execute(insert(Segment), new_rows)
    for seg in segs.values():
        if seg.new:
            continue
        if seg.grew:
            db.session.execute(
                update(_segments)
                .where(_segments.c.id == seg.id)
                .values(end_depth=seg.end_depth, tail_id=seg.tail_id, last_at=seg.last_at)
            )
        if seg.grew or seg.children:
            at, leaf = best(seg)
            raise_newest(seg.id, leaf, at)


def _forget_active(conversation_id: uuid.UUID) -> None:
    """Expire ``active_message_id`` of the conversation in the session, if loaded: it was just
    written by a Core statement."""
    loaded = db.session.identity_map.get(identity_key(Conversation, conversation_id))
    if loaded is not None:
        db.session.expire(loaded, ["active_message_id"])


def set_active(conversation: Conversation | uuid.UUID, leaf_id: uuid.UUID | None) -> None:
    """Make ``leaf_id`` (a flushed message) the conversation's active leaf."""
    cid = conversation.id if isinstance(conversation, Conversation) else conversation
    db.session.execute(
        update(_conversations).where(_conversations.c.id == cid).values(active_message_id=leaf_id)
    )
    _forget_active(cid)


def advance(conversation_id: uuid.UUID, parent_id: uuid.UUID | None, leaf_id: uuid.UUID) -> bool:
    """Move the active leaf to the new message ``leaf_id`` when its parent was the active leaf
    (or the conversation had none): a reply follows the path it streams on, and a reply
    streaming on a branch the person has left does not pull them back. True when it moved."""
    condition: Any = _conversations.c.active_message_id.is_(None)
    if parent_id is not None:
        condition = or_(condition, _conversations.c.active_message_id == parent_id)
    moved = db.session.execute(
        update(_conversations)
        .where(_conversations.c.id == conversation_id, condition)
        .values(active_message_id=leaf_id)
    )
    _forget_active(conversation_id)
    return _rowcount(moved) == 1


# --- Reading paths ---------------------------------------------------------------------------


@dataclass
class Path:
    """The path from a root to ``leaf``: its spans, root first. ``leaf.depth + 1`` messages."""

    leaf: Message
    spans: list[Span]

    @property
    def length(self) -> int:
        """Messages on the path."""
        return self.leaf.depth + 1

    def holds(self, message: Message) -> bool:
        """True when ``message`` is on this path."""
        return any(
            s.segment_id == message.segment_id and s.lo <= message.depth <= s.hi for s in self.spans
        )

    def messages(self, lo: int, hi: int) -> list[Message]:
        """The path's messages at depths ``lo``..``hi`` (inclusive, clipped), oldest first: one
        index range per span they cross."""
        out: list[Message] = []
        for span in self.spans:
            a, b = max(lo, span.lo), min(hi, span.hi)
            if a > b:
                continue
            out.extend(
                db.session.scalars(
                    select(Message)
                    .where(Message.segment_id == span.segment_id, Message.depth.between(a, b))
                    .order_by(Message.depth)
                )
            )
        return out


def _spans_statement() -> Any:
    chain = (
        select(
            _segments.c.id,
            _segments.c.parent_segment_id,
            _segments.c.start_depth,
            literal(0).label("hi"),
        )
        .where(_segments.c.id == bindparam("segment_id"))
        .cte("chain", recursive=True)
    )
    up = _segments.alias("up")
    chain = chain.union_all(
        select(up.c.id, up.c.parent_segment_id, up.c.start_depth, chain.c.start_depth - 1).join(
            chain, up.c.id == chain.c.parent_segment_id
        )
    )
    return select(chain.c.id, chain.c.start_depth, chain.c.hi)


_SPANS = _spans_statement()


def path_to(leaf: Message) -> Path:
    """The path from the root down to ``leaf`` (one recursive query over its segments)."""
    if leaf.segment_id is None:
        raise ValueError(f"message {leaf.id} is not placed in its tree")
    rows = db.session.execute(_SPANS, {"segment_id": leaf.segment_id}).all()
    spans = [Span(r.id, r.start_depth, r.hi if i else leaf.depth) for i, r in enumerate(rows)]
    return Path(leaf, list(reversed(spans)))


def newest_leaf(message: Message) -> uuid.UUID:
    """The id of the newest leaf under ``message`` (itself when it has no child).

    The newest message of a subtree is always a leaf (a child is created after its parent).
    Candidates: the tail of ``message``'s own segment, and the newest leaf of the segments
    hanging below ``message`` in it (each keeps its subtree's newest); read newest first from
    ``ix_segments_parent_newest``, stopping at the first hanging below ``message``.
    """
    seg = db.session.get(Segment, message.segment_id)
    if seg is None:
        return message.id
    best = (seg.last_at, seg.tail_id)
    row = db.session.execute(
        select(_segments.c.newest_leaf_id, _segments.c.newest_at)
        .where(_segments.c.parent_segment_id == seg.id, _segments.c.start_depth > message.depth)
        .order_by(_segments.c.newest_at.desc())
        .limit(1)
    ).first()
    if row is not None:
        best = max(best, (row.newest_at, row.newest_leaf_id))
    return best[1]


def active_leaf(conversation: Conversation) -> Message | None:
    """The conversation's active leaf (None for an empty conversation)."""
    if conversation.active_message_id is None:
        return None
    return db.session.get(Message, conversation.active_message_id)


def active_path(conversation: Conversation) -> Path | None:
    """The path the person reads: root to the active leaf (None when empty)."""
    leaf = active_leaf(conversation)
    return path_to(leaf) if leaf is not None else None


def path_below(message: Message) -> Path:
    """The path through ``message`` down to the newest leaf under it (the branch that
    switching to ``message`` shows)."""
    leaf_id = newest_leaf(message)
    leaf = message if leaf_id == message.id else db.session.get(Message, leaf_id)
    assert leaf is not None
    return path_to(leaf)


def path_through(conversation: Conversation, message: Message) -> Path:
    """The active path when it holds ``message``, else the path through ``message`` down to the
    newest leaf under it."""
    path = active_path(conversation)
    if path is not None and path.holds(message):
        return path
    return path_below(message)


def ancestors(message: Message, limit: int) -> list[Message]:
    """``message`` and up to ``limit - 1`` messages above it, oldest first (a run's context)."""
    path = path_to(message)
    return path.messages(message.depth - limit + 1, message.depth)


# --- Siblings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Siblings:
    """Where a message stands among its parent's children, oldest first (1-based ``index``)."""

    index: int
    count: int
    previous_id: uuid.UUID | None
    next_id: uuid.UUID | None


def siblings(
    messages: Iterable[Message], until: tuple[datetime, uuid.UUID] | None = None
) -> dict[uuid.UUID, Siblings]:
    """The :class:`Siblings` of each of ``messages``: one query for their parents' children
    (an index range on ``parent_id`` each), and one for the conversation's roots if any is a
    root. ``until``: count only siblings at or before this ``(created_at, id)`` position (a
    share's snapshot)."""
    messages = list(messages)

    def upto(query: Any) -> Any:
        if until is None:
            return query
        return query.where(tuple_(_messages.c.created_at, _messages.c.id) <= until)

    parent_ids = {m.parent_id for m in messages if m.parent_id is not None}
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    if parent_ids:
        for row in db.session.execute(
            upto(
                select(_messages.c.id, _messages.c.parent_id).where(
                    _messages.c.parent_id.in_(list(parent_ids))
                )
            ).order_by(_messages.c.parent_id, _messages.c.created_at, _messages.c.id)
        ):
            groups.setdefault(row.parent_id, []).append(row.id)
    roots: dict[uuid.UUID, list[uuid.UUID]] = {}  # a conversation's roots, by conversation
    for conversation_id in {m.conversation_id for m in messages if m.parent_id is None}:
        roots[conversation_id] = list(
            db.session.scalars(
                upto(
                    select(_messages.c.id)
                    .join(_segments, _segments.c.id == _messages.c.segment_id)
                    .where(
                        _segments.c.conversation_id == conversation_id,
                        _segments.c.parent_segment_id.is_(None),
                        _messages.c.depth == 0,
                    )
                ).order_by(_messages.c.created_at, _messages.c.id)
            )
        )
    out: dict[uuid.UUID, Siblings] = {}
    for m in messages:
        found = groups.get(m.parent_id) if m.parent_id else roots.get(m.conversation_id)
        group = found or [m.id]
        i = group.index(m.id) if m.id in group else 0
        out[m.id] = Siblings(
            index=i + 1,
            count=len(group),
            previous_id=group[i - 1] if i > 0 else None,
            next_id=group[i + 1] if i + 1 < len(group) else None,
        )
    return out


__all__ = [
    "Path",
    "Siblings",
    "Span",
    "active_leaf",
    "active_path",
    "advance",
    "ancestors",
    "attach",
    "newest_leaf",
    "path_below",
    "path_through",
    "path_to",
    "place_rows",
    "raise_newest",
    "set_active",
    "siblings",
]
