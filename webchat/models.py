"""Database models: users, conversations, messages (one row each), segments of the message tree,
runs, API tokens, projects, tags and share links.

SQLAlchemy 2.x typed mappings. Every timestamp is stored as naive UTC and read back as an aware UTC
``datetime`` (:class:`UTCDateTime`), so SQLite and PostgreSQL behave the same. Primary keys of
conversations, messages and runs are UUIDv7 (time-ordered, RFC 9562), which keeps index inserts
local and breaks ties between equal ``created_at`` values in creation order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import uuid6
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash

from .extensions import Base, db

if TYPE_CHECKING:  # mypy sees the declarative base; at run time Flask-SQLAlchemy's subclass of it
    Model = Base
else:
    Model = db.Model

JSONType = JSON().with_variant(JSONB(), "postgresql")
T = TypeVar("T")
_HASHER = PasswordHasher()
SIDEBAR = "deleted_at IS NULL AND archived_at IS NULL"  # a conversation the sidebar lists
LOOSE = SIDEBAR + " AND project_id IS NULL"  # argon2id, RFC 9106's second recommended parameters


class Role:
    """Message roles, as in the OpenAI and Anthropic message formats."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"
    ALL = (USER, ASSISTANT, SYSTEM, TOOL)


class Status:
    """Message and run statuses. ``pending → streaming → complete``, or one of the endings."""

    PENDING = "pending"
    STREAMING = "streaming"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    # A run stopped in a stored state until a person allows or denies a tool call (webchat.mcp);
    # neither active (no worker holds it, the reaper leaves it) nor final (it goes on).
    AWAITING = "awaiting_approval"
    ACTIVE = (PENDING, STREAMING)
    FINAL = (COMPLETE, ERROR, CANCELLED, INTERRUPTED)


def utcnow() -> datetime:
    """The current time as an aware UTC ``datetime`` (microsecond resolution)."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A new UUIDv7 (RFC 9562): time-ordered, monotonic within this process."""
    return uuid.UUID(int=uuid6.uuid7().int)


class UTCDateTime(TypeDecorator):
    """A ``DateTime`` stored as naive UTC and returned as aware UTC on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; webchat stores aware UTC datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in gevent's thread pool when gevent has patched threading (gunicorn's
    gevent worker), so a CPU-heavy call (an argon2 hash: ~100-300 ms, its C code releasing the
    GIL) does not stall the worker's other greenlets, open streams included; else directly."""
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent comes with gunicorn[gevent]
        return function(*args)
    if monkey.is_module_patched("threading"):
        return get_hub().threadpool.apply(function, args)
    return function(*args)


class User(UserMixin, Model):
    """A person who signs in. The first user created is the admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session's user id: raising it signs the account out everywhere (0008).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def get_id(self) -> str:
        """Flask-Login's id of the session and remember-me cookie: ``<id>:<generation>``, so
        that raising :attr:`session_generation` invalidates every cookie issued before."""
        return f"{self.id}:{self.session_generation}"

    @property
    def is_active(self) -> bool:
        """False for a disabled account (Flask-Login then refuses to sign it in)."""
        return self.disabled_at is None

    def set_password(self, password: str) -> None:
        """Store an argon2id hash of ``password`` (RFC 9106, argon2-cffi's default
        parameters), never the password."""
        self.password_hash = off_the_loop(_HASHER.hash, password)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash (argon2, or an older werkzeug
        scrypt/pbkdf2 hash from before migration 0008)."""
        if self.password_hash.startswith("$argon2"):
            try:
                return off_the_loop(_HASHER.verify, self.password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
        return check_password_hash(self.password_hash, password)

    def password_needs_rehash(self) -> bool:
        """True when the stored hash is not argon2 or not of the current parameters."""
        if not self.password_hash.startswith("$argon2"):
            return True
        try:
            return _HASHER.check_needs_rehash(self.password_hash)
        except InvalidHashError:
            return True


class Conversation(Model):
    """A conversation of one user: its title, model, system prompt and organising flags."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_user_updated", "user_id", "updated_at", "id"),
        Index(  # the sidebar's rows only (migration 0005)
            "ix_conversations_sidebar",
            "user_id",
            "pinned",
            "updated_at",
            "id",
            sqlite_where=text("deleted_at IS NULL AND archived_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL AND archived_at IS NULL"),
        ),
        Index(  # the sidebar's loose conversations, in no project (migration 0013)
            "ix_conversations_loose",
            "user_id",
            "pinned",
            "updated_at",
            "id",
            sqlite_where=text(LOOSE),
            postgresql_where=text(LOOSE),
        ),
        Index(  # a project's conversations (migration 0013)
            "ix_conversations_project",
            "project_id",
            "pinned",
            "updated_at",
            "id",
            sqlite_where=text(SIDEBAR),
            postgresql_where=text(SIDEBAR),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The project (folder) it is in, or None: a loose conversation (migration 0013).
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL", name="fk_conversations_project_id_projects"),
        default=None,
    )
    title: Mapped[str] = mapped_column(String(200), default="New chat")
    model: Mapped[str] = mapped_column(String(200), default="demo/echo")
    system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Kept by database triggers on messages (migration 0003); never written by the app.
    message_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # The leaf of the path the person reads and continues (webchat.conversations.tree).
    active_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(
            "messages.id",
            ondelete="SET NULL",
            use_alter=True,
            name="fk_conversations_active_message_id_messages",
        ),
        default=None,
    )
    # The sums of its replies' metadata.usage (migration 0009), added to by the store as each
    # reply step finishes; None before any reply reported usage.
    usage: Mapped[dict | None] = mapped_column(JSONType, default=None)

    user: Mapped[User] = relationship()
    tags: Mapped[list[Tag]] = relationship(
        secondary="conversation_tags", order_by="Tag.name", lazy="select"
    )


class Project(Model):
    """A user's named folder of conversations (migration 0013).

    ``instructions`` are added to the system prompt of its conversations (after their own);
    ``default_model`` is the model of a conversation started in it (None: the server's default).
    Deleting a project moves its conversations out (``ON DELETE SET NULL``).
    """

    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_user_name", "user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    instructions: Mapped[str | None] = mapped_column(Text, default=None)
    default_model: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tag(Model):
    """A user's free label for conversations, unique by ``name`` per user (migration 0013)."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_tags_user_name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


conversation_tags = Table(
    "conversation_tags",
    Model.metadata,
    Column(
        "conversation_id",
        Uuid,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag_id", Uuid, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_conversation_tags_tag", "tag_id", "conversation_id"),
)


class Share(Model):
    """A read-only link to a snapshot of a conversation (migration 0013).

    ``id`` is the link's secret: 32 URL-safe characters of ``secrets.token_urlsafe(24)`` (192
    random bits). The snapshot copies no message: ``leaf_id`` is the active leaf when it was
    taken, ``(cutoff_at, cutoff_id)`` the position of the conversation's newest message then,
    and ``leaves`` (every branch only) the ids of the tree's leaves then. A message after the
    cut-off is never shown until the owner updates the snapshot. ``include_tools``: tool calls
    and results are shown; ``include_files``: the shown messages' files are shown and served
    under the link (``/s/<id>/files/<file_id>``).
    ``views`` counts page and JSON reads; past ``expires_at`` the link is a 404.
    """

    __tablename__ = "shares"
    __table_args__ = (
        Index("ix_shares_user_created", "user_id", "created_at"),
        Index("ix_shares_conversation", "conversation_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    all_branches: Mapped[bool] = mapped_column(Boolean, default=False)
    include_tools: Mapped[bool] = mapped_column(Boolean, default=True)
    include_files: Mapped[bool] = mapped_column(Boolean, default=False)
    leaf_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    cutoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cutoff_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    leaves: Mapped[list | None] = mapped_column(JSONType, default=None)
    views: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversation: Mapped[Conversation] = relationship()


class Segment(Model):
    """A chain of messages in the tree of a conversation, each the first child of the one before.

    A message's first child continues its parent's segment; any later child (an edit, a
    regenerated reply) starts a segment of its own, hanging under ``parent_message_id``. Segments
    never split, so a path from a root to a leaf is a few index ranges ``(segment_id, depth)``,
    one per segment it crosses, whatever its length (see :mod:`webchat.conversations.tree`).

    ``start_depth``..``end_depth`` are the depths of its messages (a root message has depth 0);
    ``tail_id`` is its last message, created at ``last_at``. ``newest_leaf_id`` / ``newest_at``
    are the newest leaf of the segment and of every segment below it (its subtree).
    """

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_parent_newest", "parent_segment_id", "newest_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_segment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), default=None
    )
    # The message it hangs under (no foreign key: messages refer to segments).
    parent_message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None, index=True)
    start_depth: Mapped[int] = mapped_column(Integer)
    end_depth: Mapped[int] = mapped_column(Integer)
    tail_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    newest_leaf_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    newest_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Message(Model):
    """One message of a conversation: user, assistant, system or tool.

    ``content`` grows by appended deltas while ``status`` is ``streaming``; only
    :mod:`webchat.streaming.store` writes an assistant reply's content and status.
    ``content_html`` is the sanitized rendering, stored once the message is final.
    Messages form a tree by ``parent_id``; ``segment_id`` and ``depth`` (0 for a root) place a
    message in it for reading paths by index range (:class:`Segment`).
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
        Index("ix_messages_segment_depth", "segment_id", "depth", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True, default=None
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL", use_alter=True, name="fk_messages_run_id_runs"),
        index=True,
        default=None,
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str | None] = mapped_column(Text, default=None)
    # The model's thinking, apart from the answer in ``content`` (migration 0007); grows by
    # appends while the reply streams, like ``content``.
    reasoning: Mapped[str | None] = mapped_column(Text, default=None)
    tool_name: Mapped[str | None] = mapped_column(String(200), default=None)
    tool_call: Mapped[Any | None] = mapped_column(JSONType, default=None)
    tool_result: Mapped[Any | None] = mapped_column(JSONType, default=None)
    status: Mapped[str] = mapped_column(String(32), default=Status.COMPLETE)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[dict] = mapped_column("metadata", JSONType, default=dict)
    segment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), default=None
    )
    depth: Mapped[int] = mapped_column(Integer, default=0)
    feedback_rating: Mapped[str | None] = mapped_column(String(8), default=None)  # up | down
    feedback_comment: Mapped[str | None] = mapped_column(Text, default=None)
    # SHA-256 of the canonical path from the root to this message, for the messages of gateway
    # conversations (migration 0012, :mod:`webchat.gateway.canonical`); None elsewhere.
    path_hash: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_active(self) -> bool:
        """True while the message is pending or streaming."""
        return self.status in Status.ACTIVE


class Run(Model):
    """One generation of a reply: it belongs to no request, and outlives every connection.

    A run answers ``user_message_id``; its first reply message is ``message_id``; tool calls and
    tool results it produces are further messages carrying its ``run_id``. ``heartbeat_at`` is
    touched while it works; the reaper interrupts runs whose heartbeat is stale.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
        Index("ix_runs_conversation_status", "conversation_id", "status"),
        Index(  # the active runs only (migration 0011)
            "ix_runs_active",
            "conversation_id",
            sqlite_where=text("status IN ('pending', 'streaming')"),
            postgresql_where=text("status IN ('pending', 'streaming')"),
        ),
        Index("ix_runs_request_key", "request_key", unique=True),  # migration 0012
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True, default=None
    )
    user_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default=Status.PENDING)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # What a gateway request asked of the run (migration 0012): ``{"client_tools": true,
    # "tools": [...], "params": {...}, "path_hash": <hash of the message it answers>}``.
    options: Mapped[dict | None] = mapped_column(JSONType, default=None)
    # ``<user id>:<Idempotency-Key>`` of the gateway request that started it; unique.
    request_key: Mapped[str | None] = mapped_column(String(300), default=None)


class ApiToken(Model):
    """A per-user API token. Only its SHA-256 is stored; the token is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship()


class McpServer(Model):
    """A Streamable HTTP MCP server a user added for their own conversations (migration 0014).
    Only a name and a URL on a host of ``MCP_USER_HOSTS``: no command, no headers (secrets live
    in the environment, never in the database)."""

    __tablename__ = "mcp_servers"
    __table_args__ = (Index("ix_mcp_servers_user_name", "user_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Model):
    """A security event: sign-in (success, failure), sign-out, password change or reset,
    sessions revoked, token created or revoked, export, import, account deleted, admin actions.

    ``user_id`` is the account it concerns (its events go when it is deleted); ``actor_id`` the
    admin who acted on it, if not the person themself. ``detail`` holds small facts (a token's
    name, a count, the email typed at a failed sign-in), never message content or secrets.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])


# --- Files attached to messages (issue 14, migration 0015) -----------------------------------


class Blob(Model):
    """The bytes of one file content, stored once by its SHA-256 (hex): in the instance folder
    (``backend = "folder"``, ``data`` NULL) or in this row (``backend = "database"``). A blob
    lives while a :class:`File` refers to it (as its content or its thumbnail)."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)  # bytes
    backend: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class File(Model):
    """A file a user uploaded: its name, sniffed media type and kind (``image``, ``text`` or
    ``pdf``), size in bytes, its content (:class:`Blob` ``sha256``), for images a thumbnail blob
    and the size in pixels, for text and PDFs the text (sent to models and searched).
    ``flask files gc`` deletes it once no message refers to it (an upload never sent: after
    ``FILES_UNATTACHED_HOURS``)."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_user_sha256", "user_id", "sha256"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # image | text | pdf
    size: Mapped[int] = mapped_column(Integer)  # bytes, as stored
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    thumbnail_sha256: Mapped[str | None] = mapped_column(
        ForeignKey("blobs.sha256"), default=None, index=True
    )
    width: Mapped[int | None] = mapped_column(Integer, default=None)  # pixels
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a message first referred to it: from then on, no reference left means no use left.
    attached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class MessageFile(Model):
    """A message's reference to a file, in the order attached (``position`` from 0)."""

    __tablename__ = "message_files"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
