"""Pages of history: a conversation's messages and a user's conversations, by keyset cursors.

Messages are ordered by ``(created_at, id)`` (index ``ix_messages_conversation_created``). A
message cursor is a message id: the page before or after it costs one primary-key lookup and an
index range scan of ``limit`` rows, whatever the conversation's length. An offset (the API's
``?offset=``) walks the same index and costs O(offset) index entries.

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

from sqlalchemy import Select, exists, select, tuple_

from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Message, User

Key = tuple[datetime, uuid.UUID]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def key_of(message: Message) -> Key:
    """The position of ``message`` in its conversation: ``(created_at, id)``."""
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
    message = db.session.scalars(_messages(conversation).where(Message.id == mid)).first()
    if message is None:
        raise InvalidInput(f"No message {mid} in this conversation.", field=field, status=404)
    return message


def older(
    conversation: Conversation, before: Key | None, limit: int, offset: int = 0
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages before ``before`` (the newest ones when None), skipping the
    ``offset`` newest of them; oldest first, and whether older ones remain."""
    query = _messages(conversation)
    if before is not None:
        query = query.where(tuple_(Message.created_at, Message.id) < before)
    rows = db.session.scalars(
        query.order_by(Message.created_at.desc(), Message.id.desc()).offset(offset).limit(limit + 1)
    ).all()
    return list(reversed(rows[:limit])), len(rows) > limit


def newer(
    conversation: Conversation,
    after: Key | None,
    limit: int,
    offset: int = 0,
    before: Key | None = None,
) -> tuple[list[Message], bool]:
    """Up to ``limit`` messages after ``after`` (from the first when None) and before ``before``
    (to the last when None), skipping the ``offset`` oldest of them; oldest first, and whether
    more remain after them (before ``before``)."""
    position = tuple_(Message.created_at, Message.id)
    query = _messages(conversation)
    if after is not None:
        query = query.where(position > after)
    if before is not None:
        query = query.where(position < before)
    rows = db.session.scalars(
        query.order_by(Message.created_at, Message.id).offset(offset).limit(limit + 1)
    ).all()
    return list(rows[:limit]), len(rows) > limit


def _exists_beyond(conversation: Conversation, key: Key, older_side: bool) -> bool:
    position = tuple_(Message.created_at, Message.id)
    condition = position < key if older_side else position > key
    return bool(
        db.session.scalar(
            select(exists().where(Message.conversation_id == conversation.id, condition))
        )
    )


def _rest_of_run(conversation: Conversation, edge: Message, older_side: bool) -> list[Message]:
    """The messages of ``edge``'s run beyond ``edge`` (before it, or after it), in order."""
    position = tuple_(Message.created_at, Message.id)
    query = _messages(conversation).where(Message.run_id == edge.run_id)
    query = query.where(position < key_of(edge) if older_side else position > key_of(edge))
    return list(db.session.scalars(query.order_by(Message.created_at, Message.id)))


@dataclass
class Window:
    """Messages shown together on the conversation page, oldest first.

    ``older`` is the first message when older ones remain (the cursor of ``?before=``), ``newer``
    the last when newer ones remain (``?after=``); each is None at that end of the conversation.
    """

    messages: list[Message]
    older: Message | None = None
    newer: Message | None = None


def _window(
    conversation: Conversation, messages: list[Message], has_older: bool, has_newer: bool
) -> Window:
    """A window whose ends are widened to whole runs, so a reply is never cut in two bubbles.

    A run's messages are consecutive (one reply streams at a time), and a run has few of them,
    so the widening is bounded.
    """
    if messages and has_older and messages[0].run_id is not None:
        head = _rest_of_run(conversation, messages[0], older_side=True)
        if head:
            messages = head + messages
            has_older = _exists_beyond(conversation, key_of(messages[0]), older_side=True)
    if messages and has_newer and messages[-1].run_id is not None:
        tail = _rest_of_run(conversation, messages[-1], older_side=False)
        if tail:
            messages = messages + tail
            has_newer = _exists_beyond(conversation, key_of(messages[-1]), older_side=False)
    return Window(
        messages,
        older=messages[0] if messages and has_older else None,
        newer=messages[-1] if messages and has_newer else None,
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
    """The page's messages: about ``limit`` before the message ``before``, after ``after``,
    centred on ``around``, or else the newest. Ends are widened to whole runs.

    A ``fragment`` window (loaded into a page that shows the messages on the cursor's side
    already) has no link back to that side. Raises :class:`InvalidInput` for an id that is not
    a message of the conversation.
    """
    if before:
        start = key_of(find_message(conversation, before, "before"))
        items, more = older(conversation, start, limit)
        shown = _window(conversation, items, more, False)
        if items and not fragment:
            shown.newer = shown.messages[-1]  # the cursor's message and those after it
        return shown
    if after:
        start = key_of(find_message(conversation, after, "after"))
        items, more = newer(conversation, start, limit)
        shown = _window(conversation, items, False, more)
        if items and not fragment:
            shown.older = shown.messages[0]
        return shown
    if around:
        target = find_message(conversation, around, "around")
        head, has_older = older(conversation, key_of(target), limit // 2)
        tail, has_newer = newer(conversation, key_of(target), limit - limit // 2 - 1)
        return _window(conversation, [*head, target, *tail], has_older, has_newer)
    items, more = older(conversation, None, limit)
    return _window(conversation, items, more, False)


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


def conversations_page(
    user: User,
    *,
    limit: int,
    cursor: ConversationCursor | None = None,
    archived: bool = False,
) -> tuple[list[Conversation], ConversationCursor | None]:
    """Up to ``limit`` of the user's conversations after ``cursor`` (pinned first, then newest
    activity first), not in Trash, archived or not per ``archived``; and the cursor of the next
    page, None at the end.

    Pinned and unpinned conversations are read by two queries that each walk the index
    ``(user_id, updated_at, id)`` in order, so a page costs ``limit`` rows however many
    conversations the user has.
    """
    rows: list[Conversation] = []
    for pinned in (True, False):
        if cursor is not None and pinned and not cursor.pinned:
            continue  # the cursor is among the unpinned: no pinned one is left
        query = select(Conversation).where(
            Conversation.user_id == user.id,
            Conversation.deleted_at.is_(None),
            (
                Conversation.archived_at.is_not(None)
                if archived
                else Conversation.archived_at.is_(None)
            ),
            Conversation.pinned == pinned,
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


def sidebar(user: User, cursor: str | None = None) -> dict:
    """Template context of the sidebar on any page: ``{"conversations", "sidebar_more"}``, one
    page of ``SIDEBAR_PAGE_SIZE`` conversations from ``cursor`` (the newest when None) and the
    cursor of the next page (or None). Raises :class:`InvalidInput` for a malformed cursor."""
    from flask import current_app

    start = ConversationCursor.parse(cursor) if cursor else None
    conversations, more = conversations_page(
        user, limit=current_app.config["SIDEBAR_PAGE_SIZE"], cursor=start
    )
    return {"conversations": conversations, "sidebar_more": more}
