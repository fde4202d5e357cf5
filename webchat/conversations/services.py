"""What the conversation pages (and the API) do: find a user's rows, create, send, organise
(rename, pin, archive, Trash), set the model and system prompt. Paging is in :mod:`.paging`.

Every function that reads a user's data filters by the user here, in :func:`owned_conversation`
and :func:`owned_message`; another user's row is "not found". Functions flush; the caller commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, exists, insert, select, text, update

from .. import tree
from ..errors import InvalidInput
from ..extensions import db
from ..files import services as file_services
from ..models import Conversation, Message, Project, Role, Run, Status, User, new_id, utcnow
from ..providers import available_models
from ..rendering import render_markdown
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
    # Two primary-key reads: a plan that can't wander into a long conversation's rows.
    message = db.session.get(Message, mid)
    conversation = db.session.get(Conversation, message.conversation_id) if message else None
    if (
        message is None
        or conversation is None
        or conversation.user_id != user.id
        or conversation.deleted_at is not None
    ):
        raise NotFound(message_id)
    return message


def validate_model(model: str | None) -> str | None:
    """``model`` if it is offered by a configured provider (None passes). Raises InvalidInput."""
    if model is None:
        return None
    if model not in available_models():
        raise InvalidInput(f"Unknown model {model!r}.", field="model")
    return model


def default_model(user: User) -> str:
    """The user's default model (``provider/model``): the model of the newest conversation they
    started here (an imported one does not count) among their last :data:`RECENT_MODELS`, while
    it is still offered; else the server's ``DEFAULT_MODEL``. One query."""
    offered = set(available_models())
    recent = db.session.execute(
        select(Conversation.model, Conversation.meta)
        .where(Conversation.user_id == user.id)
        .order_by(Conversation.created_at.desc())
        .limit(RECENT_MODELS)
    ).all()
    for model, meta in recent:
        if not (meta or {}).get("source") and model in offered:
            return model
    return current_app.config["DEFAULT_MODEL"]


RECENT_MODELS = 20  # conversations default_model looks through


def create_conversation(
    user: User,
    *,
    title: str | None = None,
    model: str | None = None,
    system_prompt: str | None = None,
    meta: dict | None = None,
    project: Project | None = None,
) -> Conversation:
    """A new empty conversation of ``user`` (flush only), in ``project`` (one of the user's,
    already checked) if given: its model is then ``model``, else the project's default model,
    else the server's ``DEFAULT_MODEL``."""
    now = utcnow()
    default = (project.default_model if project is not None else None) or current_app.config[
        "DEFAULT_MODEL"
    ]
    conversation = Conversation(
        id=new_id(),
        user_id=user.id,
        project_id=project.id if project is not None else None,
        title=(title or "New chat").strip()[:200] or "New chat",
        model=validate_model(model) or default,
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
    """The newest message of the conversation by time, on any branch (one indexed row)."""
    return db.session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


_ACTIVE_RUN = select(  # statuses as literals: both databases then match ix_runs_active
    exists().where(
        Run.conversation_id == bindparam("conversation_id"),
        text("runs.status IN ('pending', 'streaming')"),
    )
)


def has_active_reply(conversation: Conversation) -> bool:
    """True while a reply of the conversation, on any branch, is pending or streaming.

    Reads the partial index of active runs (``ix_runs_active``, migration 0011): at most the
    server's few active runs, whatever the number of the conversation's finished runs.
    """
    return bool(db.session.scalar(_ACTIVE_RUN, {"conversation_id": conversation.id}))


def _refuse_while_streaming(conversation: Conversation) -> None:
    if has_active_reply(conversation):
        raise InvalidInput(
            "A reply is still streaming in this conversation: wait for it, or stop it, first.",
            status=409,
        )
    waiting = db.session.scalar(
        select(Run.id)
        .where(Run.conversation_id == conversation.id, Run.status == Status.AWAITING)
        .limit(1)
    )
    if waiting is not None:
        raise InvalidInput(
            "A tool call in this conversation is waiting for your approval: allow or deny it "
            "first.",
            status=409,
        )


def _message_of(conversation: Conversation, message_id: uuid.UUID | str, field: str) -> Message:
    """The message ``message_id`` of ``conversation``. Raises :class:`InvalidInput`: 400 for a
    malformed id or one of another conversation of the same user, 404 for an unknown one (or
    another user's: their ids are "not found" everywhere)."""
    try:
        mid = message_id if isinstance(message_id, uuid.UUID) else uuid.UUID(str(message_id))
    except ValueError:
        raise InvalidInput(f"{field} must be a message id (a UUID).", field=field) from None
    message = db.session.get(Message, mid)
    if message is not None and message.conversation_id != conversation.id:
        owner = db.session.get(User, conversation.user_id)
        assert owner is not None
        try:
            owned_message(owner, mid)
        except NotFound:
            message = None
    if message is None:
        raise InvalidInput(f"No message {mid}.", field=field, status=404)
    if message.conversation_id != conversation.id:
        raise InvalidInput(
            f"{field} must be a message of this conversation.", field=field, status=400
        )
    return message


def new_message(
    conversation: Conversation, parent: Message | None, role: str, content: str, **fields: Any
) -> Message:
    """A new finished message under ``parent`` (None: a root), placed in the tree and flushed;
    it becomes the active leaf. ``fields`` are further :class:`Message` columns."""
    now = next_timestamp(parent.created_at if parent else None)
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        parent_id=parent.id if parent else None,
        role=role,
        content=content,
        status=Status.COMPLETE,
        created_at=now,
        updated_at=now,
        **fields,
    )
    tree.attach(message, parent)
    db.session.add(message)
    conversation.updated_at = now
    db.session.flush()
    tree.set_active(conversation, message.id)
    return message


def send_message(
    conversation: Conversation,
    content: str | None,
    model: str | None = None,
    parent_id: uuid.UUID | str | None = None,
    files: list[uuid.UUID] | list[str] | None = None,
) -> tuple[Message, Run]:
    """Store the user's message and a pending reply to it; returns both (flush only).

    ``files`` are ids of the user's uploads (:mod:`webchat.files`) to attach, in order; with
    files the text may be empty. An unknown file is a 404, an image for a model that can't read
    images a 400, both before anything is stored.

    The message is a child of ``parent_id`` (a message of this conversation), or else of the
    active leaf; it and its reply become the active path. Commit, then
    :func:`webchat.streaming.runs.launch` the run. Raises :class:`InvalidInput`: 400/413 for
    the content, model or ``parent_id``, 404 for an unknown ``parent_id``, 409 while a reply of
    the conversation is still active. The conversation's title is taken from its first message
    (first ~60 characters).
    """
    _refuse_while_streaming(conversation)
    attached = file_services.owned_files(conversation.user, files)  # issue 14: files
    content = validate_content(content) if not attached or (content or "").strip() else ""
    model = validate_model(model) or conversation.model
    file_services.check_model(model, attached)
    if parent_id is not None:
        parent: Message | None = _message_of(conversation, parent_id, "parent_id")
    else:
        parent = tree.active_leaf(conversation)
    if parent is None and conversation.title == "New chat":
        conversation.title = title_from(content or attached[0].name)
    message = new_message(conversation, parent, Role.USER, content)
    file_services.attach(message, attached)
    run = runs.start(conversation, message, model)
    return message, run


# --- The tree: edit, regenerate, switch, fork, feedback --------------------------------------


def edit_message(message: Message, content: str | None) -> tuple[Message, Run | None]:
    """A new version of ``message`` with ``content``: a sibling (``metadata.edited_from`` = the
    original's id) that becomes the active path; the original is never changed.

    A user message's new version gets a reply: returns it with the run to launch after the
    commit. An assistant message's new version is stored as it is, with no run. Raises
    :class:`InvalidInput`: 400 for a tool or system message, 400/413 for the content, 409 for a
    user message while a reply of the conversation is active, or an assistant message still
    being written. Flush only.
    """
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    if message.role not in (Role.USER, Role.ASSISTANT):
        raise InvalidInput(f"A {message.role} message can't be edited.", field="content")
    content = validate_content(content)
    if message.is_active:
        raise InvalidInput("This reply is still being written: stop it first.", status=409)
    parent = db.session.get(Message, message.parent_id) if message.parent_id else None
    meta = {"edited_from": str(message.id)}
    if message.role == Role.USER:
        _refuse_while_streaming(conversation)
        edited = new_message(conversation, parent, Role.USER, content, meta=meta)
        file_services.copy_references({message.id: edited.id})  # an edit keeps its files
        return edited, runs.start(conversation, edited, conversation.model)
    model = (message.meta or {}).get("model")
    edited = new_message(
        conversation,
        parent,
        Role.ASSISTANT,
        content,
        meta={**meta, "model": model} if model else meta,
        content_html=render_markdown(content),
    )
    return edited, None


def answered_message(message: Message) -> Message | None:
    """The user message an assistant or tool ``message`` answers: its run's, else the nearest
    user message above it (a reply has few messages)."""
    run = db.session.get(Run, message.run_id) if message.run_id else None
    if run is not None and run.user_message_id is not None:
        return db.session.get(Message, run.user_message_id)
    current: Message | None = message
    for _ in range(64):
        if current is None or current.role == Role.USER:
            return current
        current = db.session.get(Message, current.parent_id) if current.parent_id else None
    return None


def regenerate(message: Message, model: str | None = None) -> Run:
    """Another reply: to the user message ``message``, or to the one the assistant reply
    ``message`` answers (a sibling of it). The new reply streams under ``model`` (default: the
    replaced reply's model, else the conversation's) and becomes the active path.

    Returns the run to launch after the commit. Raises :class:`InvalidInput`: 400 for a tool or
    system message or an unknown model, 409 while a reply of the conversation is active. Flush
    only.
    """
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    if message.role not in (Role.USER, Role.ASSISTANT):
        raise InvalidInput(
            f"Only a reply, or the message it answers, can be regenerated; this is a "
            f"{message.role} message.",
            field="message_id",
        )
    _refuse_while_streaming(conversation)
    chosen = validate_model(model)
    user_message = message if message.role == Role.USER else answered_message(message)
    if user_message is None:
        raise InvalidInput("This reply answers no message of the conversation.")
    if chosen is None and message.role == Role.ASSISTANT:
        run = db.session.get(Run, message.run_id) if message.run_id else None
        chosen = run.model if run is not None else (message.meta or {}).get("model")
        chosen = chosen if chosen in available_models() else None
    run = runs.start(conversation, user_message, chosen or conversation.model)
    conversation.updated_at = run.created_at
    db.session.flush()
    return run


def switch_branch(conversation: Conversation, message: Message) -> uuid.UUID:
    """Show the branch through ``message``: the active leaf becomes the newest leaf under it.
    Returns that leaf's id. Flush only."""
    leaf_id = tree.newest_leaf(message)
    tree.set_active(conversation, leaf_id)
    return leaf_id


def fork(user: User, message: Message) -> Conversation:
    """A new conversation of ``user`` holding a copy of the path from the root down to
    ``message`` (``metadata.forked_from`` = ``{"conversation_id", "message_id"}``), with the
    same title (marked as a fork), model and system prompt; its active leaf is the copy of
    ``message``. Copies ``message.depth + 1`` messages, a thousand per statement, and their
    runs. Raises :class:`InvalidInput` (409) when ``message`` is still being written. Flush
    only."""
    if message.is_active:
        raise InvalidInput("This reply is still being written: wait for it first.", status=409)
    source = db.session.get(Conversation, message.conversation_id)
    assert source is not None
    copy = create_conversation(
        user,
        title=f"{source.title} (fork)"[:200],
        system_prompt=source.system_prompt,
        meta={"forked_from": {"conversation_id": str(source.id), "message_id": str(message.id)}},
    )
    copy.model = source.model
    copy_path(tree.path_to(message), copy)
    return copy


def copy_path(
    path: tree.Path,
    target: Conversation,
    batch: int = 1000,
    keep: Callable[[Message], bool] | None = None,
    files: bool = True,
) -> None:
    """Copy the messages of ``path`` (and the runs they belong to) into the empty conversation
    ``target``, as one chain; its active leaf becomes the copy of the path's last copied
    message. ``keep``: copy only the messages it accepts (the chain closes over the others).
    ``files``: the copies refer to the files of their originals, as files of ``target``'s owner
    (:func:`webchat.files.services.copy_references`); False: the copies carry no file."""
    run_ids: dict[uuid.UUID, uuid.UUID] = {}
    run_rows: list[dict[str, Any]] = []
    previous: uuid.UUID | None = None
    copied: dict[uuid.UUID, uuid.UUID] = {}
    skip = {"id", "conversation_id", "parent_id", "run_id", "segment_id", "depth"}
    columns = [c for c in Message.__table__.columns if c.key not in skip]
    for start in range(0, path.length, batch):
        rows: list[dict[str, Any]] = []
        in_batch: dict[uuid.UUID, uuid.UUID] = {}
        for m in path.messages(start, start + batch - 1):
            if keep is not None and not keep(m):
                continue
            new = new_id()
            copied[m.id] = new
            in_batch[m.id] = new
            row = {c.key: getattr(m, "meta" if c.key == "metadata" else c.key) for c in columns}
            row.update(id=new, conversation_id=target.id, parent_id=previous)
            if m.run_id is not None:
                if m.run_id not in run_ids:
                    run_ids[m.run_id] = new_id()
                    run_rows.append({"old": m.run_id, "id": run_ids[m.run_id]})
                row["run_id"] = run_ids[m.run_id]
            previous = new
            rows.append(row)
        if rows:
            tree.place_rows(target.id, rows)
            _insert_copies(rows, run_rows)
            if files:  # the copies keep their files (issue 14), as files of the copy's owner
                file_services.copy_references(in_batch, target.user_id)
    # A copied run answers the copy of its user message, starting at the copy of its first
    # message (retry and regenerate read them); set once the copies are in.
    links = [
        {
            "id": r["id"],
            "message_id": copied.get(r["first"]),
            "user_message_id": copied.get(r["asked"]),
        }
        for r in run_rows
    ]
    if links:
        db.session.execute(update(Run), links)  # ORM bulk UPDATE by primary key
    if previous is not None:
        tree.set_active(target, previous)


def _insert_copies(rows: list[dict[str, Any]], run_rows: list[dict[str, Any]]) -> None:
    """Insert copied messages, after copies of the runs they refer to that are not yet in."""
    new_runs = [r for r in run_rows if not r.get("done")]
    if new_runs:
        old = {
            r.id: r
            for r in db.session.scalars(select(Run).where(Run.id.in_([r["old"] for r in new_runs])))
        }
        db.session.execute(
            insert(Run),
            [
                {
                    "id": r["id"],
                    "conversation_id": rows[0]["conversation_id"],
                    "model": old[r["old"]].model,
                    "status": old[r["old"]].status,
                    "error": old[r["old"]].error,
                    "heartbeat_at": old[r["old"]].heartbeat_at,
                    "created_at": old[r["old"]].created_at,
                    "finished_at": old[r["old"]].finished_at,
                }
                for r in new_runs
            ],
        )
        for r in new_runs:
            r.update(done=True, first=old[r["old"]].message_id, asked=old[r["old"]].user_message_id)
    db.session.execute(insert(Message), [{"meta": r.pop("metadata"), **r} for r in rows])


FEEDBACK_COMMENT_CHARS = 2000


def set_feedback(message: Message, rating: str | None, comment: str | None = None) -> Message:
    """Store a person's feedback on an assistant message: ``rating`` ``"up"``, ``"down"`` or
    None (cleared), and an optional comment (at most 2,000 characters; blank clears it).
    Raises :class:`InvalidInput` (400) for another rating, a comment too long, or a message
    that is not an assistant reply. Flush only."""
    if message.role != Role.ASSISTANT:
        raise InvalidInput("Feedback is for the model's replies only.", field="rating")
    if rating not in ("up", "down", None):
        raise InvalidInput('rating must be "up", "down" or null.', field="rating")
    text = (comment or "").strip() or None
    if text is not None and len(text) > FEEDBACK_COMMENT_CHARS:
        raise InvalidInput(
            f"The comment is {len(text):,} characters; {FEEDBACK_COMMENT_CHARS:,} at most.",
            field="comment",
        )
    message.feedback_rating = rating
    message.feedback_comment = text
    db.session.flush()
    return message


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
