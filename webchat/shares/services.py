"""Share links of conversations: create, update (a new snapshot, options, expiry), revoke,
read one without an account, and continue it as a copy in one's own account.

A share is a snapshot that copies no message (:class:`webchat.models.Share`): the active leaf
at the moment it is taken, the position ``(created_at, id)`` of the conversation's newest message
then, and, when it shows every branch, the tree's leaves then (the tails of its segments). The
shared page reads the path from a root to one of those leaves with the same helpers as the
conversation page (:mod:`webchat.tree`, :mod:`webchat.conversations.paging`), so it costs the
messages shown whatever the conversation's length, and a message added later (a reply, a new
branch, an edit) is never shown until the owner updates the snapshot.

A link is a 404 — :class:`NotFound` — once revoked (its row is deleted), past its expiry, when
its conversation is in Trash, or when the owner's account is disabled. Functions flush; the
caller commits.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from .. import audit, tree
from ..conversations import paging
from ..conversations.services import (
    NotFound,
    create_conversation,
    has_active_reply,
    last_message,
)
from ..conversations.services import copy_path as copy_messages
from ..errors import InvalidInput
from ..extensions import db
from ..files.services import files_of
from ..models import Conversation, File, Message, MessageFile, Role, Segment, Share, User, utcnow
from ..providers import available_models

SHARE_ID_BYTES = 24  # secrets.token_urlsafe: 32 characters, 192 random bits
SHARES_LISTED = 500


def new_share_id() -> str:
    """An unguessable share id: 192 random bits, URL-safe base64 (32 characters)."""
    return secrets.token_urlsafe(SHARE_ID_BYTES)


def _snapshot(share: Share, conversation: Conversation) -> None:
    """Take the conversation as it is now into ``share``. Raises :class:`InvalidInput` (409)
    while a reply is being written (its text would still change), (400) when it is empty."""
    if has_active_reply(conversation):
        raise InvalidInput(
            "A reply is still being written: share the conversation once it has finished.",
            status=409,
        )
    newest = last_message(conversation)
    if newest is None or conversation.active_message_id is None:
        raise InvalidInput("This conversation has no message to share yet.")
    share.leaf_id = conversation.active_message_id
    share.cutoff_at, share.cutoff_id = newest.created_at, newest.id
    share.leaves = (
        [
            str(i)
            for i in db.session.scalars(
                select(Segment.tail_id).where(Segment.conversation_id == conversation.id)
            )
        ]
        if share.all_branches
        else None
    )


def _expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("The expiry date has passed: choose a later one.", field="expires_at")
    return expires_at


def create_share(
    user: User,
    conversation: Conversation,
    *,
    all_branches: bool = False,
    include_tools: bool = True,
    include_files: bool = False,
    expires_at: datetime | None = None,
) -> Share:
    """A new share link of the user's ``conversation`` (already owned), a snapshot of it now:
    its active path, or with ``all_branches`` every branch; tool calls and results shown with
    ``include_tools``; the messages' files shown and served under the link with
    ``include_files`` (:func:`shared_file`). Expires at
    ``expires_at`` (aware UTC; None: never). Raises :class:`InvalidInput`: 409 while a reply
    streams, 400 for an empty conversation or a past expiry. Records ``share_created``."""
    now = utcnow()
    share = Share(
        id=new_share_id(),
        user_id=user.id,
        conversation_id=conversation.id,
        all_branches=all_branches,
        include_tools=include_tools,
        include_files=include_files,
        expires_at=_expiry(expires_at),
        created_at=now,
        updated_at=now,
    )
    _snapshot(share, conversation)
    db.session.add(share)
    db.session.flush()
    audit.record("share_created", user, conversation_id=str(conversation.id))
    return share


def update_share(share: Share, fields: dict, refresh: bool = False) -> Share:
    """Change the options given in ``fields`` (``all_branches``, ``include_tools``,
    ``include_files``, ``expires_at``: None removes the expiry) and, with ``refresh`` (or when
    ``all_branches`` changes), take a new snapshot, which shows the messages added since.
    Raises :class:`InvalidInput` as :func:`create_share`."""
    for key in ("include_tools", "include_files"):
        if key in fields:
            setattr(share, key, bool(fields[key]))
    if "expires_at" in fields:
        share.expires_at = _expiry(fields["expires_at"])
    if "all_branches" in fields and bool(fields["all_branches"]) != share.all_branches:
        share.all_branches = bool(fields["all_branches"])
        refresh = True
    if refresh:
        conversation = db.session.get(Conversation, share.conversation_id)
        assert conversation is not None
        _snapshot(share, conversation)
    share.updated_at = utcnow()
    db.session.flush()
    return share


def revoke(share: Share) -> None:
    """Delete the share: its link is a 404 from now on. Records ``share_revoked``."""
    audit.record("share_revoked", share.user_id, conversation_id=str(share.conversation_id))
    db.session.delete(share)
    db.session.flush()


def owned_share(user: User, share_id: str) -> Share:
    """The user's share ``share_id``. Raises :class:`NotFound` (unknown or another user's)."""
    share = db.session.get(Share, str(share_id)[:64])
    if share is None or share.user_id != user.id:
        raise NotFound(share_id)
    return share


def shares_of(user: User, conversation: Conversation | None = None) -> list[Share]:
    """The user's shares (of one conversation, if given), newest first, at most 500, with
    their conversations loaded."""
    query = select(Share).where(Share.user_id == user.id)
    if conversation is not None:
        query = query.where(Share.conversation_id == conversation.id)
    query = query.options(selectinload(Share.conversation))  # one query for their titles
    return list(
        db.session.scalars(query.order_by(Share.created_at.desc(), Share.id).limit(SHARES_LISTED))
    )


def expired(share: Share) -> bool:
    """True once the share is past its expiry."""
    return share.expires_at is not None and share.expires_at <= utcnow()


def public_share(share_id: str) -> tuple[Share, Conversation]:
    """A live share and its conversation, for anyone holding the link. Raises
    :class:`NotFound`: unknown or revoked, expired, its conversation in Trash, or its owner's
    account disabled."""
    share = db.session.get(Share, str(share_id)[:64])
    if share is None or expired(share):
        raise NotFound(share_id)
    conversation = db.session.get(Conversation, share.conversation_id)
    owner = db.session.get(User, share.user_id)
    if conversation is None or conversation.deleted_at is not None or owner is None:
        raise NotFound(share_id)
    if owner.disabled_at is not None:
        raise NotFound(share_id)
    return share, conversation


def count_view(share: Share) -> None:
    """Add one to the share's views (an UPDATE of its row; flush only)."""
    db.session.execute(
        update(Share).where(Share.id == share.id).values(views=Share.views + 1),
        execution_options={"synchronize_session": False},
    )


def cutoff(share: Share) -> tuple[datetime, uuid.UUID]:
    """The snapshot's position: ``(created_at, id)`` of its newest message."""
    assert share.cutoff_at is not None and share.cutoff_id is not None
    return (share.cutoff_at, share.cutoff_id)


def in_snapshot(share: Share, message: Message) -> bool:
    """True when ``message`` is in the share's snapshot (its conversation's, at or before the
    cut-off; on the shared path unless every branch is shared is checked by the caller)."""
    return message.conversation_id == share.conversation_id and (
        message.created_at,
        message.id,
    ) <= cutoff(share)


def visible(share: Share, message: Message) -> bool:
    """Whether the shared page shows ``message``: tool calls and tool results only when the
    share includes them (a reply's text is shown either way)."""
    if share.include_tools:
        return True
    return message.role != Role.TOOL and not (message.role == Role.ASSISTANT and message.tool_call)


def _message(share: Share, message_id: str | uuid.UUID, field: str) -> Message:
    """A message of the snapshot, by id. Raises :class:`InvalidInput` (404) otherwise."""
    try:
        mid = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
    except ValueError:
        raise InvalidInput(f"{field} must be a message id (a UUID).", field=field) from None
    message = db.session.get(Message, mid)
    if message is None or not in_snapshot(share, message):
        raise InvalidInput(f"No message {mid} in this shared conversation.", field, status=404)
    return message


def leaf_through(share: Share, message: Message) -> Message:
    """The leaf of the snapshot's path through ``message`` (every branch only): the newest
    leaf under it when that is in the snapshot (nothing was added below it since), else the
    newest of the snapshot's leaves whose path holds it (one path read per leaf tried)."""
    newest = db.session.get(Message, tree.newest_leaf(message))
    if newest is not None and in_snapshot(share, newest):
        return newest
    ids = [uuid.UUID(i) for i in share.leaves or []]
    leaves: list[Message] = (
        list(db.session.scalars(select(Message).where(Message.id.in_(ids)))) if ids else []
    )
    for leaf in sorted(leaves, key=paging.key_of, reverse=True):
        if tree.path_to(leaf).holds(message):
            return leaf
    return message


@dataclass
class SharedWindow:
    """What the shared page (or JSON) shows: a :class:`paging.Window` of the shared path, the
    messages among them it shows, and their :class:`tree.Siblings` within the snapshot (every
    branch only; empty otherwise)."""

    window: paging.Window
    messages: list[Message]
    siblings: dict[uuid.UUID, tree.Siblings]


def shared_window(
    share: Share,
    *,
    limit: int,
    before: str | None = None,
    after: str | None = None,
    leaf: str | None = None,
) -> SharedWindow:
    """About ``limit`` messages of the shared path: before the message ``before``, after
    ``after``, or else the newest. The path is the snapshot's active path; with every branch
    shared, ``leaf`` (a message of the snapshot) picks the path through it. Raises
    :class:`InvalidInput` (404) for a message not in the snapshot or (400) not on the path."""
    if leaf and share.all_branches:
        leaf_message = leaf_through(share, _message(share, leaf, "leaf"))
    else:
        assert share.leaf_id is not None
        found = db.session.get(Message, share.leaf_id)
        if found is None:
            raise InvalidInput("This shared conversation has no message.", status=404)
        leaf_message = found
    path = tree.path_to(leaf_message)
    cursor_message = None
    for field, value in (("before", before), ("after", after)):
        if value:
            cursor_message = _message(share, value, field)
            if not path.holds(cursor_message):
                raise InvalidInput(f"{field} is not on the shared path.", field=field)
    if before and cursor_message is not None:
        items, more = paging.older(path, cursor_message, limit)
        window = paging.Window(items, older=items[0] if more and items else None, path=path)
        if items:
            window.newer = items[-1]
    elif after and cursor_message is not None:
        items, more = paging.newer(path, cursor_message, limit)
        window = paging.Window(items, newer=items[-1] if more and items else None, path=path)
        if items:
            window.older = items[0]
    else:
        items, more = paging.older(path, None, limit)
        window = paging.Window(items, older=items[0] if more and items else None, path=path)
    shown = [m for m in window.messages if visible(share, m)]
    places = tree.siblings(shown, until=cutoff(share)) if share.all_branches else {}
    return SharedWindow(window, shown, places)


def continue_share(user: User, share: Share, leaf: str | None = None) -> Conversation:
    """A new conversation of ``user`` holding a copy of the shared path (the one through
    ``leaf`` when every branch is shared) as the share shows it (tool steps left out unless
    included), titled as the original, with its model if offered here; ``metadata.shared_from``
    is the share id. The owner's system prompt and project are not copied. The messages' files
    come along only when the share includes them, as files of ``user`` referring to the same
    stored bytes (so the viewer can open them); otherwise the copy carries no file. Flush
    only."""
    source = db.session.get(Conversation, share.conversation_id)
    assert source is not None
    if leaf and share.all_branches:
        end = leaf_through(share, _message(share, leaf, "leaf"))
    else:
        found = db.session.get(Message, share.leaf_id) if share.leaf_id else None
        if found is None:
            raise InvalidInput("This shared conversation has no message.", status=404)
        end = found
    copy = create_conversation(
        user,
        title=source.title,
        model=source.model if source.model in available_models() else None,
        meta={"shared_from": share.id},
    )
    copy_messages(
        tree.path_to(end), copy, keep=lambda m: visible(share, m), files=share.include_files
    )
    return copy


def shared_files(share: Share, messages: list[Message]) -> dict[uuid.UUID, list[File]]:
    """The files the shared page shows of ``messages`` (by message id, one query): none
    unless the share includes files."""
    return files_of(messages) if share.include_files else {}


def shared_file(share: Share, file_id: str) -> File:
    """A file served under the share: one the share includes (``include_files``), attached to
    a message the share shows — in its snapshot, on its shared path (any branch when every
    branch is shared), and visible (tool steps only when included). Raises :class:`NotFound`
    otherwise."""
    try:
        fid = uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound(file_id) from None
    file = db.session.get(File, fid) if share.include_files else None
    if file is None or file.user_id != share.user_id:
        raise NotFound(file_id)
    messages = db.session.scalars(
        select(Message)
        .join(MessageFile, MessageFile.message_id == Message.id)
        .where(MessageFile.file_id == fid, Message.conversation_id == share.conversation_id)
    )
    shown = [m for m in messages if in_snapshot(share, m) and visible(share, m)]
    if not share.all_branches and shown:
        leaf = db.session.get(Message, share.leaf_id) if share.leaf_id else None
        path = tree.path_to(leaf) if leaf is not None else None
        shown = [m for m in shown if path is not None and path.holds(m)]
    if not shown:
        raise NotFound(file_id)
    return file


__all__ = [
    "SharedWindow",
    "continue_share",
    "count_view",
    "create_share",
    "cutoff",
    "in_snapshot",
    "new_share_id",
    "owned_share",
    "public_share",
    "revoke",
    "shared_file",
    "shared_files",
    "shared_window",
    "shares_of",
    "update_share",
    "visible",
]
