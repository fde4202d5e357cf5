"""The API's routes: conversations, their messages and branches (edit, regenerate, switch,
fork, feedback), a reply's stream, models, the document.

Views parse (spectree has validated the query and body), call the same services as the pages,
commit once, and return a pydantic model that spectree serializes. Another user's id is a 404,
through :func:`webchat.conversations.services.owned_conversation` / ``owned_message``.
"""

from __future__ import annotations

import uuid

from flask import current_app, url_for

from .. import tree
from ..conversations import paging, projects, services
from ..conversations.services import NotFound
from ..extensions import db
from ..files.services import takes_images
from ..mcp import approval
from ..mcp import registry as mcp_registry
from ..models import Conversation, Message, Run, Status
from ..providers import available_models
from ..streaming import runs, sse
from ..usage.services import conversation_usage
from .auth import current_api_user, public
from .base import bp, documented, json_body, openapi_document, query_args, responses, spec
from .errors import fail
from .schemas import (
    ApprovalIn,
    ConversationCreate,
    ConversationDetail,
    ConversationList,
    ConversationOut,
    ConversationPatch,
    ConversationQuery,
    EditMessage,
    FeedbackIn,
    MessageOut,
    MessagePage,
    MessageQuery,
    MessageResult,
    ModelList,
    ModelOut,
    Regenerate,
    ReplyResult,
    SendMessage,
    SendResult,
    SetActive,
    ToolServerCreate,
    ToolServerList,
    ToolServerOut,
    UsageOut,
)
from .stream import JsonStreamFormat


def _conversation(conversation_id: uuid.UUID) -> Conversation:
    try:
        return services.owned_conversation(current_api_user(), conversation_id)
    except NotFound:
        fail(404, "No such conversation.")


def _message(message_id: uuid.UUID, field: str | None = None) -> Message:
    try:
        return services.owned_message(current_api_user(), message_id)
    except NotFound:
        fail(404, "No such message.", fields={field: "No such message."} if field else None)


def _message_in(conversation: Conversation, message_id: uuid.UUID, field: str) -> Message:
    """The user's message ``message_id`` of ``conversation``: 404 when unknown or another
    user's, 400 when it is in another conversation."""
    message = _message(message_id, field)
    if message.conversation_id != conversation.id:
        problem = "A message of another conversation."
        fail(400, f"{field} must be a message of this conversation.", fields={field: problem})
    return message


def _launched(run: Run) -> ReplyResult:
    """Launch the committed ``run``; its pending reply and where it streams."""
    runs.launch(run.id)
    reply = db.session.get(Message, run.message_id)
    assert reply is not None
    return ReplyResult(
        reply=MessageOut.of(reply), stream_url=url_for(".stream", message_id=reply.id)
    )


def _sent(message: Message, run: Run) -> SendResult:
    """Launch the committed ``run`` answering ``message``: both messages, and the stream."""
    launched = _launched(run)
    return SendResult(
        message=MessageOut.of(message), reply=launched.reply, stream_url=launched.stream_url
    )


@bp.get("/openapi.json")
@public
def openapi():
    """The OpenAPI 3.1 document of this API, generated from the routes and their models."""
    return openapi_document()


@bp.post("/conversations")
@spec.validate(json=ConversationCreate, resp=responses(201, ConversationOut, 400, 404, 413))
def create_conversation():
    """Create a conversation (empty; send messages to it)."""
    body: ConversationCreate = json_body()
    user = current_api_user()
    conversation = services.create_conversation(
        user,
        title=body.title,
        model=body.model,
        system_prompt=body.system_prompt,
        meta=body.metadata,
        project=projects.project_for(user, body.project_id),
    )
    if body.tags:
        projects.set_tags(conversation, body.tags)
    db.session.commit()
    return ConversationOut.of(conversation), 201


@bp.get("/conversations")
@spec.validate(query=ConversationQuery, resp=responses(200, ConversationList, 400, 404))
def list_conversations():
    """The user's conversations, pinned first, then newest activity first (not in Trash);
    ``?project_id=`` one project's, ``?loose=true`` those in none, ``?tag=`` those tagged."""
    query: ConversationQuery = query_args()
    user = current_api_user()
    cursor = paging.ConversationCursor.parse(query.cursor) if query.cursor else None
    project: uuid.UUID | None | str = paging.ANY_PROJECT
    if query.project_id is not None:
        project = projects.project_for(user, query.project_id).id  # type: ignore[union-attr]
    elif query.loose:
        project = None
    tag = None
    if query.tag is not None:
        try:
            tag = projects.owned_tag(user, query.tag)
        except NotFound:
            fail(404, "No such tag.", fields={"tag": "No conversation of yours has it."})
    items, more = paging.conversations_page(
        user, limit=query.limit, cursor=cursor, archived=query.archived, project=project, tag=tag
    )
    names = projects.tag_names(items)
    return ConversationList(
        items=[ConversationOut.of(c, names[c.id]) for c in items],
        next_cursor=str(more) if more else None,
    )


@bp.get("/conversations/<uuid:conversation_id>")
@spec.validate(resp=responses(200, ConversationDetail, 404))
def get_conversation(conversation_id: uuid.UUID):
    """A conversation with its newest page of messages (oldest first)."""
    conversation = _conversation(conversation_id)
    messages, more = paging.older(
        tree.active_path(conversation), None, current_app.config["PAGE_SIZE"]
    )
    return ConversationDetail(
        **ConversationOut.fields_of(conversation),
        usage=UsageOut(**conversation_usage(conversation)),
        messages=MessageOut.many(messages),
        has_more=more,
        next_cursor=str(messages[0].id) if more else None,
    )


@bp.patch("/conversations/<uuid:conversation_id>")
@spec.validate(json=ConversationPatch, resp=responses(200, ConversationOut, 400, 404, 413))
def update_conversation(conversation_id: uuid.UUID):
    """Change a conversation's title, pinned, archived, metadata, model, system prompt, project
    (``project_id``), tags or tools (the tool servers its model may use)."""
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
    if "project_id" in given:
        projects.move(conversation, projects.project_for(current_api_user(), patch.project_id))
    if "tags" in given:
        projects.set_tags(conversation, patch.tags or [])
    if "tools" in given:
        mcp_registry.set_conversation_tools(current_app, conversation, patch.tools)
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
    """A page of one path of a conversation's tree, oldest first: the active path, or with
    ``?leaf=<id>`` the path through that message to the newest leaf under it. ``?limit=&offset=``
    from the first message, ``?after=<id>`` forwards from a message, ``?before=<id>`` backwards
    from one (both: the messages between them, forwards); a cursor off the active path pages
    the path through it. ``?all=true``: every message of every branch, by time."""
    conversation = _conversation(conversation_id)
    query: MessageQuery = query_args()
    before = after = None
    if query.before is not None:
        before = paging.find_message(conversation, query.before, "before")
    if query.after is not None:
        after = paging.find_message(conversation, query.after, "after")
    if query.all:
        if query.leaf is not None:
            paging.find_message(conversation, query.leaf, "leaf")
            problem = "all=true lists every branch."
            fail(400, "leaf can't be combined with all=true.", fields={"leaf": problem})
        items, more = paging.in_time_order(conversation, after, before, query.limit, query.offset)
        total = conversation.message_count
    else:
        items, more, total = _path_page(conversation, query, before, after)
    backwards = before is not None and after is None
    edge = (items[0] if backwards else items[-1]) if items and more else None
    return MessagePage(
        items=MessageOut.many(items),
        total=total,
        limit=query.limit,
        offset=query.offset,
        has_more=more,
        next_cursor=str(edge.id) if edge else None,
    )


def _path_page(
    conversation: Conversation, query: MessageQuery, before: Message | None, after: Message | None
) -> tuple[list[Message], bool, int]:
    """A page of the path listed: below ``query.leaf``, else through a cursor, else the active
    one; the messages, whether more remain, and the path's length. Raises a 400 for a cursor
    off that path."""
    if query.leaf is not None:
        path: tree.Path | None = tree.path_below(
            paging.find_message(conversation, query.leaf, "leaf")
        )
    elif after or before:
        path = tree.path_through(conversation, after or before)
    else:
        path = tree.active_path(conversation)
    for field, cursor in (("before", before), ("after", after)):
        if cursor is not None and path is not None and not path.holds(cursor):
            problem = "Not on the path listed."
            fail(400, f"{field} is not a message of the path listed.", fields={field: problem})
    if before is not None and after is None:
        items, more = paging.older(path, before, query.limit, query.offset)
    else:
        items, more = paging.newer(path, after, query.limit, query.offset, before)
    return items, more, path.length if path is not None else 0


@bp.post("/conversations/<uuid:conversation_id>/messages")
@spec.validate(json=SendMessage, resp=responses(202, SendResult, 400, 404, 409, 413))
def send_message(conversation_id: uuid.UUID):
    """Send a message: stores it and a pending reply, whose run starts at once (202). It answers
    the active leaf, or ``parent_id``, whose branch then becomes the active one."""
    conversation = _conversation(conversation_id)
    body: SendMessage = json_body()
    message, run = services.send_message(
        conversation, body.content, body.model, body.parent_id, files=body.files
    )
    db.session.commit()
    return _sent(message, run), 202


@bp.post("/conversations/<uuid:conversation_id>/active")
@spec.validate(json=SetActive, resp=responses(200, ConversationOut, 400, 404))
def set_active(conversation_id: uuid.UUID):
    """Show another branch: the active leaf becomes the newest leaf under ``message_id``."""
    conversation = _conversation(conversation_id)
    body: SetActive = json_body()
    services.switch_branch(conversation, _message_in(conversation, body.message_id, "message_id"))
    db.session.commit()
    return ConversationOut.of(conversation)


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
@spec.validate(resp=responses(202, MessageResult, 404, 409))
def cancel(message_id: uuid.UUID):
    """Stop the reply's run; it ends ``cancelled`` with its partial text kept."""
    message = _message(message_id)
    run = db.session.get(Run, message.run_id) if message.run_id else None
    if run is None or run.status in Status.FINAL:
        fail(409, "This reply is not running.")
    runs.cancel(run.id)
    return MessageResult(message=MessageOut.of(message)), 202


@bp.post("/messages/<uuid:message_id>/approval")
@spec.validate(json=ApprovalIn, resp=responses(202, MessageResult, 400, 404, 409))
def approve(message_id: uuid.UUID):
    """Decide on a tool call awaiting approval (a ``tool`` message of status
    ``awaiting_approval``): ``allow`` runs it, ``allow_conversation`` also allows that tool for
    the rest of the conversation, ``deny`` stores that the person declined. The reply continues
    (202); follow it with ``GET /messages/{id}/stream``. 409 when the call is not waiting."""
    body: ApprovalIn = json_body()
    message = _message(message_id)
    approval.decide(message, body.decision)
    db.session.refresh(message)
    return MessageResult(message=MessageOut.of(message)), 202


@bp.post("/messages/<uuid:message_id>/edit")
@spec.validate(
    json=EditMessage,
    resp=responses(202, SendResult, 400, 404, 409, 413, also={201: MessageResult}),
)
def edit_message(message_id: uuid.UUID):
    """A new version of a message, beside the original, on the active branch: a user message's
    gets a reply (202, as sending), an assistant message's is stored as it is (201)."""
    body: EditMessage = json_body()
    edited, run = services.edit_message(_message(message_id), body.content)
    db.session.commit()
    if run is None:
        return MessageResult(message=MessageOut.of(edited)), 201
    return _sent(edited, run), 202


@bp.post("/messages/<uuid:message_id>/regenerate")
@spec.validate(json=Regenerate, resp=responses(202, ReplyResult, 400, 404, 409))
def regenerate(message_id: uuid.UUID):
    """Another reply: beside an assistant reply, or to a user message; it becomes the active
    branch and its run starts at once (202)."""
    body: Regenerate = json_body()
    run = services.regenerate(_message(message_id), body.model)
    db.session.commit()
    return _launched(run), 202


@bp.post("/messages/<uuid:message_id>/fork")
@spec.validate(resp=responses(201, ConversationOut, 404, 409))
def fork(message_id: uuid.UUID):
    """A new conversation holding a copy of the path from the root down to the message."""
    copy = services.fork(current_api_user(), _message(message_id))
    db.session.commit()
    return ConversationOut.of(copy), 201


@bp.put("/messages/<uuid:message_id>/feedback")
@spec.validate(json=FeedbackIn, resp=responses(200, MessageOut, 400, 404))
def set_feedback(message_id: uuid.UUID):
    """Rate a reply up or down (null clears it), with an optional comment."""
    body: FeedbackIn = json_body()
    message = services.set_feedback(_message(message_id), body.rating, body.comment)
    db.session.commit()
    return MessageOut.of(message)


@bp.get("/models")
@spec.validate(resp=responses(200, ModelList))
def list_models():
    """The models of the configured providers (``provider/model``) and the default one."""
    return ModelList(
        items=[
            ModelOut(id=m, provider=m.split("/", 1)[0], images=takes_images(m))
            for m in available_models()
        ],
        default=current_app.config["DEFAULT_MODEL"],
    )


@bp.get("/tool-servers")
@spec.validate(resp=responses(200, ToolServerList))
def list_tool_servers():
    """The tool servers the user's conversations may use, each connected or failed (and why),
    with its tools and their approval policy: the built-ins ('webchat'), the operator's
    instance/mcp.json, and the user's own."""
    rows = mcp_registry.overview(current_app, current_api_user().id)
    return ToolServerList(items=[ToolServerOut.model_validate(row) for row in rows])


@bp.post("/tool-servers")
@spec.validate(json=ToolServerCreate, resp=responses(201, ToolServerOut, 400, 403, 409))
def add_tool_server():
    """Add a Streamable HTTP MCP server of the user's own, on a host the operator allows
    (``MCP_USER_HOSTS``); its tools ask before every call. 403 for a URL on another host (or
    when no host is allowed), 409 for a name taken or too many servers."""
    body: ToolServerCreate = json_body()
    user = current_api_user()
    row = mcp_registry.add_user_server(current_app, user.id, body.name, body.url)
    db.session.commit()
    listed = mcp_registry.overview(current_app, user.id)
    return ToolServerOut.model_validate(next(r for r in listed if r.get("id") == row.id)), 201


@bp.delete("/tool-servers/<int:server_id>")
@spec.validate(resp=responses(204, None, 404))
def remove_tool_server(server_id: int):
    """Remove one of the user's own tool servers."""
    try:
        mcp_registry.remove_user_server(current_api_user().id, server_id)
    except NotFound:
        fail(404, "No such tool server.")
    db.session.commit()
    return "", 204
