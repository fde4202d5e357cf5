"""The API's request and response bodies (pydantic 2), from which the OpenAPI document is made.

Timestamps are ISO 8601 in UTC (``2026-11-21T09:00:00.123456Z``); ids are UUIDs. Input strings
must be storable text: no NUL character and no lone surrogate (PostgreSQL and SQLite refuse
both), and metadata holds JSON values with finite numbers only.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypeAliasType

from .. import tree
from ..files.schemas import FileLink, FileRef
from ..files.services import file_out, files_of
from ..models import Conversation, Message, Project, Role, Share, Status

STORABLE = r"^[^\u0000]*$"  # no NUL
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"  # and at least one visible character
CURSOR = r"^[01]\.[0-9]{1,17}\.[0-9a-f]{32}$"  # webchat.conversations.paging.ConversationCursor
MODELS = {"x-webchat-enum": "models"}  # webchat.api.base fills in the models offered now
TOOL_SERVERS = {"x-webchat-enum": "tool_servers"}  # … and the operator's tool servers


def _storable(value: Any, path: str = "") -> Any:
    """``value`` unchanged if every string in it is storable text and every number finite;
    raises ``ValueError`` otherwise."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path or 'text'} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path or 'text'} is not valid Unicode text") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'number'} is not a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, path)
            _storable(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{path}[{index}]")
    return value


# Constraints first: they then show in the JSON schema (a validator before them would hide them).
Text = Annotated[str, StringConstraints(pattern=STORABLE), AfterValidator(_storable)]
Line = Annotated[str, StringConstraints(pattern=NOT_BLANK), AfterValidator(_storable)]
Title = Annotated[
    str,
    StringConstraints(pattern=NOT_BLANK, min_length=1, max_length=200),
    AfterValidator(_storable),
]
ModelId = Annotated[str, StringConstraints(pattern=STORABLE, max_length=200)]
Cursor = Annotated[str, StringConstraints(pattern=CURSOR)]
# A name whose spaces are collapsed keeps a character that is not a space by Python's str.split,
# which also splits at U+001C–U+001F and U+0085, unlike JSON Schema's \s; a tag, one that is not
# the leading "#" it drops either.
SPLIT_NOT_BLANK = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085][^\u0000]*$"
TAG_PATTERN = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085#][^\u0000]*$"
TagName = Annotated[
    str,
    StringConstraints(pattern=TAG_PATTERN, min_length=1, max_length=50),
    AfterValidator(_storable),
]
# Any JSON value whose strings (keys too) are storable.
JsonValue = TypeAliasType(
    "JsonValue",
    "Text | int | float | bool | None | list[JsonValue] | dict[Text, JsonValue]",
)
Metadata = Annotated[
    dict[Text, JsonValue],
    AfterValidator(_storable),
    Field(description="Free-form JSON object of the client's own keys."),
]
RoleName = Literal["user", "assistant", "system", "tool"]
StatusName = Literal[
    "pending", "streaming", "complete", "error", "cancelled", "interrupted", "awaiting_approval"
]
assert set(RoleName.__args__) == set(Role.ALL)  # type: ignore[attr-defined]
assert set(StatusName.__args__) == {*Status.ACTIVE, *Status.FINAL, Status.AWAITING}  # type: ignore[attr-defined]


def optional(*, json_schema_extra: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """A field that may be left out (not null): absent means "leave as it is". Its schema shows
    no ``default: null``, which its type would contradict."""
    extra = dict(json_schema_extra or {})

    def schema_of(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(extra)

    return Field(default=None, json_schema_extra=schema_of, **kwargs)


class Body(BaseModel):
    """A request body: unknown fields are refused, so a typo is a 400, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --- errors ----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable snake_case code, e.g. not_found, invalid_input.")
    message: str = Field(description="Readable explanation.")
    details: dict[str, Any] | None = Field(
        default=None, description='{"fields": {"<field>": "<what is wrong>"}} for bad input.'
    )


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorDetail


# --- messages --------------------------------------------------------------------------------


class Feedback(BaseModel):
    """A person's feedback on a reply."""

    rating: Literal["up", "down"] | None = Field(description="null: not rated.")
    comment: str | None


class MessageOut(BaseModel):
    """One message, as stored, and where it stands among its parent's children (its versions:
    edits and regenerated replies), oldest first."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    parent_id: uuid.UUID | None
    role: RoleName
    content: str = Field(description="The text; grows while status is streaming.")
    reasoning: str | None = Field(
        description="The model's thinking, kept apart from the content; null when it had none."
    )
    tool_name: str | None
    tool_call: Any = Field(description="The tool call an assistant message makes, or null.")
    tool_result: Any = Field(description="The result a tool message carries, or null.")
    status: StatusName
    error: str | None
    metadata: dict[str, Any]
    sibling_index: int = Field(ge=1, description="1-based position among its siblings.")
    sibling_count: int = Field(ge=1, description="Its siblings, itself included.")
    previous_sibling_id: uuid.UUID | None = Field(description="The older sibling, or null.")
    next_sibling_id: uuid.UUID | None = Field(description="The newer sibling, or null.")
    feedback: Feedback
    files: list[FileRef] = Field(description="The files attached to the message, in order.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def many(cls, messages: list[Message]) -> list[MessageOut]:
        """``messages`` in the same order, with their sibling positions read by one
        :func:`webchat.tree.siblings` call and their files by one query (whatever the number
        of messages)."""
        places = tree.siblings(messages)
        attached = files_of(messages)
        return [
            cls._of(m, places[m.id]).model_copy(
                update={
                    "files": [
                        FileRef.model_validate(file_out(f, sha256=False))
                        for f in attached.get(m.id, ())
                    ]
                }
            )
            for m in messages
        ]

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        """One message (a page of them: :meth:`many`)."""
        return cls.many([message])[0]

    @classmethod
    def _of(cls, message: Message, place: tree.Siblings) -> MessageOut:
        return cls(
            id=message.id,
            conversation_id=message.conversation_id,
            parent_id=message.parent_id,
            role=message.role,  # type: ignore[arg-type]
            content=message.content or "",
            reasoning=message.reasoning,
            tool_name=message.tool_name,
            tool_call=message.tool_call,
            tool_result=message.tool_result,
            status=message.status,  # type: ignore[arg-type]
            error=message.error,
            metadata=message.meta or {},
            sibling_index=place.index,
            sibling_count=place.count,
            previous_sibling_id=place.previous_id,
            next_sibling_id=place.next_id,
            feedback=Feedback(
                rating=message.feedback_rating,  # type: ignore[arg-type]
                comment=message.feedback_comment,
            ),
            files=[],
            created_at=message.created_at,
            updated_at=message.updated_at,
        )


class MessageQuery(BaseModel):
    """Which messages: a path of the tree (the active one, or the one through ``leaf``), or with
    ``all=true`` every message of the tree by time; paged by ``?limit=&offset=`` from the first
    message, or from a cursor (a message id)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200, description="Messages per page, 1–200.")
    offset: int = Field(
        0, ge=0, le=2**31 - 1, description="Messages to skip from the start (or the cursor)."
    )
    before: uuid.UUID = optional(
        description="Walk backwards: the messages before this message id, the newest of them. "
        "On another branch than the active one, it pages the path through it."
    )
    after: uuid.UUID = optional(
        description="Walk forwards: the messages after this message id (on another branch than "
        "the active one, along the path through it)."
    )
    leaf: uuid.UUID = optional(
        description="List the path through this message down to the newest leaf under it (the "
        "branch POST .../active would show), without making it active. Not with all=true (400)."
    )
    all: bool = Field(
        False,
        description="Every message of every branch, by (created_at, id), the cursors being "
        "positions in that order: for sync and export.",
    )


class MessagePage(BaseModel):
    """A page of messages, oldest first.

    ``has_more``: more remain in the direction walked (newer, or older with ``before`` alone);
    ``next_cursor`` then continues it (pass it as ``after``, or as ``before``); else null.
    ``total`` counts the messages of the path listed (with ``all=true``: of the conversation);
    ``offset`` echoes the one asked for.
    """

    items: list[MessageOut]
    total: int
    limit: int
    offset: int
    has_more: bool
    next_cursor: str | None


class SendMessage(Body):
    content: Line = Field(
        description="The message text: at most MAX_MESSAGE_CHARS characters (100,000 unless "
        "configured otherwise; 413 beyond)."
    )
    model: ModelId = optional(
        description="A model of GET /api/v1/models for this reply only.", json_schema_extra=MODELS
    )
    parent_id: uuid.UUID = optional(
        description="Answer this message of the conversation instead of the active leaf; the new "
        "branch becomes the active one."
    )
    files: list[uuid.UUID] = optional(
        max_length=20,
        description="Ids of files uploaded with POST /api/v1/files to attach, in order (404 for "
        "one that is not yours; 400 for an image to a model that can't read images).",
    )


class SendResult(BaseModel):
    """What sending (or editing a user message) stored: the user's message and the pending
    reply, and where it streams."""

    message: MessageOut
    reply: MessageOut
    stream_url: str = Field(description="GET it for the reply's Server-Sent Events.")


class MessageResult(BaseModel):
    """The message an action stored or acted on."""

    message: MessageOut


class EditMessage(Body):
    content: Line = Field(
        description="The new version's text: not blank, at most MAX_MESSAGE_CHARS characters "
        "(413 beyond)."
    )


class Regenerate(Body):
    model: ModelId = optional(
        description="A model of GET /api/v1/models for this reply (default: the replaced "
        "reply's model, else the conversation's).",
        json_schema_extra=MODELS,
    )


class ApprovalIn(Body):
    """A person's decision on a tool call awaiting approval."""

    decision: Literal["allow", "allow_conversation", "deny"] = Field(
        description="allow: run it; allow_conversation: run it and every later call of this "
        "tool in the conversation without asking; deny: do not run it (the model is told)."
    )


class ReplyResult(BaseModel):
    """A pending reply and where it streams."""

    reply: MessageOut
    stream_url: str = Field(description="GET it for the reply's Server-Sent Events.")


class SetActive(Body):
    message_id: uuid.UUID = Field(
        description="A message of the conversation: the newest leaf under it becomes active."
    )


class FeedbackIn(Body):
    rating: Literal["up", "down"] | None = Field(description="null clears the rating.")
    comment: Text | None = optional(
        description="At most 2,000 characters; blank or left out clears it."
    )


# --- conversations ---------------------------------------------------------------------------


class ConversationOut(BaseModel):
    """A conversation without its messages."""

    id: uuid.UUID
    title: str
    model: str
    system_prompt: str | None
    metadata: dict[str, Any]
    pinned: bool
    archived: bool
    archived_at: datetime | None
    message_count: int
    active_message_id: uuid.UUID | None = Field(
        description="The leaf of the branch people read (null: no message yet)."
    )
    project_id: uuid.UUID | None = Field(description="Its project, or null (none).")
    tags: list[str] = Field(description="Its tags, by name.")
    tools: list[str] = Field(
        description="The tool servers whose tools the model may call, by name: 'webchat' (the "
        "built-in tools) and the operator's MCP servers; by default all of them."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, conversation: Conversation, tags: list[str] | None = None) -> dict[str, Any]:
        """The fields of ``conversation``; ``tags`` when already read (else one query)."""
        from flask import current_app

        from ..mcp import registry

        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return {
            "project_id": conversation.project_id,
            "tags": tags if tags is not None else [t.name for t in conversation.tags],
            "tools": registry.conversation_tools(app, conversation),
            "id": conversation.id,
            "title": conversation.title,
            "model": conversation.model,
            "system_prompt": conversation.system_prompt,
            "metadata": conversation.meta or {},
            "pinned": conversation.pinned,
            "archived": conversation.archived_at is not None,
            "archived_at": conversation.archived_at,
            "message_count": conversation.message_count,
            "active_message_id": conversation.active_message_id,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
        }

    @classmethod
    def of(cls, conversation: Conversation, tags: list[str] | None = None) -> ConversationOut:
        return cls(**cls.fields_of(conversation, tags))


class UsageOut(BaseModel):
    """Token usage and cost: a reply's ``metadata.usage`` has this shape, and a conversation's
    ``usage`` holds the sums over its replies."""

    input_tokens: int | None = Field(description="Prompt tokens, cached ones included.")
    output_tokens: int | None = Field(description="Completion tokens, reasoning included.")
    cached_tokens: int | None = Field(description="Prompt tokens read from a cache.")
    reasoning_tokens: int | None = Field(description="Completion tokens spent thinking.")
    cost_usd: float | None = Field(description="US dollars; null when the price is unknown.")


class ConversationDetail(ConversationOut):
    """A conversation with its newest page of messages (oldest first); ``next_cursor`` pages
    back through ``GET .../messages?before=``; ``usage`` sums every reply's usage."""

    usage: UsageOut
    messages: list[MessageOut]
    has_more: bool
    next_cursor: str | None


class ConversationList(BaseModel):
    """A page of conversations, pinned first, then newest activity first."""

    items: list[ConversationOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


class ConversationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200, description="Conversations per page, 1–200.")
    cursor: Cursor = optional(description="next_cursor of the previous page.")
    archived: bool = Field(False, description="List the archived conversations instead.")
    project_id: uuid.UUID = optional(description="Only the conversations of this project.")
    loose: bool = Field(False, description="Only the conversations in no project.")
    tag: TagName = optional(description="Only the conversations with this tag (404: no such tag).")


class ConversationCreate(Body):
    title: Title = optional()
    model: ModelId = optional(
        description="A model of GET /api/v1/models; the default one when left out.",
        json_schema_extra=MODELS,
    )
    system_prompt: Text | None = None
    metadata: Metadata = optional()
    project_id: uuid.UUID | None = optional(
        description="A project of yours (404 otherwise); its default model applies when no "
        "model is given."
    )
    tags: list[TagName] = optional(
        max_length=20, description="Its tags (at most 20), created as needed."
    )


class ConversationPatch(Body):
    """Fields left out stay as they are."""

    title: Title = optional()
    pinned: bool = optional()
    archived: bool = optional()
    metadata: Metadata = optional(description="Replaces the whole metadata object.")
    model: ModelId = optional(
        description="A model of GET /api/v1/models.", json_schema_extra=MODELS
    )
    system_prompt: Text | None = optional(description="null removes it.")
    project_id: uuid.UUID | None = optional(description="Move it to a project; null: to none.")
    tags: list[TagName] = optional(max_length=20, description="Replaces its tags (at most 20).")
    tools: list[Annotated[str, Field(max_length=64, json_schema_extra=TOOL_SERVERS)]] | None = (
        optional(
            description="The tool servers the model may use (see ConversationOut.tools: 'webchat', "
            "the operator's, and the user's own added in Settings); null goes back to the default, "
            "all of them."
        )
    )


# --- models ----------------------------------------------------------------------------------


class ModelOut(BaseModel):
    id: str = Field(description="provider/model, as conversations and messages take it.")
    provider: str
    images: bool = Field(
        default=False,
        description="It reads images attached to messages (VISION_MODELS); an image sent to a "
        "model that doesn't is a 400.",
    )


class ModelList(BaseModel):
    items: list[ModelOut]
    default: str = Field(description="The model of a conversation created without one.")


# --- projects --------------------------------------------------------------------------------

ProjectName = Annotated[
    str,
    StringConstraints(pattern=SPLIT_NOT_BLANK, min_length=1, max_length=100),
    AfterValidator(_storable),
]


class ProjectOut(BaseModel):
    """A project: a named folder of conversations."""

    id: uuid.UUID
    name: str
    instructions: str | None = Field(description="Added to the system prompt of its conversations.")
    default_model: str | None = Field(description="The model of new conversations in it.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls(
            id=project.id,
            name=project.name,
            instructions=project.instructions,
            default_model=project.default_model,
            created_at=project.created_at,
            updated_at=project.updated_at,
        )


class ProjectList(BaseModel):
    items: list[ProjectOut]


class ProjectCreate(Body):
    name: ProjectName
    instructions: Text | None = None
    default_model: ModelId | None = Field(
        default=None,
        description="A model of GET /api/v1/models.",
        json_schema_extra=dict(MODELS),
    )


class ProjectPatch(Body):
    """Fields left out stay as they are."""

    name: ProjectName = optional()
    instructions: Text | None = optional(description="null removes them.")
    default_model: ModelId | None = optional(
        description="null: the server's default.", json_schema_extra=MODELS
    )


# --- share links -----------------------------------------------------------------------------


class ShareOut(BaseModel):
    """A share link: a read-only snapshot of a conversation, for anyone with ``url``."""

    id: str = Field(description="The link's secret id: 192 random bits, URL-safe base64.")
    url: str = Field(description="The shared page's absolute URL.")
    json_url: str = Field(description="The shared conversation as JSON (no token needed).")
    conversation_id: uuid.UUID
    all_branches: bool
    include_tools: bool
    include_files: bool = Field(
        description="The messages' files are shown and served under the link."
    )
    views: int
    expires_at: datetime | None
    snapshot_at: datetime = Field(description="When the snapshot shown was taken.")
    created_at: datetime

    @classmethod
    def of(cls, share: Share, url: str, json_url: str) -> ShareOut:
        return cls(
            id=share.id,
            url=url,
            json_url=json_url,
            conversation_id=share.conversation_id,
            all_branches=share.all_branches,
            include_tools=share.include_tools,
            include_files=share.include_files,
            views=share.views,
            expires_at=share.expires_at,
            snapshot_at=share.updated_at,
            created_at=share.created_at,
        )


class ShareList(BaseModel):
    items: list[ShareOut]


class ShareCreate(Body):
    all_branches: bool = Field(False, description="Every branch, not only the active path.")
    include_tools: bool = Field(True, description="Show tool calls and results.")
    include_files: bool = Field(
        False, description="Show and serve the messages' files under the link."
    )
    expires_at: datetime | None = Field(None, description="ISO 8601; null: never expires.")


class SharePatch(Body):
    """Fields left out stay as they are; ``refresh`` takes a new snapshot."""

    all_branches: bool = optional()
    include_tools: bool = optional()
    include_files: bool = optional()
    expires_at: datetime | None = optional(description="null: never expires.")
    refresh: bool = Field(False, description="Show the conversation as it is now.")


class SharedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200, description="Messages per page, 1–200.")
    before: uuid.UUID = optional(description="The messages before this one (next_cursor).")
    leaf: uuid.UUID = optional(description="Every branch shared: the path through this message.")


class SharedFile(FileLink):
    """A file of a shared message, served under the share link (no token needed)."""

    url: str = Field(description="/s/{share_id}/files/{id}: a 404 once the link is revoked.")


class SharedMessage(BaseModel):
    """A message as a share shows it."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    role: RoleName
    content: str
    tool_name: str | None
    tool_call: Any
    tool_result: Any
    files: list[SharedFile] = Field(
        description="The files attached to the message, in order; empty unless the share "
        "includes files."
    )
    created_at: datetime


class SharedConversation(BaseModel):
    """A shared conversation: its title and the newest page of the shared path (oldest first);
    ``next_cursor`` pages back (?before=)."""

    title: str
    all_branches: bool
    snapshot_at: datetime
    messages: list[SharedMessage]
    has_more: bool
    next_cursor: str | None


# --- tool servers ----------------------------------------------------------------------------


class ToolOut(BaseModel):
    name: str = Field(description="The tool's own name on its server.")
    qualified: str = Field(description="The name the model calls it by: server__tool.")
    policy: Literal["ask", "allow", "never"] = Field(
        description="ask: a person approves each call; allow: always runs; never: refused."
    )
    description: str


class ToolServerOut(BaseModel):
    """A tool server as the user sees it: the built-ins, the operator's, their own."""

    id: int | None = Field(description="The user's own server's id (to remove it); else null.")
    name: str
    transport: Literal["built-in", "stdio", "http", "file"]
    target: str | None = Field(description="The command or URL (never an env or header value).")
    connected: bool
    error: str | None = Field(description="Why the server failed, when it did.")
    tools: list[ToolOut]


class ToolServerList(BaseModel):
    items: list[ToolServerOut]


class ToolServerCreate(Body):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$", description="1-32 letters, digits or '-'."
    )
    url: str = Field(
        max_length=2000, description="A Streamable HTTP MCP endpoint on an allowed host."
    )
