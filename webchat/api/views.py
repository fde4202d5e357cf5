"""The API's routes: conversations, their messages, a reply's stream, models, the document.

Views parse (spectree has validated the query and body), call the same services as the pages,
commit once, and return a pydantic model that spectree serializes. Another user's id is a 404,
through :func:`webchat.conversations.services.owned_conversation` / ``owned_message``.
"""

from __future__ import annotations

import uuid

from flask import current_app, url_for

from ..conversations import paging, services
from ..conversations.services import NotFound
from ..extensions import db
from ..models import Conversation, Message, Run, Status
from ..providers import available_models
from ..streaming import runs, sse
from ..usage.services import conversation_usage
from .auth import current_api_user, public
from .base import bp, documented, json_body, openapi_document, query_args, responses, spec
from .errors import fail
from .schemas import (
    CancelResult,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationPatch,
    ConversationQuery,
    MessageOut,
    MessagePage,
    MessageQuery,
    ModelList,
    ModelOut,
    SendMessage,
    SendResult,
    UsageOut,
)
from .stream import JsonStreamFormat


def _conversation(conversation_id: uuid.UUID) -> Conversation:
    try:
        return services.owned_conversation(current_api_user(), conversation_id)
    except NotFound:
        fail(404, "No such conversation.")


def _message(message_id: uuid.UUID) -> Message:
    try:
        return services.owned_message(current_api_user(), message_id)
    except NotFound:
        fail(404, "No such message.")


@bp.get("/openapi.json")
@public
def openapi():
    """The OpenAPI 3.1 document of this API, generated from the routes and their models."""
    return openapi_document()


@bp.post("/conversations")
@spec.validate(json=ConversationCreate, resp=responses(201, ConversationOut, 400, 413))
def create_conversation():
    """Create a conversation (empty; send messages to it)."""
    body: ConversationCreate = json_body()
    conversation = services.create_conversation(
        current_api_user(),
        title=body.title,
        model=body.model,
        system_prompt=body.system_prompt,
        meta=body.metadata,
    )
    db.session.commit()
    return ConversationOut.of(conversation), 201


@bp.get("/conversations")
@spec.validate(query=ConversationQuery, resp=responses(200, ConversationList, 400))
def list_conversations():
    """The user's conversations, pinned first, then newest activity first (not in Trash)."""
    query: ConversationQuery = query_args()
    cursor = paging.ConversationCursor.parse(query.cursor) if query.cursor else None
    items, more = paging.conversations_page(
        current_api_user(), limit=query.limit, cursor=cursor, archived=query.archived
    )
    return ConversationList(
        items=[ConversationOut.of(c) for c in items], next_cursor=str(more) if more else None
    )


@bp.get("/conversations/<uuid:conversation_id>")
@spec.validate(resp=responses(200, ConversationDetail, 404))
def get_conversation(conversation_id: uuid.UUID):
    """A conversation with its newest page of messages (oldest first)."""
    conversation = _conversation(conversation_id)
    messages, more = paging.older(conversation, None, current_app.config["PAGE_SIZE"])
    return ConversationDetail(
        **ConversationOut.fields_of(conversation),
        usage=UsageOut(**conversation_usage(conversation)),
        messages=[MessageOut.of(m) for m in messages],
        has_more=more,
        next_cursor=str(messages[0].id) if more else None,
    )


@bp.patch("/conversations/<uuid:conversation_id>")
@spec.validate(json=ConversationPatch, resp=responses(200, ConversationOut, 400, 404, 413))
def update_conversation(conversation_id: uuid.UUID):
    """Change a conversation's title, pinned, archived, metadata, model or system prompt."""
    conversation = _conversation(conversation_id)
    patch: ConversationPatch = json_body()
    given = patch.model_fields_set
    if "title" in given:
        services.rename(conversation, patch.title)
    if "pinned" in given:
        services.set_pinned(conversation, bool(patch.pinned))
    if "archived" in given:
        services.set_archived(conversation, bool(patch.archived))
    if "metadata" in given:
        services.set_metadata(conversation, patch.metadata or {})
    if "model" in given or "system_prompt" in given:
        services.update_settings(
            conversation,
            model=patch.model,
            system_prompt=(patch.system_prompt or "") if "system_prompt" in given else None,
        )
    db.session.commit()
    return ConversationOut.of(conversation)


@bp.delete("/conversations/<uuid:conversation_id>")
@spec.validate(resp=responses(204, None, 404))
def delete_conversation(conversation_id: uuid.UUID):
    """Delete a conversation for good, its messages with it."""
    services.purge(_conversation(conversation_id))
    db.session.commit()
    return "", 204


@bp.get("/conversations/<uuid:conversation_id>/messages")
@spec.validate(query=MessageQuery, resp=responses(200, MessagePage, 400, 404))
def list_messages(conversation_id: uuid.UUID):
    """A page of a conversation's messages, oldest first: ``?limit=&offset=`` from the first
    message, ``?after=<id>`` forwards from a message, ``?before=<id>`` backwards from one (both:
    the messages between them, forwards)."""
    conversation = _conversation(conversation_id)
    query: MessageQuery = query_args()
    before = after = None
    if query.before is not None:
        before = paging.key_of(paging.find_message(conversation, query.before, "before"))
    if query.after is not None:
        after = paging.key_of(paging.find_message(conversation, query.after, "after"))
    backwards = before is not None and after is None
    if backwards:
        items, more = paging.older(conversation, before, query.limit, query.offset)
    else:
        items, more = paging.newer(conversation, after, query.limit, query.offset, before)
    edge = (items[0] if backwards else items[-1]) if items and more else None
    return MessagePage(
        items=[MessageOut.of(m) for m in items],
        total=conversation.message_count,
        limit=query.limit,
        offset=query.offset,
        has_more=more,
        next_cursor=str(edge.id) if edge else None,
    )


@bp.post("/conversations/<uuid:conversation_id>/messages")
@spec.validate(json=SendMessage, resp=responses(202, SendResult, 400, 404, 409, 413))
def send_message(conversation_id: uuid.UUID):
    """Send a message: stores it and a pending reply, whose run starts at once (202)."""
    conversation = _conversation(conversation_id)
    body: SendMessage = json_body()
    message, run = services.send_message(conversation, body.content, body.model)
    db.session.commit()
    runs.launch(run.id)
    reply = db.session.get(Message, run.message_id)
    assert reply is not None
    return SendResult(
        message=MessageOut.of(message),
        reply=MessageOut.of(reply),
        stream_url=url_for(".stream", message_id=reply.id),
    ), 202


@bp.get("/messages/<uuid:message_id>")
@spec.validate(resp=responses(200, MessageOut, 404))
def get_message(message_id: uuid.UUID):
    """A message with its status (poll it, or follow its stream)."""
    return MessageOut.of(_message(message_id))


@bp.get("/messages/<uuid:message_id>/stream")
@documented(spec.validate(resp=responses(200, None, 404)))
def stream(message_id: uuid.UUID):
    """The reply's run as Server-Sent Events with JSON data: ``delta`` {"message_id", "text"},
    ``tool_call``, ``tool_result``, ``error`` {"message"}, then ``done`` {"status", "message",
    "messages"}. Event ids are the page's; reconnect with ``Last-Event-ID`` to resume."""
    message = _message(message_id)
    if message.run_id is None:
        fail(404, "This message has no stream: only replies stream.")
    return sse.stream_response(message.run_id, JsonStreamFormat())


@bp.post("/messages/<uuid:message_id>/cancel")
@spec.validate(resp=responses(202, CancelResult, 404, 409))
def cancel(message_id: uuid.UUID):
    """Stop the reply's run; it ends ``cancelled`` with its partial text kept."""
    message = _message(message_id)
    run = db.session.get(Run, message.run_id) if message.run_id else None
    if run is None or run.status in Status.FINAL:
        fail(409, "This reply is not running.")
    runs.cancel(run.id)
    return CancelResult(message=MessageOut.of(message)), 202


@bp.get("/models")
@spec.validate(resp=responses(200, ModelList))
def list_models():
    """The models of the configured providers (``provider/model``) and the default one."""
    return ModelList(
        items=[ModelOut(id=m, provider=m.split("/", 1)[0]) for m in available_models()],
        default=current_app.config["DEFAULT_MODEL"],
    )
