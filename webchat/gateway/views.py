"""The gateway's routes under ``/v1``: ``POST /v1/chat/completions`` (OpenAI),
``POST /v1/messages`` (Anthropic), ``GET /v1/models`` (both).

Authenticated by a webchat API token only (``Authorization: Bearer <token>``, or Anthropic's
``x-api-key: <token>``): no session cookie, so no CSRF. A request names its conversation
``X-Webchat-Conversation`` (optional) and its ``Idempotency-Key`` (optional); every answer names
its conversation in ``X-Webchat-Conversation``. A streamed answer follows the stored run
(:func:`webchat.streaming.sse.follow`), so what the client receives is what is stored; a client
that goes away mid-stream stops the run (it ends ``cancelled``, its text kept).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from .. import providers
from ..api import tokens
from ..conversations import titles
from ..extensions import db
from ..models import Conversation, Status
from ..streaming import runs, sse
from . import anthropic_wire, bp, openai_wire, services
from .services import Exchange, GatewayError

CONVERSATION_HEADER = "X-Webchat-Conversation"
Refuse = Callable[[int, str, str | None], Response]


def error_writer() -> Refuse:
    """The error writer of the API this request speaks (Anthropic for ``/v1/messages``)."""
    return (
        anthropic_wire.error
        if request.path.rstrip("/").endswith("/messages")
        else openai_wire.error
    )


@bp.errorhandler(GatewayError)
def refused(exc: GatewayError) -> Response:
    """A refused request, in its API's error shape; nothing of it is stored."""
    db.session.rollback()
    return error_writer()(exc.status, exc.message, exc.param)


@bp.before_request
def authenticate() -> None:
    """The caller's live API token (``Authorization: Bearer`` or ``x-api-key``), else 401."""
    token = tokens.presented(request.headers)
    found = tokens.live_token(token) if token else None
    if found is None:
        raise GatewayError(
            401, "Send a live webchat API token: Authorization: Bearer <token> (or x-api-key)."
        )
    g.gateway_token, touched = found
    if touched:
        db.session.commit()


@bp.get("/models")
def models() -> Response:
    """The models of webchat as ``provider/model`` ids, in a list both SDKs read (OpenAI's
    ``{"object": "list", "data": [{"id", "object", "created", "owned_by"}]}``, with Anthropic's
    ``type``, ``display_name``, ``created_at``, ``has_more``, ``first_id``, ``last_id``)."""
    ids = providers.available_models()
    data = [
        {
            "id": model_id,
            "object": "model",
            "type": "model",
            "created": 0,
            "created_at": "1970-01-01T00:00:00Z",
            "owned_by": model_id.split("/", 1)[0],
            "display_name": model_id,
        }
        for model_id in ids
    ]
    return jsonify(
        object="list",
        data=data,
        has_more=False,
        first_id=ids[0] if ids else None,
        last_id=ids[-1] if ids else None,
    )


@bp.post("/chat/completions")
def chat_completions() -> Response:
    """OpenAI Chat Completions, streamed or not (see :mod:`.openai_wire`)."""
    exchange, include_usage = openai_wire.parse(_json_body())
    run = _open(exchange)
    if exchange.stream:
        chunks = openai_wire.ChunkStream(run.run_id, run.model, run.created, include_usage)
        return _stream(run, chunks)
    return _answer(run, lambda result: openai_wire.completion(result, run.model))


@bp.post("/messages")
def messages() -> Response:
    """Anthropic Messages, streamed or not (see :mod:`.anthropic_wire`)."""
    exchange = anthropic_wire.parse(_json_body())
    run = _open(exchange)
    if exchange.stream:
        return _stream(run, anthropic_wire.EventStream(run.run_id, run.model))
    return _answer(run, lambda result: anthropic_wire.reply(result, run.model))


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise GatewayError(400, "The body must be a JSON object.")
    return body


@dataclass(frozen=True)
class Started:
    """What a response needs of its run, read before the commit (so nothing is read again)."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    model: str
    created: int  # seconds since the epoch


def _open(exchange: Exchange) -> Started:
    """Start (or find, for a repeated ``Idempotency-Key``) the request's run; commit; launch."""
    key = request.headers.get("Idempotency-Key") or None
    token = g.gateway_token
    pinned = request.headers.get(CONVERSATION_HEADER) or None
    try:
        opened = services.open_exchange(token, exchange, pinned, key)
        run = opened.run
        started = Started(run.id, run.conversation_id, run.model, services.created_s(run))
        db.session.commit()
    except IntegrityError:  # the same Idempotency-Key, committed meanwhile: a replay
        db.session.rollback()
        opened = services.open_exchange(token, exchange, pinned, key)
        run = opened.run
        started = Started(run.id, run.conversation_id, run.model, services.created_s(run))
    if not opened.replay:
        thread = runs.launch(started.run_id)
        if opened.first_prompt is not None and titles.wanted(started.model):
            conversation = db.session.get(Conversation, started.conversation_id)
            assert conversation is not None
            titles.launch(conversation, opened.first_prompt, after=thread)
    return started


def _headers(started: Started) -> dict[str, str]:
    return {CONVERSATION_HEADER: str(started.conversation_id)}


def _answer(started: Started, render: Callable[[services.Outcome], dict[str, Any]]) -> Response:
    """Wait for the run, then answer its stored reply (a failed one as a 502 error)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    headers = _headers(started)
    run_id = started.run_id
    db.session.remove()
    services.wait(app, run_id)
    result = services.outcome(run_id)
    if result.run.status == Status.ERROR:
        response = error_writer()(502, result.run.error or "The reply failed.", None)
    else:
        response = jsonify(render(result))
    response.headers.update(headers)
    return response


def _stream(started: Started, fmt: sse.StreamFormat) -> Response:
    """The text/event-stream of the run in ``fmt``; the database session is closed first."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    headers = {**_headers(started), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    run_id = started.run_id
    db.session.remove()
    return app.response_class(
        _follow(app, run_id, fmt), mimetype="text/event-stream", headers=headers
    )


def _follow(app: Any, run_id: uuid.UUID, fmt: sse.StreamFormat) -> Iterator[str]:
    """The run's events; a client gone before the end stops the run (status ``cancelled``)."""
    ended = False
    try:
        yield from sse.follow(app, run_id, fmt)
        ended = True
    finally:
        if not ended:
            with app.app_context():
                try:
                    runs.cancel(run_id)
                finally:
                    db.session.remove()
