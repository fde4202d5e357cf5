"""Durable approval of tool calls: a run that needs a person's "Allow" stops in a stored state.

While waiting, the run's status is ``awaiting_approval`` and its last message is a ``tool``
message of that status whose ``metadata.approval`` is ``{"call_id", "tool", "server",
"arguments", "requested_at"}`` (tool is the server's own name, ``tool_name`` the namespaced one).
No thread, provider connection or memory holds the wait. A decision (:func:`decide`: ``allow``,
``allow_conversation`` or ``deny``; the reaper's ``expired``) writes ``metadata.approval.decision``,
sets the message and the run ``pending`` and launches the run, which continues from the stored
history (:func:`webchat.streaming.runs._run`): the same on any worker, after a reload or a
restart.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, update

from ..db import begin_write
from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, Message, Role, Run, Status, utcnow
from ..providers.base import ToolCall

DECISIONS = ("allow", "allow_conversation", "deny")
DECLINED = "The person declined this tool call; it did not run."
EXPIRED = "Nobody approved this tool call in time ({seconds} s); it did not run."


def wait(run_id: uuid.UUID, after: uuid.UUID, call: ToolCall, server: str, tool: str) -> None:
    """Store ``call`` as waiting for approval after message ``after`` and stop the run in the
    ``awaiting_approval`` state (one transaction; the run's readers are woken)."""
    from ..streaming import store

    store.add_message(
        run_id,
        after,
        Role.TOOL,
        content="",
        tool_name=call.name,
        status=Status.AWAITING,
        meta={
            "approval": {
                "call_id": call.id,
                "tool": tool,
                "server": server,
                "arguments": call.arguments,
                "requested_at": utcnow().isoformat(),
            }
        },
    )
    store.set_run_status(run_id, Status.STREAMING, Status.AWAITING)


def waiting_message(run_id: uuid.UUID) -> Message | None:
    """The run's tool message whose decision is taken and not yet acted on (status pending)."""
    return db.session.scalars(
        select(Message).where(
            Message.run_id == run_id, Message.role == Role.TOOL, Message.status == Status.PENDING
        )
    ).first()


def decide(message: Message, decision: str) -> Run:
    """Record ``decision`` on ``message`` (a tool call awaiting approval) and continue its run.

    ``allow`` runs the call, ``allow_conversation`` also allows that tool without asking for the
    rest of the conversation, ``deny`` stores a result saying the person declined; the model
    then goes on. Raises :class:`webchat.errors.InvalidInput`: 400 for another decision, 409
    when the message is not waiting (decided already, from another tab say). Commits, then
    launches the run.
    """
    if decision not in DECISIONS:
        raise InvalidInput(f"The decision is one of {', '.join(DECISIONS)}.")
    run = _take(message, decision)
    if decision == "allow_conversation":
        begin_write()
        conversation = db.session.get(Conversation, message.conversation_id)
        assert conversation is not None
        meta = dict(conversation.meta or {})
        allowed = [n for n in meta.get("allowed_tools") or [] if n != message.tool_name]
        meta["allowed_tools"] = [*allowed, message.tool_name]
        conversation.meta = meta
        db.session.commit()
    _continue(run.id)
    return run


def _take(message: Message, decision: str) -> Run:
    """Move the waiting message and its run to ``pending`` with ``decision``, if still waiting:
    one conditional update, so two tabs deciding at once cannot both win."""
    if message.role != Role.TOOL or message.run_id is None:
        raise InvalidInput("This message is not a tool call awaiting approval.", status=409)
    begin_write()
    now = utcnow()
    taken = db.session.execute(
        update(Run)
        .where(Run.id == message.run_id, Run.status == Status.AWAITING)
        .values(status=Status.PENDING, heartbeat_at=now, worker=None)
        .returning(Run.id)
    ).first()
    fresh = db.session.get(Message, message.id, populate_existing=True)
    if taken is None or fresh is None or fresh.status != Status.AWAITING:
        db.session.rollback()
        raise InvalidInput("This tool call is not awaiting approval any more.", status=409)
    approval: dict[str, Any] = dict((fresh.meta or {}).get("approval") or {})
    approval.update(decision=decision, decided_at=now.isoformat())
    fresh.meta = {**(fresh.meta or {}), "approval": approval}
    fresh.status = Status.PENDING
    fresh.updated_at = now
    db.session.commit()
    run = db.session.get(Run, message.run_id)
    assert run is not None
    return run


def _continue(run_id: uuid.UUID) -> None:
    from ..streaming import runs
    from ..streaming.notify import notifier

    notifier().publish(str(run_id))
    runs.launch(run_id)


def expire(app: Flask | None = None) -> int:
    """Decline, as ``expired``, every call waiting longer than ``MCP_APPROVAL_EXPIRES_S``
    seconds, and continue those runs; returns how many this process expired. Safe from many
    processes at once (see :func:`_take`). Called by the reaper."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    seconds = app.config["MCP_APPROVAL_EXPIRES_S"]
    if not seconds:
        return 0
    cutoff = utcnow() - timedelta(seconds=seconds)
    count = 0
    with app.app_context():
        try:
            old = db.session.scalars(
                select(Message)
                .join(Run, Run.id == Message.run_id)
                .where(
                    Run.status == Status.AWAITING,
                    Message.status == Status.AWAITING,
                    Message.updated_at < cutoff,  # stored when it began to wait
                )
            ).all()
            db.session.rollback()
            for message in old:
                try:
                    run = _take(message, "expired")
                except InvalidInput:
                    continue
                _continue(run.id)
                count += 1
        finally:
            db.session.remove()
    return count


def declined_text(decision: str, app: Flask) -> str:
    """What the model reads for a call that did not run: declined, or expired."""
    if decision == "expired":
        return EXPIRED.format(seconds=app.config["MCP_APPROVAL_EXPIRES_S"])
    return DECLINED
