"""Pages of history: a path of a conversation's messages and a user's conversations.

Messages are read along one path of the conversation's tree (:mod:`.tree`), by depth: a message
cursor is a message id, and the page before or after it is a depth range of the path, read by
index ranges ``(segment_id, depth)`` — one primary-key lookup, the path's spans (one row per
branch point it crosses) and ``limit`` rows, whatever the conversation's length. An offset (the
API's ``?offset=``) is a depth too, and costs nothing more.

Conversations are listed pinned first, then by ``(updated_at, id)`` newest first. Their cursor
(:class:`ConversationCursor`) encodes that position, not an id, because ``updated_at`` moves
whenever a conversation gets a message.

Every function takes a conversation or user already checked by
:func:`webchat.conversations.services.owned_conversation`; none commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, select, tuple_

from .. import tree
from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Message, Tag, User, conversation_tags

Key = tuple[datetime, uuid.UUID]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def key_of(message: Message) -> Key:
    """The position of ``message`` in its conversation's time order: ``(created_at, id)``."""
    return (message.created_at, message.id)


def _messages(conversation: Conversation) -> Select:
    return select(Message).where(Message.conversation_id == conversation.id)


def find_message(conversation: Conversation, message_id: str | uuid.UUID, field: str) -> Message:
    """The message ``message_id`` of ``conversation``, used as a cursor named ``field``.

    Raises :class:`InvalidInput` naming ``field``: 400 for a malformed id, 404 for one that is
    not a message of this conversation (unknown, or someone else's).
    """
    try:
        mid = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
    except ValueError:
        raise InvalidInput(f"{field} must be a message id (a UUID).", field=field) from None
    # By primary key, then the conversation checked here: with ``conversation_id = … AND id = …``
    # PostgreSQL, on fresh statistics, has walked the conversation's index instead.
    message = db.session.get(Message, mid)
    if message is not None and message.conversation_id != conversation.id:
        message = None
    if message is None:
        raise InvalidInput(f"No message {mid} in this conversation.", field=field, status=404)
    return message


def older(
    path: tree.Path | None, before: Message | None, limit: int, offset: int = 0
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages of ``path`` before ``before`` (from its leaf when None),
    skipping the ``offset`` newest of them; oldest first, and whether older ones remain.
    Costs the messages read, whatever the path's length."""
    if path is None:
        return [], False
    end = (before.depth - 1 if before is not None else path.leaf.depth) - offset
    start = max(0, end - limit + 1)
    return (path.messages(start, end) if end >= 0 else []), start > 0


def newer(
    path: tree.Path | None,
    after: Message | None,
    limit: int,
    offset: int = 0,
    before: Message | None = None,
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages of ``path`` after ``after`` (from its root when None) and before
    ``before`` (to its leaf when None), skipping the ``offset`` oldest of them; oldest first,
    and whether more remain after them (before ``before``)."""
    if path is None:
        return [], False
    last = before.depth - 1 if before is not None else path.leaf.depth
    start = (after.depth + 1 if after is not None else 0) + offset
    stop = min(last, start + limit - 1)
    return (path.messages(start, stop) if start <= stop else []), stop < last


def _rest_of_run(edge: Message, older_side: bool) -> list[Message]:
    """The messages of ``edge``'s run beyond ``edge`` (before it, or after it), in order. A
    run's messages are one chain (edits and regenerations start new runs), so they are the
    run's messages above or below ``edge``'s depth."""
    query = select(Message).where(Message.run_id == edge.run_id)
    query = query.where(Message.depth < edge.depth if older_side else Message.depth > edge.depth)
    return list(db.session.scalars(query.order_by(Message.depth)))


@dataclass
class Window:
    """Messages shown together on the conversation page, oldest first, from ``path``.

    ``older`` is the first message when older ones remain (the cursor of ``?before=``), ``newer``
    the last when newer ones remain (``?after=``); each is None at that end of the path.
    """

    messages: list[Message]
    older: Message | None = None
    newer: Message | None = None
    path: tree.Path | None = None

    @property
    def leaf(self) -> Message | None:
        """The leaf of the path shown: a message sent from this page is its child."""
        return self.path.leaf if self.path is not None else None


def _window(
    path: tree.Path | None, messages: list[Message], has_older: bool, has_newer: bool
) -> Window:
    """A window whose ends are widened to whole runs, so a reply is never cut in two bubbles.
    A run has few messages, so the widening is bounded."""
    if messages and has_older and messages[0].run_id is not None:
        head = _rest_of_run(messages[0], older_side=True)
        if head:
            messages = head + messages
            has_older = messages[0].depth > 0
    if path is not None and messages and has_newer and messages[-1].run_id is not None:
        tail = [m for m in _rest_of_run(messages[-1], older_side=False) if path.holds(m)]
        if tail:
            messages = messages + tail
            has_newer = messages[-1].depth < path.leaf.depth
    return Window(
        messages,
        older=messages[0] if messages and has_older else None,
        newer=messages[-1] if messages and has_newer else None,
        path=path,
    )


def window(
    conversation: Conversation,
    *,
    limit: int,
    before: str | None = None,
    after: str | None = None,
    around: str | None = None,
    fragment: bool = False,
) -> Window:
    """The page's messages along one path of the tree: about ``limit`` before the message
    ``before``, after ``after``, centred on ``around``, or else the newest of the active path.
    Ends are widened to whole runs.

    A cursor or ``around`` message on the active path pages that path; one on another branch
    pages the path through it down to the newest leaf under it (so a search hit on an old
    branch opens that branch). A ``fragment`` window (loaded into a page that shows the messages
    on the cursor's side already) has no link back to that side. Raises :class:`InvalidInput`
    for an id that is not a message of the conversation.
    """
    if before:
        cursor = find_message(conversation, before, "before")
        path = tree.path_through(conversation, cursor)
        items, more = older(path, cursor, limit)
        shown = _window(path, items, more, False)
        if items and not fragment:
            shown.newer = shown.messages[-1]  # the cursor's message and those after it
        return shown
    if after:
        cursor = find_message(conversation, after, "after")
        path = tree.path_through(conversation, cursor)
        items, more = newer(path, cursor, limit)
        shown = _window(path, items, False, more)
        if items and not fragment:
            shown.older = shown.messages[0]
        return shown
    if around:
        target = find_message(conversation, around, "around")
        path = tree.path_through(conversation, target)
        head, has_older = older(path, target, limit // 2)
        tail, has_newer = newer(path, target, limit - limit // 2 - 1)
        return _window(path, [*head, target, *tail], has_older, has_newer)
    active = tree.active_path(conversation)
    items, more = older(active, None, limit)
    return _window(active, items, more, False)


def in_time_order(
    conversation: Conversation,
    after: Message | None,
    before: Message | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages of the whole tree (every branch) by ``(created_at, id)``, oldest
    first, and whether more remain in the direction walked: forwards after ``after`` (from the
    first when None) and before ``before`` (to the last when None), or, given ``before`` alone,
    backwards from it (the newest before it). ``offset`` skips that many first (forwards) or
    newest (backwards). A keyset read of ``ix_messages_conversation_created``:
    ``offset + limit + 1`` rows whatever the conversation's size."""
    query = _messages(conversation)
    position = tuple_(Message.created_at, Message.id)
    if after is not None:
        query = query.where(position > key_of(after))
    if before is not None:
        query = query.where(position < key_of(before))
    backwards = before is not None and after is None
    order = (
        (Message.created_at.desc(), Message.id.desc())
        if backwards
        else (Message.created_at, Message.id)
    )
    rows = list(db.session.scalars(query.order_by(*order).offset(offset).limit(limit + 1)))
    items = rows[:limit]
    return (items[::-1] if backwards else items), len(rows) > limit


@dataclass(frozen=True)
class ConversationCursor:
    """A position in a user's conversation list: ``<pinned 0|1>.<updated_at µs>.<id hex>``."""

    pinned: bool
    updated_at: datetime
    id: uuid.UUID

    def __str__(self) -> str:
        micros = (self.updated_at - _EPOCH) // _MICROSECOND
        return f"{int(self.pinned)}.{micros}.{self.id.hex}"

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationCursor:
        """The cursor just after ``conversation``."""
        return cls(conversation.pinned, conversation.updated_at, conversation.id)

    @classmethod
    def parse(cls, value: str, field: str = "cursor") -> ConversationCursor:
        """Parse a cursor given back by a client. Raises :class:`InvalidInput` naming ``field``."""
        try:
            pinned, micros, hex_id = value.split(".")
            if pinned not in ("0", "1") or not micros.isascii() or not micros.isdigit():
                raise ValueError(pinned)
            return cls(pinned == "1", _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=hex_id))
        except (ValueError, OverflowError):
            raise InvalidInput("This cursor is not one the server gave.", field=field) from None


ANY_PROJECT = "any"
SIDEBAR_PROJECTS = 10  # projects listed in the sidebar (all: the /projects page)
SIDEBAR_TAGS = 12  # tags listed in the sidebar's filter


def conversations_page(
    user: User,
    *,
    limit: int,
    cursor: ConversationCursor | None = None,
    archived: bool = False,
    project: uuid.UUID | None | str = ANY_PROJECT,
    tag: Tag | None = None,
) -> tuple[list[Conversation], ConversationCursor | None]:
    """Up to ``limit`` of the user's conversations after ``cursor`` (pinned first, then newest
    activity first), not in Trash, archived or not per ``archived``; and the cursor of the next
    page, None at the end. ``project``: the id of a project of the user (its conversations),
    None (the loose ones, in no project) or :data:`ANY_PROJECT`; ``tag``: only those carrying
    this tag of the user.

    Pinned and unpinned conversations are read by two queries that each walk the index
    ``(user_id, updated_at, id)`` in order — ``ix_conversations_loose`` or
    ``ix_conversations_project`` for the loose ones or one project's — so a page costs ``limit``
    rows however many conversations the user has. A tag filter reads the tag's rows of
    ``conversation_tags``.
    """
    rows: list[Conversation] = []
    for pinned in (True, False):
        if cursor is not None and pinned and not cursor.pinned:
            continue  # the cursor is among the unpinned: no pinned one is left
        # A project's rows are its user's (the caller checked it is ``user``'s): by the project
        # alone, so that only ``ix_conversations_project`` matches the query.
        owner = (
            Conversation.project_id == project
            if project is not None and project != ANY_PROJECT
            else Conversation.user_id == user.id
        )
        query = select(Conversation).where(
            owner,
            Conversation.deleted_at.is_(None),
            (
                Conversation.archived_at.is_not(None)
                if archived
                else Conversation.archived_at.is_(None)
            ),
            Conversation.pinned == pinned,
        )
        if project is None:
            query = query.where(Conversation.project_id.is_(None))
        if tag is not None:
            query = query.join(
                conversation_tags,
                (conversation_tags.c.conversation_id == Conversation.id)
                & (conversation_tags.c.tag_id == tag.id),
            )
        if cursor is not None and cursor.pinned == pinned:
            position = tuple_(Conversation.updated_at, Conversation.id)
            query = query.where(position < (cursor.updated_at, cursor.id))
        rows.extend(
            db.session.scalars(
                query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(
                    limit + 1 - len(rows)
                )
            )
        )
        if len(rows) > limit:
            break
    if len(rows) > limit:
        return rows[:limit], ConversationCursor.of(rows[limit - 1])
    return rows, None


def sidebar(user: User, cursor: str | None = None, tag: Tag | None = None) -> dict:
    """Template context of the sidebar on any page: ``{"conversations", "sidebar_more",
    "projects", "tags", "sidebar_tag"}``: one page of ``SIDEBAR_PAGE_SIZE`` loose conversations
    (in no project; with ``tag``, every conversation carrying it) from ``cursor`` (the newest
    when None), the cursor of the next page (or None), the user's first
    :data:`SIDEBAR_PROJECTS` projects and :data:`SIDEBAR_TAGS` tags by name and whether there
    are more (``more_projects``, ``more_tags``: the /projects page lists them all), so the
    sidebar costs the same however many the user has; a project's conversations load when it is
    opened. Raises :class:`InvalidInput` for a malformed cursor."""
    from flask import current_app

    from .projects import projects_of, tags_of

    start = ConversationCursor.parse(cursor) if cursor else None
    conversations, more = conversations_page(
        user,
        limit=current_app.config["SIDEBAR_PAGE_SIZE"],
        cursor=start,
        project=ANY_PROJECT if tag is not None else None,
        tag=tag,
    )
    projects = projects_of(user, SIDEBAR_PROJECTS + 1)
    tags = tags_of(user, SIDEBAR_TAGS + 1)
    return {
        "conversations": conversations,
        "sidebar_more": more,
        "projects": projects[:SIDEBAR_PROJECTS],
        "more_projects": len(projects) > SIDEBAR_PROJECTS,
        "tags": tags[:SIDEBAR_TAGS],
        "more_tags": len(tags) > SIDEBAR_TAGS,
        "sidebar_tag": tag,
    }
