"""Runs: start, execute, cancel and retry replies, and reap the ones whose worker died.

A run executes in a thread of its own (a greenlet under gunicorn's gevent worker), with its own app
context and database session, so it belongs to no request or SSE connection: closing every tab
does not stop it. The provider is iterated in a second thread that feeds a queue, so the executor
can flush buffered text on time (``FLUSH_INTERVAL_MS``), touch the heartbeat, notice a cancel and
time out a silent provider, whatever the provider does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import literal, select
from sqlalchemy.orm import aliased

from .. import providers
from ..extensions import db
from ..models import Conversation, Message, Role, Run, Status, utcnow
from ..providers.base import ChatMessage, Finish, ProviderError, TextDelta, ToolCall, Usage
from . import store

log = logging.getLogger(__name__)

HISTORY_LIMIT = 200  # messages of context sent to a provider, newest kept
_END = object()


def worker_name() -> str:
    """``host:pid`` of this process, stored on the runs it executes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def start(conversation: Conversation, user_message: Message, model: str | None = None) -> Run:
    """Create the pending reply and run for ``user_message`` (flush only; commit, then
    :func:`launch`)."""
    return store.create_reply(conversation, user_message, model or conversation.model)


def launch(run_id: uuid.UUID, app: Flask | None = None) -> threading.Thread:
    """Execute the committed run ``run_id`` in the background; returns the thread."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=_execute, args=(app, run_id), name=f"webchat-run-{run_id}", daemon=True
    )
    thread.start()
    threads = app.extensions.setdefault("webchat.run_threads", [])
    threads[:] = [t for t in threads if t.is_alive()] + [thread]
    return thread


def cancel(run_id: uuid.UUID) -> None:
    """Ask a run to stop; it ends ``cancelled`` with its partial text kept."""
    store.request_cancel(run_id)


def retry(message: Message) -> Run:
    """Start a new run answering the same user message as the failed reply ``message``.

    Raises ``ValueError`` when ``message`` is not a finished assistant reply with a parent.
    Flush only; commit, then :func:`launch`.
    """
    run = db.session.get(Run, message.run_id) if message.run_id else None
    if message.role != Role.ASSISTANT or message.is_active or run is None:
        raise ValueError("only a finished assistant reply can be retried")
    user_message = db.session.get(Message, run.user_message_id) if run.user_message_id else None
    if user_message is None:
        raise ValueError("the message this reply answered no longer exists")
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return store.create_reply(conversation, user_message, run.model)


def history(message_id: uuid.UUID, limit: int = HISTORY_LIMIT) -> list[Message]:
    """The ancestors of ``message_id`` (itself included), oldest first, at most ``limit``.

    Follows ``parent_id`` with a recursive CTE, so the cost is bounded by ``limit`` whatever the
    conversation's length, and a retried or edited branch sees only its own line.
    """
    anchor = select(Message.id, Message.parent_id, literal(1).label("depth")).where(
        Message.id == message_id
    )
    chain = anchor.cte("chain", recursive=True)
    parent = aliased(Message)
    chain = chain.union_all(
        select(parent.id, parent.parent_id, (chain.c.depth + 1).label("depth"))
        .join(chain, parent.id == chain.c.parent_id)
        .where(chain.c.depth < limit)
    )
    rows = db.session.scalars(
        select(Message).join(chain, Message.id == chain.c.id).order_by(chain.c.depth.desc())
    ).all()
    return list(rows)


def to_chat_messages(conversation: Conversation, messages: list[Message]) -> list[ChatMessage]:
    """The provider's view of a history: system prompt first, failed empty replies left out."""
    out: list[ChatMessage] = []
    if conversation.system_prompt:
        out.append(ChatMessage(role=Role.SYSTEM, content=conversation.system_prompt))
    for m in messages:
        if m.role == Role.ASSISTANT and m.status != Status.COMPLETE and not m.content:
            continue
        out.append(
            ChatMessage(
                role=m.role,
                content=m.content or "",
                tool_call=m.tool_call if m.role == Role.ASSISTANT else None,
                tool_call_id=(m.tool_call or {}).get("id") if m.role == Role.TOOL else None,
                tool_name=m.tool_name,
            )
        )
    return out


class _Stop(Exception):
    def __init__(self, status: str, error: str | None = None) -> None:
        super().__init__(error or status)
        self.status = status
        self.error = error


def _produce(stream: Any, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for event in stream:
            if stop.is_set():
                break
            out.put(event)
    except BaseException as exc:  # handed to the executor, which fails the run with it
        out.put(exc)
    finally:
        out.put(_END)
        close = getattr(stream, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _execute(app: Flask, run_id: uuid.UUID) -> None:
    with app.app_context():
        try:
            _run(app, run_id)
        except _Stop as stop:
            store.finish(run_id, stop.status, stop.error)
        except Exception as exc:
            log.exception("run %s failed", run_id)
            db.session.rollback()
            store.finish(run_id, Status.ERROR, f"The reply failed: {exc}")
        finally:
            db.session.remove()


def _run(app: Flask, run_id: uuid.UUID) -> None:
    if not store.start_run(run_id, worker_name()):
        run = db.session.get(Run, run_id)
        if run is not None and run.status == Status.PENDING and run.cancel_requested:
            raise _Stop(Status.CANCELLED)
        return
    run = db.session.get(Run, run_id)
    assert run is not None and run.message_id is not None
    conversation = db.session.get(Conversation, run.conversation_id)
    assert conversation is not None
    chat = to_chat_messages(conversation, history(run.message_id)[:-1])
    message_id = run.message_id
    model_id = run.model
    db.session.rollback()  # hold no transaction while the provider works

    try:
        provider, model = providers.resolve(model_id)
    except ProviderError as exc:
        raise _Stop(Status.ERROR, str(exc)) from None
    _stream_step(app, run_id, message_id, provider.stream(model, chat))
    store.finish(run_id, Status.COMPLETE)


def _stream_step(app: Flask, run_id: uuid.UUID, message_id: uuid.UUID, stream: Any) -> dict:
    """Consume one provider response into ``message_id``; returns what it said besides text
    (``{"tool_calls": [...], "usage": ..., "finish_reason": ...}``). Raises :class:`_Stop`."""
    cfg = app.config
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=_produce, args=(stream, events, stop), daemon=True).start()
    buffer = store.DeltaBuffer(cfg["FLUSH_INTERVAL_MS"])
    heartbeat_s = cfg["HEARTBEAT_INTERVAL_MS"] / 1000
    timeout_s = cfg["PROVIDER_TIMEOUT_MS"] / 1000
    last_event = last_write = time.monotonic()
    finish_reason: str | None = None
    usage: dict[str, Any] = {}
    tool_calls: list[ToolCall] = []

    def flush() -> None:
        nonlocal last_write
        if store.append(run_id, message_id, buffer.take()):
            stop.set()
            raise _Stop(Status.CANCELLED)
        last_write = time.monotonic()

    try:
        while True:
            now = time.monotonic()
            waits = [heartbeat_s - (now - last_write), timeout_s - (now - last_event)]
            due = buffer.seconds_left()
            if due is not None:
                waits.append(due)
            try:
                item = events.get(timeout=max(0.0, min(waits)))
            except queue.Empty:
                item = None
            if item is _END:
                break
            if item is not None:
                last_event = time.monotonic()
            if isinstance(item, TextDelta):
                buffer.add(item.text)
            elif isinstance(item, ToolCall):
                tool_calls.append(item)
            elif isinstance(item, Usage):
                usage = {"input_tokens": item.input_tokens, "output_tokens": item.output_tokens}
            elif isinstance(item, Finish):
                finish_reason = item.reason
            elif isinstance(item, BaseException):
                if buffer.parts:
                    store.append(run_id, message_id, buffer.take())
                raise _Stop(Status.ERROR, _readable(item))
            now = time.monotonic()
            due = buffer.seconds_left()
            if (due is not None and due <= 0) or now - last_write >= heartbeat_s:
                flush()
            if now - last_event >= timeout_s:
                if buffer.parts:
                    store.append(run_id, message_id, buffer.take())
                raise _Stop(
                    Status.ERROR,
                    f"The provider sent nothing for {timeout_s:g} s and was given up on.",
                )
        flush()
    finally:
        stop.set()
    meta: dict[str, Any] = {"finish_reason": finish_reason}
    if usage:
        meta["usage"] = usage
    store.update_message(run_id, message_id, meta=meta)
    if finish_reason is None:
        raise _Stop(Status.ERROR, "The provider ended the stream without finishing the reply.")
    return {"tool_calls": tool_calls, "usage": usage, "finish_reason": finish_reason}


def _readable(exc: BaseException) -> str:
    """The error text a person sees for a provider's exception. A :class:`ProviderError` is
    written for people; anything else may hold URLs or keys, so only its type is named."""
    if isinstance(exc, ProviderError) and str(exc):
        return str(exc)
    return f"The provider failed unexpectedly ({type(exc).__name__})."


def reap(app: Flask | None = None) -> int:
    """Interrupt every run whose heartbeat is older than ``STALE_RUN_AFTER_MS``; returns how many
    this process interrupted. Safe to call from many processes at once."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        try:
            cutoff = utcnow() - timedelta(milliseconds=app.config["STALE_RUN_AFTER_MS"])
            count = sum(store.interrupt(run_id, cutoff) for run_id in store.stale_runs(cutoff))
            db.session.commit()
            return count
        finally:
            db.session.remove()


def interrupt_own_runs(app: Flask) -> int:
    """Interrupt the active runs this process executes (cancelled, if a cancel was asked),
    keeping their stored text; returns how many. For a worker that is shutting down (gunicorn's
    ``worker_exit`` hook), so its replies show Retry at once rather than after the reaper's
    ``STALE_RUN_AFTER_MS``."""
    with app.app_context():
        try:
            ids = db.session.scalars(
                select(Run.id).where(Run.worker == worker_name(), Run.status.in_(Status.ACTIVE))
            ).all()
            db.session.rollback()
            any_age = utcnow() + timedelta(days=1)
            return sum(store.interrupt(run_id, any_age) for run_id in ids)
        finally:
            db.session.remove()


_reaper_lock = threading.Lock()


def start_reaper(app: Flask) -> None:
    """Reap once now and then every ``REAPER_INTERVAL_MS`` in a daemon thread of this process.

    Idempotent per process: gunicorn's ``post_worker_init`` hook starts it as a worker boots, and
    the app's first request starts it where no such hook runs (``flask run``); a forked child
    starts its own."""
    with _reaper_lock:
        if app.extensions.get("webchat.reaper_pid") == os.getpid():
            return
        app.extensions["webchat.reaper_pid"] = os.getpid()


    def loop() -> None:
        while True:
            try:
                reap(app)
            except Exception:
                log.exception("reaper pass failed")
            time.sleep(app.config["REAPER_INTERVAL_MS"] / 1000)

    threading.Thread(target=loop, name="webchat-reaper", daemon=True).start()
