"""Runs: start, execute, cancel and retry replies, and reap the ones whose worker died.

A run executes in a thread of its own (a greenlet under gunicorn's gevent worker), with its own app
context and database session, so it belongs to no request or SSE connection: closing every tab
does not stop it. The provider is iterated in a second thread that feeds a queue, so the executor
can flush buffered text on time (``FLUSH_INTERVAL_MS``), touch the heartbeat, notice a cancel and
time out a silent provider, whatever the provider does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import select

from .. import providers, tools, tree
from ..extensions import db
from ..files.services import attachments_of, takes_images
from ..mcp import approval
from ..mcp import registry as mcp_registry
from ..models import Conversation, Message, Project, Role, Run, Status, utcnow
from ..ops import metrics
from ..providers.base import (
    ChatMessage,
    Finish,
    ProviderError,
    ReasoningBlock,
    ReasoningDelta,
    SessionState,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from ..usage.services import usage_json
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


_threads_lock = threading.Lock()


def launch(run_id: uuid.UUID, app: Flask | None = None) -> threading.Thread:
    """Execute the committed run ``run_id`` in the background; returns the thread."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    session = db.session() if has_app_context() else None
    if session is not None and not (session.new or session.dirty or session.deleted):
        # Starting a thread yields to the others under gevent: hold no transaction (in a
        # writing request, SQLite's write lock) across it.
        session.rollback()
    thread = threading.Thread(
        target=_execute, args=(app, run_id), name=f"webchat-run-{run_id}", daemon=True
    )
    with _threads_lock:  # the thread takes itself off the list as it ends (see _execute)
        app.extensions.setdefault("webchat.run_threads", []).append(thread)
    _beating(app, run_id, True)  # from now: a thread that starts late is not taken for dead
    thread.start()
    return thread


def cancel(run_id: uuid.UUID) -> None:
    """Ask a run to stop; it ends ``cancelled`` with its partial text kept. A run awaiting a
    person's approval (no executor holds it) ends at once, its call not run."""
    store.request_cancel(run_id)
    if store.set_run_status(run_id, Status.AWAITING, Status.STREAMING):
        store.finish(run_id, Status.CANCELLED)


def history(message_id: uuid.UUID, limit: int = HISTORY_LIMIT) -> list[Message]:
    """The path down to ``message_id`` (itself included), oldest first, at most ``limit``.

    Read along the message tree (:func:`webchat.tree.ancestors`): index ranges over the
    path's segments, bounded by ``limit`` whatever the conversation's length, so a regenerated
    or edited branch sees only its own line.
    """
    message = db.session.get(Message, message_id)
    if message is None:
        return []
    return tree.ancestors(message, limit)


def _tool_call_id(message: Message) -> str | None:
    """The id of the call a tool message answers (``tool_result.tool_call_id``)."""
    result = message.tool_result if isinstance(message.tool_result, dict) else {}
    call = message.tool_call if isinstance(message.tool_call, dict) else {}
    return result.get("tool_call_id") or call.get("id")


def to_chat_messages(conversation: Conversation, messages: list[Message]) -> list[ChatMessage]:
    """The provider's view of a history: system prompt first (the conversation's, then its
    project's instructions), failed empty replies left out.

    Tool calls and results are paired by call id: a call without a stored result (a reply stopped
    between the two) loses its call, and a result without its call is left out, since both APIs
    refuse unpaired ones.
    """
    out: list[ChatMessage] = []
    project = db.session.get(Project, conversation.project_id) if conversation.project_id else None
    instructions = project.instructions if project is not None else None
    system = "\n\n".join(part for part in (conversation.system_prompt, instructions) if part)
    if system:
        out.append(ChatMessage(role=Role.SYSTEM, content=system))
    attached = attachments_of([m for m in messages if m.role == Role.USER])  # issue 14
    answered = {_tool_call_id(m) for m in messages if m.role == Role.TOOL}
    called = {(m.tool_call or {}).get("id") for m in messages if m.role == Role.ASSISTANT}
    for m in messages:
        call = m.tool_call if m.role == Role.ASSISTANT and m.tool_call else None
        if call is not None and call.get("id") not in answered:
            call = None
        if m.role == Role.ASSISTANT and not call and not m.content:
            continue
        if m.role == Role.TOOL and _tool_call_id(m) not in called:
            continue
        out.append(
            ChatMessage(
                role=m.role,
                content=m.content or "",
                tool_call=call,
                tool_call_id=_tool_call_id(m) if m.role == Role.TOOL else None,
                tool_name=m.tool_name,
                is_error=m.role == Role.TOOL and bool((m.tool_result or {}).get("error")),
                reasoning_blocks=tuple((m.meta or {}).get("reasoning_blocks") or ()),
                attachments=attached.get(m.id, ()),
            )
        )
    return out


class _Await(Exception):
    """The run stopped to wait for a person's approval of a tool call (stored already)."""


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
        except _Await:
            pass  # stored as awaiting_approval: a decision launches the run again
        except _Stop as stop:
            store.finish(run_id, stop.status, stop.error)
        except Exception as exc:
            log.exception("run %s failed", run_id)
            db.session.rollback()
            store.finish(run_id, Status.ERROR, f"The reply failed: {exc}")
        finally:
            db.session.remove()
            _beating(app, run_id, False)
            with _threads_lock:
                threads = app.extensions.get("webchat.run_threads", [])
                if threading.current_thread() in threads:
                    threads.remove(threading.current_thread())


_live_lock = threading.Lock()


def _beating(app: Flask, run_id: uuid.UUID, alive: bool) -> None:
    """Add or remove ``run_id`` among the runs this process's heartbeat thread touches, starting
    that thread when it is not running.

    The thread touches every live run's heartbeat in one ``UPDATE`` each
    ``HEARTBEAT_INTERVAL_MS``, whatever its executor is doing: an executor that waits its turn
    for the database in an overloaded worker is slow, not dead, and must not be reaped."""
    with _live_lock:
        live = app.extensions.setdefault("webchat.live_runs", set())
        if not alive:
            live.discard(run_id)
            return
        live.add(run_id)
        if app.extensions.get("webchat.heartbeat_pid") != os.getpid():
            app.extensions["webchat.heartbeat_pid"] = os.getpid()
            threading.Thread(
                target=_heartbeat, args=(app,), name="webchat-heartbeat", daemon=True
            ).start()


def _heartbeat(app: Flask) -> None:
    interval = app.config["HEARTBEAT_INTERVAL_MS"] / 1000
    while True:
        time.sleep(interval)
        with _live_lock:
            live = list(app.extensions["webchat.live_runs"])
            if not live:  # the next run starts a new thread
                app.extensions["webchat.heartbeat_pid"] = None
                return
        try:
            with app.app_context():
                try:
                    store.touch(live)
                finally:
                    db.session.remove()
        except Exception:
            log.exception("heartbeat failed")


def _run(app: Flask, run_id: uuid.UUID) -> None:
    """Execute a started run: stream the provider's reply; while it asks for tools, store each
    call, run it, store its result, and stream the model's next step (see :func:`_tool_round`).
    At most ``TOOL_LOOP_LIMIT`` rounds of tools, then the reply stops with an error.

    A gateway run (``run.options["client_tools"]``) offers the provider the client's tools
    (``options["tools"]``) instead of webchat's and runs none of them: the reply ends complete
    with the calls stored, for the client to run. ``options["params"]`` add to the
    conversation's generation parameters."""
    if not store.start_run(run_id, worker_name()):
        run = db.session.get(Run, run_id)
        if run is not None and run.status == Status.PENDING and run.cancel_requested:
            raise _Stop(Status.CANCELLED)
        return
    run = db.session.get(Run, run_id)
    assert run is not None and run.message_id is not None
    conversation = db.session.get(Conversation, run.conversation_id)
    assert conversation is not None
    earlier = history(run.message_id)[:-1]
    chat = to_chat_messages(conversation, earlier)
    call_ids = taken_call_ids(earlier)
    message_id = run.message_id
    model_id = run.model
    context = tools.ToolContext(app, conversation.user_id, conversation.id)
    session = dict(conversation.meta or {})
    params = dict(session.get("params") or {})  # temperature, max_tokens, reasoning_effort
    options = dict(run.options or {})  # a gateway request's: the client's tools and params
    params.update(options.get("params") or {})
    client_tools = bool(options.get("client_tools"))
    db.session.rollback()  # hold no transaction while the provider works

    try:
        provider, model = providers.resolve(model_id)
    except ProviderError as exc:
        metrics.provider_error("unknown_model")
        raise _Stop(Status.ERROR, str(exc)) from None
    if not takes_images(model_id) and any(
        a.kind == "image" for m in chat for a in m.attachments
    ):  # nothing is sent to a model that can't read the images of its history (issue 14)
        raise _Stop(Status.ERROR, f"The model {model_id} can't read images; pick one that can.")
    if client_tools:  # passed to the model, never run here: the reply ends at the calls
        toolset = mcp_registry.Toolset(list(options.get("tools") or []), {}, set())
    else:
        toolset = mcp_registry.toolset(app, conversation)
        db.session.rollback()
    definitions = toolset.definitions
    extra: dict[str, Any] = {"session": session} if getattr(provider, "uses_session", False) else {}
    if params and getattr(provider, "takes_params", False):
        extra["params"] = params
    decided = approval.waiting_message(run_id)
    if decided is not None:  # a decision continues the run from the stored history
        message_id = _resume(app, run_id, decided, context, model_id, toolset)
        earlier = history(message_id)[:-1]
        chat, call_ids = to_chat_messages(conversation, earlier), taken_call_ids(earlier)
        db.session.rollback()
    limit = app.config["TOOL_LOOP_LIMIT"]
    for round_ in range(limit + 1):
        stream = provider.stream(model, chat, tools=definitions, **extra)
        step = _stream_step(
            app, run_id, message_id, stream, model_id=model_id, eager_first=client_tools
        )
        if not step["tool_calls"]:
            break
        step["tool_calls"] = unique_calls(step["tool_calls"], call_ids)
        last_id = _store_tool_calls(run_id, step["message_id"], step["tool_calls"], model_id)
        if client_tools:
            break
        if round_ == limit:
            raise _Stop(
                Status.ERROR,
                f"The model asked for tools {limit + 1} times in a row; the reply was stopped "
                f"there (the limit is {limit} rounds).",
            )
        message_id = _tool_round(
            app, run_id, last_id, step["tool_calls"], context, model_id, toolset
        )
        chat = to_chat_messages(conversation, history(message_id)[:-1])
        db.session.rollback()
    store.finish(run_id, Status.COMPLETE)


def taken_call_ids(messages: list[Message]) -> set[str]:
    """The tool-call ids of ``messages`` (a run's history: calls and the results that name
    them)."""
    ids = {str((m.tool_call or {}).get("id") or "") for m in messages if m.role == Role.ASSISTANT}
    ids |= {str(_tool_call_id(m) or "") for m in messages if m.role == Role.TOOL}
    return ids - {""}


def unique_calls(calls: list[ToolCall], taken: set[str]) -> list[ToolCall]:
    """``calls`` with ids unique among ``taken`` (the run's history and its earlier steps, see
    :func:`taken_call_ids`): a missing id, or one already taken (servers that number calls
    ``"0"`` on every turn, Kimi's ``functions.add:0``), is replaced by a new ``call_<24 hex>``,
    unique everywhere, and the upstream's id is kept as ``upstream_id``. Adds the ids to
    ``taken``. Results pair with calls by the stored id, which is also what the model is sent
    back. The history, not the whole conversation, is what is checked: it is bounded
    (``HISTORY_LIMIT``) and it is all the model sees, so sending stays the same work in a
    conversation of any length."""
    out = []
    for call in calls:
        if not call.id or call.id in taken:
            call = dataclasses.replace(
                call, id=f"call_{uuid.uuid4().hex[:24]}", upstream_id=call.id or None
            )
        taken.add(call.id)
        out.append(call)
    return out


def _call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as stored in ``Message.tool_call``: ``{"id", "name", "arguments"}``, plus
    ``upstream_id`` when webchat had to replace the upstream's id (see :func:`unique_calls`)."""
    stored = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.upstream_id:
        stored["upstream_id"] = call.upstream_id
    return stored


def _store_tool_calls(
    run_id: uuid.UUID, message_id: uuid.UUID, calls: list[ToolCall], model_id: str | None
) -> uuid.UUID:
    """Put the first call on ``message_id`` (the step's text, if any, stays its content) and each
    further parallel call on an assistant message of its own after it; mark them complete, so
    readers show the calls at once. Returns the id of the last of them."""
    first, *rest = calls
    store.update_message(
        run_id,
        message_id,
        tool_call=_call_json(first),
        tool_name=first.name,
        status=Status.COMPLETE,
    )
    last_id = message_id
    for call in rest:
        last_id = store.add_message(
            run_id,
            last_id,
            Role.ASSISTANT,
            content="",
            tool_call=_call_json(call),
            tool_name=call.name,
            status=Status.COMPLETE,
            meta={"model": model_id} if model_id else {},
        )
    return last_id


def _tool_round(
    app: Flask,
    run_id: uuid.UUID,
    after: uuid.UUID,
    calls: list[ToolCall],
    context: tools.ToolContext,
    model_id: str,
    toolset: mcp_registry.Toolset | None = None,
) -> uuid.UUID:
    """Run each call in turn (``TOOL_TIMEOUT_MS`` each), store each result as a ``tool`` message
    (``tool_result`` = ``{"tool_call_id", "result", "error", "duration_ms"}``, ``content`` = the
    text the model reads), then open the assistant message of the model's next step and return
    its id. Raises :class:`_Stop` when the run was cancelled meanwhile, and :class:`_Await`
    after storing a call whose policy asks for a person's approval (see
    :mod:`webchat.mcp.approval`); the calls after it run when the run continues."""
    for call in calls:
        if store.append(run_id, after, ""):  # a heartbeat, and the cancel check
            raise _Stop(Status.CANCELLED)
        policy = toolset.policy(call) if toolset else "allow"
        if policy == "ask" and toolset is not None:
            tool = toolset.mcp[call.name]
            approval.wait(run_id, after, call, tool.server.name, tool.name)
            raise _Await
        outcome = _outcome(app, call, context, toolset, policy)
        after = store.add_message(
            run_id,
            after,
            Role.TOOL,
            content=outcome.text,
            tool_name=call.name,
            tool_result=outcome.as_json(call.id),
        )
    if store.append(run_id, after, ""):
        raise _Stop(Status.CANCELLED)
    return store.add_message(run_id, after, Role.ASSISTANT, content="", meta={"model": model_id})


def _outcome(
    app: Flask,
    call: ToolCall,
    context: tools.ToolContext,
    toolset: mcp_registry.Toolset | None,
    policy: str,
) -> tools.Outcome:
    """Run an allowed call: an MCP server's tool through :func:`webchat.mcp.registry.call`,
    a built-in one through :func:`webchat.tools.run`; a ``never`` tool is refused."""
    if policy == "never":
        return tools.Outcome(error="this tool is not allowed to run here (its policy is never)")
    tool = toolset.mcp.get(call.name) if toolset else None
    if tool is not None:
        return mcp_registry.call(app, tool, call.arguments)
    return tools.run(call, context, app.config["TOOL_TIMEOUT_MS"])


def _resume(
    app: Flask,
    run_id: uuid.UUID,
    decided: Message,
    context: tools.ToolContext,
    model_id: str,
    toolset: mcp_registry.Toolset,
) -> uuid.UUID:
    """Continue a run after a decision on its waiting call ``decided``: run the call (allowed)
    or store why it did not run (denied, expired), then the round's other unanswered calls, and
    open the next step's message (see :func:`_tool_round`); returns its id."""
    waiting = dict((decided.meta or {}).get("approval") or {})
    arguments = waiting.get("arguments") or {}
    call = ToolCall(waiting.get("call_id") or "", decided.tool_name or "", arguments)
    decision = waiting.get("decision")
    decided_id = decided.id
    db.session.rollback()  # hold no transaction while the tool runs
    if decision in ("allow", "allow_conversation"):
        tool = toolset.mcp.get(call.name)
        outcome = (
            mcp_registry.call(app, tool, call.arguments)
            if tool is not None
            else tools.Outcome(error="the tool is no longer offered to this conversation")
        )
    else:
        outcome = tools.Outcome(error=approval.declined_text(str(decision), app))
    store.update_message(
        run_id,
        decided_id,
        content=outcome.text,
        tool_result=outcome.as_json(call.id),
        status=Status.COMPLETE,
    )
    messages = store.run_messages(run_id)
    answered = {_tool_call_id(m) for m in messages if m.role == Role.TOOL}
    rest = [
        ToolCall(m.tool_call["id"], m.tool_call["name"], m.tool_call.get("arguments") or {})
        for m in messages
        if m.role == Role.ASSISTANT and m.tool_call and m.tool_call.get("id") not in answered
    ]
    db.session.rollback()
    return _tool_round(app, run_id, decided_id, rest, context, model_id, toolset)


def _store_upstream_result(
    run_id: uuid.UUID,
    message_id: uuid.UUID | None,
    after: uuid.UUID,
    calls: list[ToolCall],
    result: ToolResult,
    model_id: str | None,
) -> uuid.UUID:
    """Store a tool result the upstream produced itself (Claude Code): first the calls of the
    open message ``message_id``, completing it, then the ``tool`` message. Empties ``calls``
    and returns the tool message's id."""
    if message_id is not None:
        if calls:
            after = _store_tool_calls(run_id, message_id, calls, model_id)
        else:
            store.update_message(run_id, message_id, status=Status.COMPLETE)
            after = message_id
    name = result.name or next((c.name for c in calls if c.id == result.tool_call_id), None)
    calls.clear()
    return store.add_message(
        run_id,
        after,
        Role.TOOL,
        content=result.content,
        tool_name=name,
        tool_result={
            "tool_call_id": result.tool_call_id,
            "result": None if result.is_error else result.content,
            "error": result.content if result.is_error else None,
        },
    )


def _stream_step(
    app: Flask,
    run_id: uuid.UUID,
    message_id: uuid.UUID,
    stream: Any,
    *,
    model_id: str | None = None,
    eager_first: bool = False,
) -> dict:
    """Consume one provider response into ``message_id``; returns what it said besides text
    (``{"tool_calls": [...], "usage": ..., "finish_reason": ..., "message_id": ...}``, the last
    being the assistant message the response ended in). Raises :class:`_Stop`.

    With ``eager_first`` (gateway runs, whose client waits for its first token) the first text
    or thinking is written as soon as it arrives, not ``FLUSH_INTERVAL_MS`` later; the rest is
    batched as always.

    Tool calls are collected for the caller to run, except those the upstream ran itself: at
    each :class:`ToolResult` the open message is completed with its calls, the result is stored,
    and text that follows goes to a new assistant message (meta ``{"model": model_id}``).
    """
    cfg = app.config
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=_produce, args=(stream, events, stop), daemon=True).start()
    buffer = store.DeltaBuffer(cfg["FLUSH_INTERVAL_MS"])
    thinking = store.DeltaBuffer(cfg["FLUSH_INTERVAL_MS"])  # reasoning, stored apart
    blocks: list[dict[str, Any]] = []  # signed thinking blocks, kept in the message's meta
    heartbeat_s = cfg["HEARTBEAT_INTERVAL_MS"] / 1000
    timeout_s = cfg["PROVIDER_TIMEOUT_MS"] / 1000
    last_event = last_write = time.monotonic()
    finish_reason: str | None = None
    usage: dict[str, Any] = {}
    inferred = False
    tool_calls: list[ToolCall] = []
    is_open = True  # False after an upstream tool result: message_id is that tool message

    def flush() -> None:
        nonlocal last_write
        oldest = buffer.first_at
        store.append_reasoning(run_id, message_id, thinking.take())
        if store.append(run_id, message_id, buffer.take()):
            stop.set()
            raise _Stop(Status.CANCELLED)
        last_write = time.monotonic()
        if oldest is not None:
            metrics.persisted(last_write - oldest)

    def keep() -> None:
        """Store what is buffered before the step fails (no cancel check: it ends anyway)."""
        store.append_reasoning(run_id, message_id, thinking.take())
        if buffer.parts:
            store.append(run_id, message_id, buffer.take())

    try:
        while True:
            now = time.monotonic()
            waits = [heartbeat_s - (now - last_write), timeout_s - (now - last_event)]
            due = _due(buffer, thinking)
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
            if isinstance(item, (TextDelta, ReasoningDelta, ToolCall)) and not is_open:
                message_id = store.add_message(
                    run_id, message_id, Role.ASSISTANT, content="", meta={"model": model_id}
                )
                is_open = True
            if isinstance(item, TextDelta):
                buffer.add(item.text)
            elif isinstance(item, ReasoningDelta):
                thinking.add(item.text)
            elif isinstance(item, ReasoningBlock):
                blocks.append(item.block)
            elif isinstance(item, ToolCall):
                tool_calls.append(item)
            elif isinstance(item, Usage):
                usage = usage_json(item, model_id)
            elif isinstance(item, Finish):
                finish_reason = item.reason
                inferred = item.inferred
            elif isinstance(item, ToolResult):
                flush()
                message_id = _store_upstream_result(
                    run_id, message_id if is_open else None, message_id, tool_calls, item, model_id
                )
                is_open = False
            elif isinstance(item, SessionState):
                store.update_conversation_meta(run_id, item.values)
            elif isinstance(item, BaseException):
                metrics.provider_error(type(item).__name__)
                keep()
                raise _Stop(Status.ERROR, _readable(item))
            now = time.monotonic()
            due = _due(buffer, thinking)
            if eager_first and due is not None:
                due, eager_first = 0, False
            if (due is not None and due <= 0) or now - last_write >= heartbeat_s:
                flush()
            if now - last_event >= timeout_s:
                metrics.provider_error("timeout")
                keep()
                raise _Stop(
                    Status.ERROR,
                    f"The provider sent nothing for {timeout_s:g} s and was given up on.",
                )
        flush()
    finally:
        stop.set()
        if not is_open:  # the reply ends, or fails, after a tool result: it ends in a message
            message_id = store.add_message(
                run_id, message_id, Role.ASSISTANT, content="", meta={"model": model_id}
            )
    meta: dict[str, Any] = {"finish_reason": finish_reason}
    if inferred:  # the upstream named no reason; it was judged from what arrived
        meta["finish_inferred"] = True
    if blocks:
        meta["reasoning_blocks"] = blocks
    meta["usage"] = usage or usage_json(Usage(), model_id)  # all null: the server said nothing
    store.update_message(run_id, message_id, meta=meta)
    if usage:
        store.add_usage(run_id, usage)
    if finish_reason is None:
        metrics.provider_error("incomplete")
        raise _Stop(Status.ERROR, "The provider ended the stream without finishing the reply.")
    return {
        "tool_calls": tool_calls,
        "usage": usage,
        "finish_reason": finish_reason,
        "message_id": message_id,
    }


def _due(*buffers: store.DeltaBuffer) -> float | None:
    """Seconds until the first of ``buffers`` is due to be written; None when all are empty."""
    return min((s for s in (b.seconds_left() for b in buffers) if s is not None), default=None)


def _readable(exc: BaseException) -> str:
    """The error text a person sees for a provider's exception. A :class:`ProviderError` is
    written for people; anything else may hold URLs or keys, so only its type is named."""
    if isinstance(exc, ProviderError) and str(exc):
        return str(exc)
    return f"The provider failed unexpectedly ({type(exc).__name__})."


def reap(app: Flask | None = None) -> int:
    """Interrupt every run whose heartbeat is older than ``STALE_RUN_AFTER_MS``; returns how many
    this process interrupted. Safe to call from many processes at once.

    The runs this process executes itself are left alone, stale or not: they are alive (an
    overloaded worker may touch heartbeats late, and it knows its own runs better)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        try:
            cutoff = utcnow() - timedelta(milliseconds=app.config["STALE_RUN_AFTER_MS"])
            with _live_lock:
                own = set(app.extensions.get("webchat.live_runs", ()))
            stale = [run_id for run_id in store.stale_runs(cutoff) if run_id not in own]
            count = sum(store.interrupt(run_id, cutoff) for run_id in stale)
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
                approval.expire(app)
            except Exception:
                log.exception("reaper pass failed")
            time.sleep(app.config["REAPER_INTERVAL_MS"] / 1000)

    threading.Thread(target=loop, name="webchat-reaper", daemon=True).start()
