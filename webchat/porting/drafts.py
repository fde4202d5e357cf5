"""Drafts of conversations read from another tool, and the one writer that stores them.

A reader (ChatGPT, Claude Code) turns its format into a :class:`DraftConversation` whose
:class:`DraftMessage` rows name their source ids (``keys``) and their parent's (``parent_key``).
:func:`write` then stores it for a user: new rows only (a key already imported is skipped, so
importing again, or importing a session that grew, adds no duplicates), parents before children,
``created_at`` from the source (nudged 1 µs past a parent it would precede), sanitized HTML
rendered once, and each assistant turn (assistant and tool rows after a user message) grouped
under a finished :class:`~webchat.models.Run` so the page shows it as one reply.

Writers here commit once per conversation, like :mod:`webchat.streaming.store`: an import of a
thousand sessions never holds SQLite's write lock for long, and what was written before a failure
stays written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import JSON, bindparam, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import JSONB

from .. import tree
from ..db import begin_write
from ..extensions import db
from ..models import Conversation, Message, Role, Run, Status, User, new_id
from ..rendering import render_markdown
from .report import ImportReport

T = TypeVar("T")
BATCH = 1_000  # rows per INSERT statement
_TICK = timedelta(microseconds=1)
TURN_ROLES = (Role.ASSISTANT, Role.TOOL)


@dataclass
class DraftMessage:
    """One message to store. ``keys`` are the source ids it stands for (``keys[0]`` names it;
    a Claude Code message rebuilt from several lines has several); they are kept in the
    message's ``metadata.source_ids`` so a later import recognises them."""

    keys: list[str]
    parent_key: str | None
    role: str
    created_at: datetime
    content: str = ""
    tool_name: str | None = None
    tool_call: dict[str, Any] | None = None
    tool_result: Any = None
    status: str = Status.COMPLETE
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DraftConversation:
    """One conversation to store, identified in its source by ``(source, source_id)``.

    ``title`` is "" when the source names none (a later import may bring one); ``messages``
    may come in any order (the writer puts parents first). ``current_key`` names
    the message the source showed last (ChatGPT's ``current_node``, Claude Code's newest
    main-chain line); it is stored as ``metadata.current_message_id`` and becomes the active
    leaf (None: the newest message written).
    """

    source: str
    source_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[DraftMessage] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    archived: bool = False
    pinned: bool = False
    current_key: str | None = None
    fallback_title: str = "Imported conversation"  # for a new conversation when ``title`` is ""


@dataclass
class _Known:
    id: uuid.UUID
    role: str
    run_id: uuid.UUID | None
    created_at: datetime


def from_timestamp(value: Any) -> datetime | None:
    """An aware UTC datetime from epoch seconds (int/float) or an ISO 8601 string (``Z`` or an
    offset; naive means UTC); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def sources_of(user: User, source: str) -> dict[str, Conversation]:
    """The user's conversations imported from ``source``, by their source id (Trash included)."""
    rows = db.session.scalars(
        select(Conversation).where(
            Conversation.user_id == user.id,
            Conversation.meta["source"].as_string() == source,
        )
    )
    return {str(c.meta.get("source_id")): c for c in rows}


def known_rows(conversation: Conversation) -> dict[str, _Known]:
    """Source key → the stored message, for every message of ``conversation`` that has keys."""
    known: dict[str, _Known] = {}
    rows = db.session.execute(
        select(Message.id, Message.role, Message.run_id, Message.created_at, Message.meta)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at, Message.id)
    )
    for row in rows:
        for key in (row.meta or {}).get("source_ids") or ():
            known[key] = known[key.split("#", 1)[0]] = _Known(
                row.id, row.role, row.run_id, row.created_at
            )  # "uuid#n": the n-th message of one source item; the item's last one answers "uuid"
    return known


def parents_first(
    items: Iterable[T],
    keys_of: Callable[[T], Iterable[Any]] = lambda m: m.keys,  # type: ignore[attr-defined]
    parent_of: Callable[[T], Any] = lambda m: m.parent_key,  # type: ignore[attr-defined]
) -> list[T]:
    """``items`` reordered so each comes after its parent (when the parent is among them),
    otherwise in the order given. Members of a cycle come last, in the order given.

    ``keys_of`` gives an item's ids, ``parent_of`` its parent's id (defaults: a
    :class:`DraftMessage`'s ``keys`` and ``parent_key``).
    """
    items = list(items)
    present = {key for item in items for key in keys_of(item)}
    emitted: set[Any] = set()
    waiting: dict[Any, list[int]] = {}
    out: list[int] = []

    def emit(index: int) -> None:
        stack = [index]
        while stack:
            current = stack.pop()
            out.append(current)
            for key in keys_of(items[current]):
                emitted.add(key)
                stack.extend(reversed(waiting.pop(key, [])))

    for index, item in enumerate(items):
        parent = parent_of(item)
        if parent is not None and parent in present and parent not in emitted:
            waiting.setdefault(parent, []).append(index)
        else:
            emit(index)
    out.extend(sorted(i for group in waiting.values() for i in group))
    return [items[i] for i in out]


def insert_rows(messages: list[dict[str, Any]], runs: list[dict[str, Any]]) -> None:
    """INSERT ``messages`` and ``runs`` (dicts of model attributes) in batches, in the order
    that satisfies their foreign keys: runs without their message links, then the messages
    (parents first, as given; placed in their conversation's tree, :func:`webchat.tree.
    place_rows`), then the runs' ``message_id``/``user_message_id``."""
    links = [
        {
            "id": r["id"],
            "message_id": r.pop("message_id"),
            "user_message_id": r.pop("user_message_id"),
        }
        for r in runs
    ]
    for start in range(0, len(runs), BATCH):
        db.session.execute(insert(Run), runs[start : start + BATCH])
    by_conversation: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for m in messages:
        by_conversation.setdefault(m["conversation_id"], []).append(m)
    for conversation_id, placed in by_conversation.items():
        tree.place_rows(conversation_id, placed)
    statement = _message_insert()
    rows = [{**MESSAGE_DEFAULTS, "updated_at": m.get("created_at"), **m} for m in messages]
    for start in range(0, len(rows), BATCH):
        db.session.execute(statement, rows[start : start + BATCH])
    if links:
        db.session.execute(update(Run), links)


# A missing tool call or result is SQL NULL, as the ORM stores it, not JSON null.
_NULLABLE_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
MESSAGE_DEFAULTS: dict[str, Any] = {
    "parent_id": None,
    "run_id": None,
    "content": "",
    "content_html": None,
    "reasoning": None,
    "tool_name": None,
    "tool_call": None,
    "tool_result": None,
    "status": Status.COMPLETE,
    "error": None,
    "meta": {},
    "feedback_rating": None,
    "feedback_comment": None,
    "path_hash": None,  # only the gateway's messages have one (migration 0012)
}


def _message_insert() -> Any:
    """``INSERT INTO messages`` taking every column from a bound parameter named after the
    attribute (``meta`` for ``metadata``), tool call and result binding None as SQL NULL."""
    table: Any = Message.__table__
    values = {}
    for attr in sa_inspect(Message).column_attrs:
        column = attr.columns[0]
        kind = _NULLABLE_JSON if attr.key in ("tool_call", "tool_result") else column.type
        values[column.name] = bindparam(attr.key, type_=kind)
    return insert(table).values(values)


def write(
    user: User,
    draft: DraftConversation,
    report: ImportReport,
    existing: Conversation | None = None,
) -> Conversation | None:
    """Store ``draft`` for ``user`` — as a new conversation, or adding only its new messages to
    ``existing`` (the one imported from the same source before) — and commit.

    Counts what it did into ``report``. A conversation of the source that is in Trash is left
    alone (and reported). Returns the conversation written to, or None.
    """
    begin_write()
    if existing is not None:
        existing = db.session.get(Conversation, existing.id)  # fresh, in this transaction
    if existing is not None and existing.deleted_at is not None:
        report.conversations_unchanged += 1
        report.notes["conversation in Trash, left alone"] += 1
        db.session.rollback()
        return None
    known = known_rows(existing) if existing is not None else {}
    drafts = [m for m in draft.messages if not any(k in known for k in m.keys)]
    report.already_imported += len(draft.messages) - len(drafts)
    if existing is not None and not drafts:
        _refresh(existing, draft)
        report.conversations_unchanged += 1
        db.session.commit()
        return existing

    conversation = existing or _new_conversation(user, draft)
    ids: dict[str, uuid.UUID] = {}
    rows: dict[uuid.UUID, _Known] = {}
    messages: list[dict[str, Any]] = []
    runs: dict[uuid.UUID, dict[str, Any]] = {}
    for m in parents_first(drafts):
        message_id = new_id()
        for key in m.keys:
            ids[key] = message_id
        parent: _Known | None = None
        if m.parent_key is not None:
            parent = rows.get(ids[m.parent_key]) if m.parent_key in ids else known.get(m.parent_key)
            if parent is None:
                report.notes["parent not in the source (kept as a root)"] += 1
        created_at = m.created_at
        if parent is not None and created_at <= parent.created_at:
            created_at = parent.created_at + _TICK
        run_id = _run_for(m.role, parent, message_id, created_at, conversation, runs)
        rows[message_id] = _Known(message_id, m.role, run_id, created_at)
        messages.append(
            {
                "id": message_id,
                "conversation_id": conversation.id,
                "parent_id": parent.id if parent else None,
                "run_id": run_id,
                "role": m.role,
                "content": m.content,
                "content_html": None if m.role == Role.TOOL else render_markdown(m.content),
                "tool_name": m.tool_name,
                "tool_call": m.tool_call,
                "tool_result": m.tool_result,
                "status": m.status,
                "meta": {**m.meta, "source_ids": list(m.keys)},
                "created_at": created_at,
                "updated_at": created_at,
            }
        )
    insert_rows(messages, list(runs.values()))
    last = max((r["created_at"] for r in messages), default=draft.updated_at)
    conversation.updated_at = max(conversation.updated_at, draft.updated_at, last)
    current = ids.get(draft.current_key or "") or getattr(
        known.get(draft.current_key or ""), "id", None
    )
    if current is not None:
        conversation.meta = {**conversation.meta, "current_message_id": str(current)}
    newest = max(messages, key=lambda r: (r["created_at"], r["id"]), default=None)
    if current is not None or newest is not None:
        # The source's current path (ChatGPT's current_node), else the newest message.
        db.session.flush()
        tree.set_active(conversation, current or (newest["id"] if newest else None))
    if existing is not None:
        _refresh(existing, draft)
        report.conversations_updated += 1
    else:
        report.conversations_created += 1
    report.messages += len(messages)
    report.conversation_ids.append(str(conversation.id))
    db.session.commit()
    return conversation


def continuation_model(user: User, source: str) -> str:
    """The model an imported conversation continues with (``provider/model``): the Claude Code
    provider's (``claude-code/default``, else its first model) for a Claude Code session when
    that provider is configured, else the user's default model
    (:func:`conversations.services.default_model`). The model the source used stays in
    ``metadata.source_model``."""
    from ..conversations.services import default_model
    from ..providers import available_models

    if source == "claude-code":
        claude = [m for m in available_models() if m.startswith("claude-code/")]
        if claude:
            return "claude-code/default" if "claude-code/default" in claude else claude[0]
    return default_model(user)


def _new_conversation(user: User, draft: DraftConversation) -> Conversation:
    conversation = Conversation(
        id=new_id(),
        user_id=user.id,
        title=(draft.title or draft.fallback_title)[:200],
        model=continuation_model(user, draft.source),
        meta={
            **draft.meta,
            "source": draft.source,
            "source_id": draft.source_id,
            "auto_title": (draft.title or draft.fallback_title)[:200],
        },
        pinned=draft.pinned,
        archived_at=draft.updated_at if draft.archived else None,
        created_at=draft.created_at,
        updated_at=draft.updated_at,
    )
    db.session.add(conversation)
    db.session.flush()
    return conversation


def _refresh(conversation: Conversation, draft: DraftConversation) -> None:
    """A later import may bring a better title (a Claude Code summary): take it unless the
    person renamed the conversation; and the source's newer metadata."""
    auto = conversation.meta.get("auto_title")
    new_title = draft.title[:200]
    meta = {**conversation.meta, **draft.meta}
    if new_title and conversation.title == auto and new_title != auto:
        conversation.title = new_title
        meta["auto_title"] = new_title
    conversation.meta = meta


def _run_for(
    role: str,
    parent: _Known | None,
    message_id: uuid.UUID,
    created_at: datetime,
    conversation: Conversation,
    runs: dict[uuid.UUID, dict[str, Any]],
) -> uuid.UUID | None:
    """The run an imported assistant or tool message belongs to: its parent's, when the parent
    is part of the same turn, else a new finished run answering the parent user message."""
    if role not in TURN_ROLES:
        return None
    if parent is not None and parent.role in TURN_ROLES and parent.run_id is not None:
        run = runs.get(parent.run_id)
        if run is not None:
            run["finished_at"] = max(run["finished_at"], created_at)
            run["heartbeat_at"] = run["finished_at"]
        return parent.run_id
    run_id = new_id()
    runs[run_id] = {
        "id": run_id,
        "conversation_id": conversation.id,
        "message_id": message_id,
        "user_message_id": parent.id if parent is not None and parent.role == Role.USER else None,
        "model": conversation.model,
        "status": Status.COMPLETE,
        "cancel_requested": False,
        "worker": "import",
        "error": None,
        "heartbeat_at": created_at,
        "created_at": created_at,
        "finished_at": created_at,
    }
    return run_id
