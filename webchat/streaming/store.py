"""The only writer of a reply: creates it, appends its deltas, finishes or fails it.

Every function here is one short transaction that commits and then wakes the run's readers through
:mod:`webchat.streaming.notify`. Appends are SQL ``content = content || :delta`` updates: no
earlier row is read or rewritten, whatever the conversation's length (the database still rewrites
the reply's own row, so an append to a 1 MB reply costs more than to a 1 KB one; see
docs/performance.md). The run executor batches deltas (see :class:`DeltaBuffer`) so a run writes
at most once per ``FLUSH_INTERVAL_MS``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import Table, bindparam, func, or_, select, update

from .. import tree
from ..db import begin_write
from ..extensions import db
from ..models import Conversation, Message, Role, Run, Status, new_id, utcnow
from ..ops import metrics
from ..rendering import render_markdown
from ..usage.services import add_usage as usage_sums
from .notify import notifier


def next_timestamp(previous: datetime | None) -> datetime:
    """Now, or 1 µs after ``previous`` if the clock has not moved past it.

    Messages of a conversation are ordered by ``(created_at, id)``; this keeps a child strictly
    after its parent even when two rows are written within one clock tick.
    """
    now = utcnow()
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


def create_reply(
    conversation: Conversation, user_message: Message, model: str, **run_fields: Any
) -> Run:
    """Add a pending assistant message answering ``user_message`` and the run that will write it
    (``run_fields``: further :class:`Run` columns, such as a gateway request's ``options``).

    The reply is a child of ``user_message`` (a sibling of earlier replies to it, when it has
    some) and becomes the conversation's active leaf. Flushes only; the caller commits (the user
    message and the placeholder land in one transaction) and then calls
    :func:`webchat.streaming.runs.launch`.
    """
    run = Run(
        id=new_id(),
        conversation_id=conversation.id,
        user_message_id=user_message.id,
        model=model,
        status=Status.PENDING,
        **run_fields,
    )
    db.session.add(run)
    db.session.flush()
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        parent_id=user_message.id,
        run_id=run.id,
        role=Role.ASSISTANT,
        content="",
        status=Status.PENDING,
        meta={"model": model},
        created_at=next_timestamp(user_message.created_at),
    )
    message.updated_at = message.created_at
    tree.attach(message, user_message)
    db.session.add(message)
    db.session.flush()
    run.message_id = message.id
    db.session.flush()
    tree.set_active(conversation, message.id)
    return run


def _commit_and_wake(run_id: uuid.UUID) -> None:
    db.session.commit()
    notifier().publish(str(run_id))


def start_run(run_id: uuid.UUID, worker: str) -> bool:
    """Mark a pending run as running by ``worker``; False if it was cancelled or taken already."""
    begin_write()
    now = utcnow()
    taken = db.session.execute(
        update(_runs)
        .where(
            _runs.c.id == run_id,
            _runs.c.status == Status.PENDING,
            _runs.c.cancel_requested.is_(False),
        )
        .values(status=Status.STREAMING, worker=worker, heartbeat_at=now)
        .returning(_runs.c.id)
    ).first()
    _commit_and_wake(run_id)
    return bool(taken)


_messages = cast(Table, Message.__table__)
_runs = cast(Table, Run.__table__)
# Built once: the append is the hot path (up to 10 a second per run), and a Core statement on
# the tables skips the ORM's per-call statement building and session synchronisation.
_APPEND_TEXT = (  # run as executemany, which takes no "expanding" IN parameter
    update(_messages)
    .where(
        _messages.c.id == bindparam("message_id"),
        or_(*(_messages.c.status == status for status in Status.ACTIVE)),
    )
    .values(
        content=_messages.c.content + bindparam("text"),
        status=Status.STREAMING,
        updated_at=bindparam("now"),
    )
)
_TOUCH_RUNS = (  # the heartbeat of those of the runs still active
    update(_runs)
    .where(_runs.c.id.in_(bindparam("run_ids", expanding=True)), _runs.c.status.in_(Status.ACTIVE))
    .values(heartbeat_at=bindparam("now"))
)
_TOUCH_ACTIVE = _TOUCH_RUNS.returning(_runs.c.id, _runs.c.cancel_requested)
_LENGTHS = select(_messages.c.id, func.length(_messages.c.content)).where(
    _messages.c.id.in_(bindparam("message_ids", expanding=True)),
    _messages.c.status == Status.STREAMING,
)


def append(run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> bool:
    """Append ``text`` (characters) to the message, mark it streaming, touch the run's heartbeat;
    return once that is committed.

    The appends of all the runs of this process are group-committed (see :class:`AppendWriter`):
    those that arrive while one transaction is being written go together into the next, so a
    worker with 1,000 streaming replies writes a few transactions per flush interval, not 1,000.
    Each is ``UPDATE … SET content = content || :text`` for the messages and one ``UPDATE`` of
    the runs, whatever the replies' or the conversations' lengths. A message that has already
    ended (the reaper interrupted the run meanwhile, say) is left as it is. Returns True when the
    run must stop: a cancel was requested, or the run has ended already. Raises
    ``RuntimeError`` when the write failed.
    """
    if db.session().in_transaction():
        db.session.commit()  # hold nothing (SQLite's write lock least of all) while waiting
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    writer = app.extensions.get("webchat.appends")
    if writer is None or writer.pid != os.getpid():
        writer = app.extensions["webchat.appends"] = AppendWriter(app)
    return writer.append(run_id, message_id, text)


class _Pending:
    __slots__ = ("run_id", "message_id", "text", "done", "stop", "error")

    def __init__(self, run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> None:
        self.run_id, self.message_id, self.text = run_id, message_id, text
        self.done = threading.Event()
        self.stop = False
        self.error: BaseException | None = None


class AppendWriter:
    """Group commit of :func:`append` for one app in one process.

    Callers queue their text and wait; a writer thread takes everything queued, writes it in one
    transaction (an ``executemany`` of the message updates, one ``UPDATE … RETURNING`` of the
    runs, one read of the new lengths), commits, answers every caller and notifies the readers,
    with the appended text as payload (see :mod:`.notify`). Alone, an append is written at once;
    under load, batches grow by themselves. The thread ends after ``IDLE_S`` seconds without work
    and starts again on demand.
    """

    IDLE_S = 5.0

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self.cond = threading.Condition()
        self.queue: list[_Pending] = []
        self.running = False

    def append(self, run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> bool:
        """Queue one append and wait until it is committed; see :func:`append`."""
        item = _Pending(run_id, message_id, text)
        with self.cond:
            self.queue.append(item)
            if self.running:
                self.cond.notify()
            else:
                self.running = True
                threading.Thread(target=self._loop, name="webchat-appends", daemon=True).start()
        item.done.wait()
        if item.error is not None:
            raise RuntimeError(f"the reply's text could not be stored: {item.error}")
        return item.stop

    def _loop(self) -> None:
        while True:
            with self.cond:
                if not self.queue:
                    self.cond.wait(self.IDLE_S)
                if not self.queue:
                    self.running = False
                    return
                batch, self.queue = self.queue, []
            try:
                with self.app.app_context():
                    try:
                        _write_appends(batch)
                    finally:
                        db.session.remove()
            except Exception as exc:
                for item in batch:
                    item.error = exc
            finally:
                for item in batch:
                    item.done.set()


def _write_appends(batch: list[_Pending]) -> None:
    """Write one batch of appends in one transaction; set each item's ``stop``; notify."""
    texts: dict[uuid.UUID, list[str]] = {}
    owner: dict[uuid.UUID, uuid.UUID] = {}
    for item in batch:
        if item.text:
            texts.setdefault(item.message_id, []).append(item.text)
            owner[item.message_id] = item.run_id
    joined = {message_id: "".join(parts) for message_id, parts in texts.items()}
    begin_write()
    connection = db.session.connection()
    now = utcnow()
    if joined:
        connection.execute(
            _APPEND_TEXT,
            [{"message_id": m, "text": t, "now": now} for m, t in joined.items()],
        )
    run_ids = list({item.run_id for item in batch})
    active: dict[uuid.UUID, bool] = {
        row.id: row.cancel_requested
        for row in connection.execute(_TOUCH_ACTIVE, {"run_ids": run_ids, "now": now})
    }
    lengths: dict[uuid.UUID, int] = {
        row[0]: row[1] for row in connection.execute(_LENGTHS, {"message_ids": list(joined)})
    }
    db.session.commit()
    for item in batch:
        item.stop = item.run_id not in active or bool(active[item.run_id])
    payloads: dict[str, Any] = {}
    for message_id, text in joined.items():
        key = str(owner[message_id])
        end = lengths.get(message_id)
        fits = key not in payloads and end is not None and owner[message_id] in active
        payloads[key] = (str(message_id), end - len(text), text) if fits and end else None
    if payloads:
        notifier().publish_many(payloads)


_APPEND_REASONING = (
    update(_messages)
    .where(_messages.c.id == bindparam("message_id"), _messages.c.status.in_(Status.ACTIVE))
    .values(
        reasoning=func.coalesce(_messages.c.reasoning, "") + bindparam("text"),
        updated_at=bindparam("now"),
    )
)


def append_reasoning(run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> None:
    """Append ``text`` (characters of the model's thinking) to the message's ``reasoning``, in
    one short transaction, and wake the run's readers. A message that has ended is left as it
    is. Thinking comes in bursts before the answer, so these writes take the place of the text
    appends rather than adding to them (the executor flushes both on the same interval)."""
    if not text:
        return
    begin_write()
    db.session.connection().execute(
        _APPEND_REASONING, {"message_id": message_id, "text": text, "now": utcnow()}
    )
    _commit_and_wake(run_id)


def touch(run_ids: list[uuid.UUID]) -> None:
    """Touch the heartbeat of those of ``run_ids`` still active: one ``UPDATE``, one commit."""
    begin_write()
    db.session.connection().execute(_TOUCH_RUNS, {"run_ids": run_ids, "now": utcnow()})
    db.session.commit()


def add_message(run_id: uuid.UUID, parent_id: uuid.UUID, role: str, **fields: Any) -> uuid.UUID:
    """Add another message of the run (a tool result, or the assistant's next step) after
    ``parent_id``; ``fields`` are further :class:`Message` columns. Returns the new id."""
    begin_write()
    parent = db.session.get(Message, parent_id)
    assert parent is not None
    fields.setdefault("status", Status.STREAMING if role == Role.ASSISTANT else Status.COMPLETE)
    message = Message(
        id=new_id(),
        conversation_id=parent.conversation_id,
        parent_id=parent_id,
        run_id=run_id,
        role=role,
        created_at=next_timestamp(parent.created_at),
        **fields,
    )
    message.updated_at = message.created_at
    if message.status in Status.FINAL and role != Role.TOOL:
        message.content_html = render_markdown(message.content or "")
    tree.attach(message, parent)
    db.session.add(message)
    db.session.flush()
    tree.advance(parent.conversation_id, parent.id, message.id)
    _commit_and_wake(run_id)
    return message.id


def update_message(run_id: uuid.UUID, message_id: uuid.UUID, **fields: Any) -> None:
    """Set columns of a run's message (tool call, metadata…); ``meta`` is merged, not replaced."""
    begin_write()
    message = db.session.get(Message, message_id)
    assert message is not None
    if "meta" in fields:
        fields["meta"] = {**(message.meta or {}), **fields["meta"]}
    for key, value in fields.items():
        setattr(message, key, value)
    message.updated_at = utcnow()
    _commit_and_wake(run_id)


def add_usage(run_id: uuid.UUID, usage: dict[str, Any]) -> None:
    """Add one reply step's ``metadata.usage`` to its conversation's ``usage`` sums (see
    :func:`webchat.usage.services.add_usage`). One short write transaction; the row is locked
    (PostgreSQL ``FOR UPDATE``; SQLite's write lock), so two replies finishing at once both
    count."""
    begin_write()
    run = db.session.get(Run, run_id)
    conversation = (
        db.session.get(
            Conversation, run.conversation_id, with_for_update=True, populate_existing=True
        )
        if run
        else None
    )
    if conversation is None:
        db.session.rollback()
        return
    conversation.usage = usage_sums(conversation.usage, usage)
    db.session.commit()


def update_conversation_meta(run_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Merge ``values`` into the metadata of the run's conversation (a provider's session state,
    such as Claude Code's session id). One short write transaction."""
    begin_write()
    run = db.session.get(Run, run_id)
    conversation = db.session.get(Conversation, run.conversation_id) if run else None
    if conversation is None:
        db.session.rollback()
        return
    conversation.meta = {**(conversation.meta or {}), **values}
    db.session.commit()


def finish(run_id: uuid.UUID, status: str, error: str | None = None) -> None:
    """End the run with ``status`` (complete, error, cancelled, interrupted).

    Every message of the run still pending or streaming takes that status, keeps its text, and
    gets its sanitized HTML rendered and stored; ``error`` (readable text) is kept on the run and
    on the last message. A run that did not complete and stopped between two steps (its last
    message a finished tool call or tool result) gets an empty closing assistant message with
    that status. The conversation's ``updated_at`` moves, for the sidebar's order. The messages
    of a gateway run get their ``path_hash`` (:func:`webchat.gateway.canonical.stamp`).
    """
    begin_write()
    run = db.session.get(Run, run_id)
    if run is None or run.status in Status.FINAL:
        db.session.rollback()
        return
    now = utcnow()
    messages = run_messages(run_id)
    if status != Status.COMPLETE and messages and messages[-1].status not in Status.ACTIVE:
        # Stopped between two steps (after a tool call or a tool result): end the reply with an
        # assistant message that carries how it ended, as the page and the API show it there.
        last = messages[-1]
        closing = Message(
            id=new_id(),
            conversation_id=last.conversation_id,
            parent_id=last.id,
            run_id=run_id,
            role=Role.ASSISTANT,
            content="",
            status=Status.PENDING,
            meta={"model": run.model},
            created_at=next_timestamp(last.created_at),
        )
        closing.updated_at = closing.created_at
        tree.attach(closing, last)
        db.session.add(closing)
        db.session.flush()
        tree.advance(last.conversation_id, last.id, closing.id)
        messages.append(closing)
    for message in messages:
        if message.status in Status.ACTIVE or message.status == Status.AWAITING:
            message.status = status
            message.updated_at = now
        if message.content_html is None and message.role != Role.TOOL:
            message.content_html = render_markdown(message.content or "")
    if error and messages:
        messages[-1].error = error
    if run.options and run.options.get("path_hash"):  # a gateway run: its path can be found
        from ..gateway.canonical import stamp

        stamp(run.options["path_hash"], messages)
    run.status = status
    run.error = error
    run.finished_at = now
    run.heartbeat_at = now
    db.session.execute(
        update(Conversation).where(Conversation.id == run.conversation_id).values(updated_at=now)
    )
    _commit_and_wake(run_id)
    metrics.run_finished(status)


def set_run_status(run_id: uuid.UUID, before: str, after: str) -> bool:
    """Move the run from status ``before`` to ``after`` (a conditional update: False when it was
    not ``before``), touch its heartbeat, commit and wake its readers."""
    begin_write()
    moved = db.session.execute(
        update(_runs)
        .where(_runs.c.id == run_id, _runs.c.status == before)
        .values(status=after, heartbeat_at=utcnow())
        .returning(_runs.c.id)
    ).first()
    _commit_and_wake(run_id)
    return moved is not None


def request_cancel(run_id: uuid.UUID) -> None:
    """Ask the run to stop; the executor sees it within one flush interval and ends it."""
    begin_write()
    db.session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
    _commit_and_wake(run_id)


def stale_runs(older_than: datetime) -> list[uuid.UUID]:
    """Ids of active runs whose heartbeat is older than ``older_than``."""
    return list(
        db.session.scalars(
            select(Run.id).where(Run.status.in_(Status.ACTIVE), Run.heartbeat_at < older_than)
        )
    )


def interrupt(run_id: uuid.UUID, older_than: datetime) -> bool:
    """Mark one stale run ``interrupted`` (cancelled, if a cancel was asked), keeping its text.

    Safe when several processes reap at once: the conditional update lets exactly one win.
    Returns True for the process that won.
    """
    begin_write()
    claimed = db.session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(Status.ACTIVE), Run.heartbeat_at < older_than)
        .values(heartbeat_at=utcnow())
        .returning(Run.cancel_requested)
    ).first()
    db.session.commit()
    if claimed is None:
        return False
    status = Status.CANCELLED if claimed.cancel_requested else Status.INTERRUPTED
    error = None if claimed.cancel_requested else "The reply was interrupted: the server stopped."
    finish(run_id, status, error)
    return True


class DeltaBuffer:
    """Collects text deltas for one message and says when they are due to be written.

    ``interval_ms`` is the longest a delta may wait before it is durable (100 ms by default), so a
    run writes at most ``1000 / interval_ms`` times a second however fast tokens arrive.
    """

    def __init__(self, interval_ms: float) -> None:
        self.interval = interval_ms / 1000
        self.parts: list[str] = []
        self.first_at: float | None = None

    def add(self, text: str) -> None:
        """Buffer ``text``; the clock starts at the first unwritten delta."""
        if not text:
            return
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.parts.append(text)

    def seconds_left(self) -> float | None:
        """Seconds until the buffer is due, 0 if overdue, None when empty."""
        if self.first_at is None:
            return None
        return max(0.0, self.first_at + self.interval - time.monotonic())

    def take(self) -> str:
        """Return and clear the buffered text."""
        text = "".join(self.parts)
        self.parts.clear()
        self.first_at = None
        return text


def run_messages(run_id: uuid.UUID) -> list[Message]:
    """The messages of a run, ordered by ``(created_at, id)``."""
    return list(
        db.session.scalars(
            select(Message).where(Message.run_id == run_id).order_by(Message.created_at, Message.id)
        )
    )
