"""What the conversation pages (and the API) do: find a user's rows, create, send, organise
(rename, pin, archive, Trash), set the model and system prompt. Paging is in :mod:`.paging`.

Every function that reads a user's data filters by the user here, in :func:`owned_conversation`
and :func:`owned_message`; another user's row is "not found". Functions flush; the caller commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, select

from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Message, Role, Run, Status, User, new_id, utcnow
from ..providers import available_models
from ..streaming import runs
from ..streaming.store import next_timestamp

TITLE_CHARS = 60


class NotFound(LookupError):
    """No such row for this user (missing, deleted, or someone else's)."""


def owned_conversation(
    user: User, conversation_id: uuid.UUID | str, *, in_trash: bool = False
) -> Conversation:
    """The user's conversation not in Trash (with ``in_trash``: only one in Trash).
    Raises :class:`NotFound`."""
    try:
        cid = (
            conversation_id
            if isinstance(conversation_id, uuid.UUID)
            else uuid.UUID(conversation_id)
        )
    except ValueError:
        raise NotFound(conversation_id) from None
    conversation = db.session.scalars(
        select(Conversation).where(
            Conversation.id == cid,
            Conversation.user_id == user.id,
            Conversation.deleted_at.is_not(None) if in_trash else Conversation.deleted_at.is_(None),
        )
    ).first()
    if conversation is None:
        raise NotFound(conversation_id)
    return conversation


def owned_message(user: User, message_id: uuid.UUID | str) -> Message:
    """A message of one of the user's conversations. Raises :class:`NotFound`."""
    try:
        mid = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(message_id)
    except ValueError:
        raise NotFound(message_id) from None
    message = db.session.scalars(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.id == mid,
            Conversation.user_id == user.id,
            Conversation.deleted_at.is_(None),
        )
    ).first()
    if message is None:
        raise NotFound(message_id)
    return message


def validate_model(model: str | None) -> str | None:
    """``model`` if it is offered by a configured provider (None passes). Raises InvalidInput."""
    if model is None:
        return None
    if model not in available_models():
        raise InvalidInput(f"Unknown model {model!r}.", field="model")
    return model


def create_conversation(
    user: User,
    *,
    title: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    meta: dict | None = None,
) -> Conversation:
    """A new empty conversation of ``user`` (flush only)."""
    now = utcnow()
    conversation = Conversation(
        id=new_id(),
        user_id=user.id,
        title=(title or "New chat").strip()[:200] or "New chat",
        model=validate_model(model) or current_app.config["DEFAULT_MODEL"],
        system_prompt=system_prompt or None,
        meta=meta or {},
        created_at=now,
        updated_at=now,
    )
    db.session.add(conversation)
    db.session.flush()
    return conversation


def validate_content(content: str | None) -> str:
    """The message text, or :class:`InvalidInput`: empty (400) or over ``MAX_MESSAGE_CHARS``
    characters (413)."""
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    if content is None or not content.strip():
        raise InvalidInput("Write a message first: it is empty.", field="content")
    if len(content) > limit:
        raise InvalidInput(
            f"The message is {len(content):,} characters long; the limit is {limit:,}.",
            field="content",
            status=413,
        )
    return content


def last_message(conversation: Conversation) -> Message | None:
    """The newest message of the conversation (one indexed row, whatever its length)."""
    return db.session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


def has_active_reply(conversation: Conversation) -> bool:
    """True while a reply of the conversation is pending or streaming.

    Looks at the run of the newest message only (one index seek, whatever the conversation's
    length): a reply being written is always the conversation's newest message, since nothing
    is sent while one is active. Filtering the conversation's runs by status instead reads all
    of them (50,000 in a conversation of 100,000 messages) on SQLite and on PostgreSQL.
    """
    newest_run = (
        select(Message.run_id)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    status = db.session.scalar(select(Run.status).where(Run.id == newest_run))
    return status in Status.ACTIVE


def send_message(
    conversation: Conversation, content: str | None, model: str | None = None
) -> tuple[Message, Run]:
    """Store the user's message and a pending reply to it; returns both (flush only).

    Commit, then :func:`webchat.streaming.runs.launch` the run. Raises :class:`InvalidInput`:
    400/413 for the content or model, 409 while a reply of the conversation is still active.
    The conversation's title is taken from its first message (first ~60 characters).
    """
    if has_active_reply(conversation):
        raise InvalidInput("Wait for the reply to finish, or stop it, before sending.", status=409)
    content = validate_content(content)
    model = validate_model(model) or conversation.model
    parent = last_message(conversation)
    now = next_timestamp(parent.created_at if parent else None)
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        parent_id=parent.id if parent else None,
        role=Role.USER,
        content=content,
        status=Status.COMPLETE,
        created_at=now,
        updated_at=now,
    )
    db.session.add(message)
    if parent is None and conversation.title == "New chat":
        conversation.title = title_from(content)
    conversation.updated_at = now
    db.session.flush()
    run = runs.start(conversation, message, model)
    return message, run


def title_from(content: str) -> str:
    """A title from the first ~60 characters of ``content``, cut at a word boundary."""
    text = " ".join(content.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0] or text[:TITLE_CHARS]
    return cut + "…"


# --- Organising: rename, pin, archive, Trash -------------------------------------------------
# Trash is a soft delete (``deleted_at``); a conversation in Trash is "not found" everywhere
# except the Trash page, and is purged (its rows removed, messages and runs by cascade) after
# ``TRASH_RETENTION_DAYS`` days or when the person deletes it for good.


def rename(conversation: Conversation, title: str | None) -> Conversation:
    """Give the conversation a new title: whitespace collapsed, 1–200 characters (flush only).

    Raises :class:`InvalidInput` (400, field ``title``) when it is empty or too long.
    """
    text = " ".join((title or "").split())
    if not text:
        raise InvalidInput("A title needs at least one character.", field="title")
    if len(text) > 200:
        raise InvalidInput(f"The title is {len(text)} characters; 200 at most.", field="title")
    conversation.title = text
    db.session.flush()
    return conversation


def set_pinned(conversation: Conversation, pinned: bool) -> Conversation:
    """Pin the conversation (first in the sidebar) or unpin it (flush only)."""
    conversation.pinned = pinned
    db.session.flush()
    return conversation


def set_archived(conversation: Conversation, archived: bool) -> Conversation:
    """Archive the conversation (out of the sidebar, in the Archived list) or bring it back."""
    if archived and conversation.archived_at is None:
        conversation.archived_at = utcnow()
    elif not archived:
        conversation.archived_at = None
    db.session.flush()
    return conversation


def trash(conversation: Conversation) -> Conversation:
    """Move the conversation to Trash (flush only); :func:`restore` brings it back."""
    if conversation.deleted_at is None:
        conversation.deleted_at = utcnow()
    db.session.flush()
    return conversation


def restore(conversation: Conversation) -> Conversation:
    """Take the conversation out of Trash, where it was (pinned or archived as before)."""
    conversation.deleted_at = None
    db.session.flush()
    return conversation


def purge(conversation: Conversation) -> None:
    """Delete the conversation for good: its messages, runs and search entries go with it
    (``ON DELETE CASCADE``). Flush only."""
    db.session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    db.session.expunge(conversation)


def _trash_cutoff() -> datetime | None:
    days = current_app.config["TRASH_RETENTION_DAYS"]
    return utcnow() - timedelta(days=days) if days else None


def trash_expires_at(conversation: Conversation) -> datetime | None:
    """When the conversation in Trash will be purged (None: kept until deleted by hand)."""
    days = current_app.config["TRASH_RETENTION_DAYS"]
    if conversation.deleted_at is None or not days:
        return None
    return conversation.deleted_at + timedelta(days=days)


def _rowcount(result: Any) -> int:
    """Rows a DML statement matched (``CursorResult.rowcount``; ``Result`` is not typed with it)."""
    return result.rowcount or 0


def purge_expired(user: User | None = None) -> int:
    """Purge conversations (of ``user``, or everyone's) in Trash for longer than
    ``TRASH_RETENTION_DAYS`` days; returns how many. 0 days keeps Trash until emptied by hand."""
    cutoff = _trash_cutoff()
    if cutoff is None:
        return 0
    query = delete(Conversation).where(Conversation.deleted_at < cutoff)
    if user is not None:
        query = query.where(Conversation.user_id == user.id)
    return _rowcount(db.session.execute(query))


def empty_trash(user: User) -> int:
    """Purge every conversation of ``user`` in Trash; returns how many."""
    query = delete(Conversation).where(
        Conversation.user_id == user.id, Conversation.deleted_at.is_not(None)
    )
    return _rowcount(db.session.execute(query))


def archived(user: User, limit: int = 500) -> list[Conversation]:
    """The user's archived conversations (not in Trash), newest activity first."""
    return list(
        db.session.scalars(
            select(Conversation)
            .where(
                Conversation.user_id == user.id,
                Conversation.archived_at.is_not(None),
                Conversation.deleted_at.is_(None),
            )
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(limit)
        )
    )


def in_trash(user: User, limit: int = 500) -> list[Conversation]:
    """The user's conversations in Trash and not yet expired, most recently deleted first."""
    query = select(Conversation).where(
        Conversation.user_id == user.id, Conversation.deleted_at.is_not(None)
    )
    cutoff = _trash_cutoff()
    if cutoff is not None:
        query = query.where(Conversation.deleted_at >= cutoff)
    return list(
        db.session.scalars(
            query.order_by(Conversation.deleted_at.desc(), Conversation.id.desc()).limit(limit)
        )
    )


# --- Model and system prompt -----------------------------------------------------------------


REASONING_EFFORTS = ("low", "medium", "high")


def parse_params(form: dict[str, str | None]) -> dict[str, Any]:
    """The generation parameters of a settings form, checked: ``temperature`` (0 to 2),
    ``max_tokens`` (output tokens, 1 to 1,000,000), ``reasoning_effort`` (low, medium, high);
    blank ones are left out. Raises :class:`InvalidInput` (400, the field at fault)."""
    params: dict[str, Any] = {}
    temperature = (form.get("temperature") or "").strip()
    if temperature:
        try:
            params["temperature"] = float(temperature)
        except ValueError:
            params["temperature"] = -1.0
        if not 0 <= params["temperature"] <= 2:
            raise InvalidInput("Temperature is a number from 0 to 2.", field="temperature")
    max_tokens = (form.get("max_tokens") or "").strip()
    if max_tokens:
        if not max_tokens.isdigit() or not 1 <= int(max_tokens) <= 1_000_000:
            raise InvalidInput(
                "Max output tokens is a whole number from 1 to 1,000,000.", field="max_tokens"
            )
        params["max_tokens"] = int(max_tokens)
    effort = (form.get("reasoning_effort") or "").strip()
    if effort:
        if effort not in REASONING_EFFORTS:
            raise InvalidInput("Reasoning effort is low, medium or high.", field="reasoning_effort")
        params["reasoning_effort"] = effort
    return params


def update_settings(
    conversation: Conversation,
    *,
    model: str | None,
    system_prompt: str | None,
    params: dict[str, Any] | None = None,
) -> Conversation:
    """Set the conversation's model, system prompt and generation parameters (flush only);
    later replies use them.

    ``model`` must be offered by a configured provider now (keeping the current one is always
    allowed); ``None`` leaves it. A blank ``system_prompt`` clears it; at most
    ``MAX_MESSAGE_CHARS`` characters. ``params`` (see :func:`parse_params`) replace the stored
    ones in ``metadata.params``; ``None`` leaves them. Raises :class:`InvalidInput` (400, field
    ``model`` or ``system_prompt``).
    """
    if params is not None:
        meta = {k: v for k, v in (conversation.meta or {}).items() if k != "params"}
        conversation.meta = {**meta, "params": params} if params else meta
    if model and model != conversation.model:
        conversation.model = validate_model(model) or conversation.model
    if system_prompt is not None:
        limit = current_app.config["MAX_MESSAGE_CHARS"]
        if len(system_prompt) > limit:
            raise InvalidInput(
                f"The system prompt is {len(system_prompt):,} characters; {limit:,} at most.",
                field="system_prompt",
            )
        conversation.system_prompt = system_prompt.strip() or None
    db.session.flush()
    return conversation


def set_metadata(conversation: Conversation, meta: dict) -> Conversation:
    """Replace the conversation's metadata (a JSON object of the client's own keys; flush only)."""
    conversation.meta = dict(meta)
    db.session.flush()
    return conversation
