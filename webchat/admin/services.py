"""What the admin page and ``flask users`` read: each account's storage."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import LargeBinary, cast, func, select

from ..extensions import db
from ..models import Conversation, Message, User


@dataclass
class Storage:
    """One account and what it stores: conversations, messages, and bytes of message text
    (Markdown and its rendered HTML, UTF-8)."""

    user: User
    conversations: int
    messages: int
    bytes: int


def _octets(column):
    if db.engine.dialect.name == "postgresql":
        return func.coalesce(func.octet_length(column), 0)
    return func.coalesce(func.length(cast(column, LargeBinary)), 0)


def storage() -> list[Storage]:
    """Every account (oldest first) with its storage; one grouped query."""
    size = _octets(Message.content) + _octets(Message.content_html)
    rows = db.session.execute(
        select(
            User,
            func.count(func.distinct(Conversation.id)),
            func.count(Message.id),
            func.coalesce(func.sum(size), 0),
        )
        .outerjoin(Conversation, Conversation.user_id == User.id)
        .outerjoin(Message, Message.conversation_id == Conversation.id)
        .group_by(User.id)
        .order_by(User.id)
    ).all()
    return [Storage(user, int(c), int(m), int(b)) for user, c, m, b in rows]


def human_bytes(n: int) -> str:
    """``n`` bytes as ``"1.2 MB"`` (powers of 1000)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
