"""What a gateway request does, whatever its wire format: find or create the conversation,
store the new turns, start the run; wait for it; read its outcome.

A request in either format arrives here as an :class:`Exchange` (canonical turns,
:mod:`.canonical`). :func:`open_exchange` then

1. replays: a run started by the same ``Idempotency-Key`` of the same user is returned as it is;
2. finds the conversation the request continues: among the request's prefixes that end with a
   reply (an assistant turn followed by a user or tool turn), the longest whose path hash is
   stored (``ix_messages_path_hash``: one index lookup of at most ``MAX_CANDIDATES`` hashes);
   the turns after it are appended under that message, which makes a branch when the stored
   conversation went on differently there (an edited turn). No match: a new conversation
   (``metadata.source = "gateway"``, ``source_name`` = the token's name). A conversation pinned
   by ``X-Webchat-Conversation`` is searched alone; with no match there, the request's turns
   continue its active leaf;
3. stores the new turns with their path hashes, and a pending reply and its run whose options
   carry the client's tools (passed to the model, not executed) and parameters. The store gives
   the reply's messages their hashes when the run ends (:func:`webchat.streaming.store.finish`).

Functions flush; the view commits and launches the run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select

from .. import providers
from ..conversations import services as conversations
from ..extensions import db
from ..models import ApiToken, Conversation, Message, Role, Run, Status
from ..providers.base import ProviderError
from ..rendering import render_markdown
from ..streaming import store
from . import canonical
from .canonical import Turn

MAX_CANDIDATES = 100  # prefixes looked up per request: the newest replies of its history
SOURCE = "gateway"


class GatewayError(Exception):
    """A request refused: HTTP ``status`` (400, 401, 404, 409, 413) and readable ``message``;
    each wire format writes it in its API's own error shape. ``param`` names the field."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass
class Exchange:
    """A request in canonical form: ``api`` (``"openai"`` or ``"anthropic"``), the model id
    (``provider/model``), the system prompt, the turns, the client's tools as webchat tool
    definitions (``{"name", "description", "parameters"}``: JSON Schema), generation
    ``params`` (``temperature``, ``max_tokens``, ``reasoning_effort``) and ``stream``."""

    api: str
    model: str
    system: str | None
    turns: list[Turn]
    tools: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


def check_model(model_id: str) -> str:
    """``model_id`` when a configured provider offers it. Raises :class:`GatewayError` 404."""
    try:
        provider, model = providers.resolve(model_id)
        offered = model in provider.models()
    except ProviderError:
        offered = False
    if not offered:
        raise GatewayError(404, f"The model {model_id!r} does not exist here.", "model")
    return model_id


def find_replay(user_id: int, idempotency_key: str | None) -> Run | None:
    """The run a request with this ``Idempotency-Key`` started before, or None."""
    if not idempotency_key:
        return None
    return db.session.scalars(
        select(Run).where(Run.request_key == request_key(user_id, idempotency_key))
    ).first()


def request_key(user_id: int, idempotency_key: str) -> str:
    """``runs.request_key`` of a user's ``Idempotency-Key`` (at most 255 characters of it)."""
    return f"{user_id}:{idempotency_key[:255]}"


@dataclass
class Opened:
    """What :func:`open_exchange` did: the run, whether it is a replay (started before, by the
    same ``Idempotency-Key``), and the first prompt of a conversation it created (for its
    title), else None."""

    run: Run
    replay: bool = False
    first_prompt: str | None = None


def open_exchange(
    token: ApiToken,
    exchange: Exchange,
    conversation_id: str | None = None,
    idempotency_key: str | None = None,
) -> Opened:
    """Store the request's new turns and start its reply (see the module). Flush only: commit
    (a duplicate ``Idempotency-Key`` racing this one fails the commit with ``IntegrityError``),
    then launch the run unless it is a replay.

    Raises :class:`GatewayError`: 400 (the last turn is no user message or tool result, a tool
    result answers no call of the request), 404 (an unknown model; a pinned conversation that is
    not the user's), 409 (a reply of that conversation is still running), 413 (a message over
    ``MAX_MESSAGE_CHARS``).
    """
    user = token.user
    replay = find_replay(user.id, idempotency_key)
    if replay is not None:
        return Opened(replay, replay=True)
    check_model(exchange.model)
    turns = exchange.turns
    _validate(turns)
    pinned = None
    if conversation_id:
        try:
            pinned = conversations.owned_conversation(user, conversation_id)
        except conversations.NotFound:
            raise GatewayError(
                404, f"No conversation {conversation_id}.", "X-Webchat-Conversation"
            ) from None
    digests = canonical.chain(canonical.root_hash(user.id, exchange.system), turns)
    matched, at = _continued(user.id, turns, digests, pinned)
    first_prompt = None
    if matched is not None:
        conversation = db.session.get(Conversation, matched.conversation_id)
        assert conversation is not None
        parent: Message | None = matched
    elif pinned is not None:
        conversation, parent, at = pinned, _active_leaf(pinned), -1
    else:
        first = next((t.content for t in turns if t.role == Role.USER and t.content), "")
        conversation = conversations.create_conversation(
            user,
            title=conversations.title_from(first) if first.strip() else "Gateway chat",
            model=exchange.model,
            system_prompt=exchange.system,
            meta={"source": SOURCE, "source_name": token.name, "api": exchange.api},
        )
        parent, at, first_prompt = None, -1, first
    if first_prompt is None and conversations.has_active_reply(conversation):  # not a new one
        raise GatewayError(409, "A reply is still running in this conversation; wait for it.")
    conversation.model = exchange.model
    names = {t.tool_call["id"]: t.tool_call["name"] for t in turns if t.tool_call}
    for index in range(at + 1, len(turns)):
        parent = _store_turn(conversation, parent, turns[index], digests[index], names)
    assert parent is not None
    options = {
        "client_tools": True,
        "tools": exchange.tools,
        "params": exchange.params,
        "path_hash": digests[-1],
    }
    key = request_key(user.id, idempotency_key) if idempotency_key else None
    run = store.create_reply(conversation, parent, exchange.model, options=options, request_key=key)
    return Opened(run, first_prompt=first_prompt)


def _validate(turns: list[Turn]) -> None:
    if not turns:
        raise GatewayError(400, "messages must hold at least one message.", "messages")
    if turns[-1].role not in (Role.USER, Role.TOOL):
        raise GatewayError(400, "The last message must be the user's or a tool result.", "messages")
    limit = current_app.config["MAX_MESSAGE_CHARS"]
    called: set[str] = set()
    for turn in turns:
        if len(turn.content) > limit:
            raise GatewayError(
                413,
                f"A message is {len(turn.content):,} characters long; the limit is {limit:,}.",
                "messages",
            )
        if turn.tool_call:
            called.add(turn.tool_call["id"])
        if turn.role == Role.TOOL and turn.tool_call_id not in called:
            raise GatewayError(
                400,
                f"The tool result for {turn.tool_call_id!r} answers no tool call before it.",
                "messages",
            )


def _continued(
    user_id: int, turns: list[Turn], digests: list[str], pinned: Conversation | None
) -> tuple[Message | None, int]:
    """The stored message the request continues and the index of its turn, or ``(None, -1)``:
    the longest prefix ending with a reply (an assistant turn, the next one not) whose hash is
    stored in a conversation of the user (in ``pinned`` alone, when given), newest first."""
    ends = [
        i
        for i in range(len(turns) - 1)
        if turns[i].role == Role.ASSISTANT and turns[i + 1].role != Role.ASSISTANT
    ][-MAX_CANDIDATES:]
    if not ends:
        return None, -1
    index_of = {digests[i]: i for i in ends}
    query = (
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.path_hash.in_(list(index_of)),
            Conversation.user_id == user_id,
            Conversation.deleted_at.is_(None),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
    )
    if pinned is not None:
        query = query.where(Message.conversation_id == pinned.id)
    found = list(db.session.scalars(query))
    if not found:
        return None, -1
    best = max(found, key=lambda m: index_of[m.path_hash or ""])  # max keeps the newest of ties
    return best, index_of[best.path_hash or ""]


def _active_leaf(conversation: Conversation) -> Message | None:
    leaf_id = conversation.active_message_id
    return db.session.get(Message, leaf_id) if leaf_id else None


def _store_turn(
    conversation: Conversation,
    parent: Message | None,
    turn: Turn,
    digest: str,
    names: dict[str, str],
) -> Message:
    """Store one turn of the request as a finished message under ``parent``."""
    fields: dict[str, Any] = {"path_hash": digest}
    if turn.role == Role.TOOL:
        fields["tool_name"] = names.get(turn.tool_call_id or "")
        fields["tool_result"] = {
            "tool_call_id": turn.tool_call_id,
            "result": None if turn.is_error else turn.content,
            "error": turn.content if turn.is_error else None,
        }
    elif turn.role == Role.ASSISTANT:  # a reply the client sends as history (few-shot, its own)
        fields["meta"] = {"source": "client"}
        fields["content_html"] = render_markdown(turn.content)
        if turn.tool_call:
            fields["tool_call"] = turn.tool_call
            fields["tool_name"] = turn.tool_call["name"]
    return conversations.new_message(conversation, parent, turn.role, turn.content, **fields)


def wait(app: Flask, run_id: uuid.UUID) -> None:
    """Return once run ``run_id`` has ended (any final status). Woken by the run's
    notifications, and reading its status at least every ``STREAM_POLL_MS``; holds no
    connection while it waits."""
    poll_s = app.config["STREAM_POLL_MS"] / 1000
    status_of = select(Run.status).where(Run.id == run_id)
    with app.extensions["webchat.notifier"].subscribe(str(run_id)) as sub:
        while True:
            seen = sub.version
            with app.app_context(), db.engine.connect() as connection:
                status = connection.execute(status_of).scalar()
            if status is None or status in Status.FINAL:
                return
            sub.wait(seen, poll_s)


FINISH_REASONS = {  # an upstream's reason, in OpenAI's words
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


@dataclass
class Outcome:
    """A run's reply as the wire formats answer it: its status and error, text, thinking (and
    signed thinking blocks), tool calls (``{"id", "name", "arguments"}``), the finish reason in
    OpenAI's words (stop, length, tool_calls, content_filter) and usage in tokens."""

    run: Run
    text: str
    reasoning: str
    reasoning_blocks: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    finish_reason: str
    input_tokens: int
    output_tokens: int


def outcome(run_id: uuid.UUID) -> Outcome:
    """The stored reply of run ``run_id`` (see :class:`Outcome`)."""
    run = db.session.get(Run, run_id, populate_existing=True)
    assert run is not None
    replies = [m for m in store.run_messages(run_id) if m.role == Role.ASSISTANT]
    calls = [
        {k: m.tool_call.get(k) for k in ("id", "name", "arguments")} for m in replies if m.tool_call
    ]
    reasons = [(m.meta or {}).get("finish_reason") for m in replies]
    reason = next((r for r in reversed(reasons) if r), None)
    usages = [(m.meta or {}).get("usage") or {} for m in replies]
    return Outcome(
        run=run,
        text="".join(m.content or "" for m in replies),
        reasoning="".join(m.reasoning or "" for m in replies),
        reasoning_blocks=[b for m in replies for b in (m.meta or {}).get("reasoning_blocks", [])],
        tool_calls=calls,
        finish_reason="tool_calls" if calls else FINISH_REASONS.get(reason or "", "stop"),
        input_tokens=sum(u.get("input_tokens") or 0 for u in usages),
        output_tokens=sum(u.get("output_tokens") or 0 for u in usages),
    )


def created_s(run: Run) -> int:
    """The run's creation time in whole seconds since the epoch (the ``created`` of OpenAI)."""
    return int(run.created_at.timestamp()) if run.created_at else int(time.time())
