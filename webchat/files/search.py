"""Search of the text of text files and PDFs attached to messages: attachment hits, apart from
the message hits of :mod:`webchat.search.query` and with the same query syntax.

The index is the database's (migration 0015): SQLite FTS5 ``files_fts(name, body, file_id)``
(kept by triggers on ``files``; BM25 ranking, porter stemming, diacritics folded);
PostgreSQL a GIN index on ``to_tsvector('english', name || ' ' || coalesce(text, ''))`` of text
and PDF files (``ts_rank``, ``ts_headline``). A file sent in several messages is a hit for each;
files of conversations in Trash, of other users, or never sent are not hits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from ..extensions import db
from ..models import User
from ..search.query import _fts5_query, _websearch_text, highlight, parse_query

PG_VECTOR = "to_tsvector('english', f.name || ' ' || coalesce(f.text, ''))"
MAX_HITS = 50


@dataclass(frozen=True)
class FileHit:
    """An attached text file or PDF whose name or text matches: the file, the message that
    carries it, its conversation, and a snippet (sanitized HTML, matches in ``<mark>``; a
    :class:`~markupsafe.Markup` for the page). Also the API's shape of an attachment hit."""

    file_id: uuid.UUID
    name: str
    media_type: str
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    conversation_title: str
    created_at: datetime
    snippet: str


_SQLITE = text(
    "SELECT f.id, f.name, f.media_type, mf.message_id, m.conversation_id, c.title, m.created_at, "
    "snippet(files_fts, -1, char(2), char(3), '…', 16) "
    "FROM files_fts JOIN files f ON f.id = files_fts.file_id "
    "JOIN message_files mf ON mf.file_id = f.id JOIN messages m ON m.id = mf.message_id "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE files_fts MATCH :match AND f.user_id = :user_id AND c.deleted_at IS NULL "
    "ORDER BY bm25(files_fts), m.created_at DESC LIMIT :limit"
)
_POSTGRES = text(
    "SELECT f.id, f.name, f.media_type, mf.message_id, m.conversation_id, c.title, m.created_at, "
    "ts_headline('english', coalesce(f.text, ''), q, "
    "'StartSel=\x02, StopSel=\x03, MaxFragments=1, MaxWords=24, MinWords=8') "
    f"FROM files f CROSS JOIN websearch_to_tsquery('english', :match) q "
    "JOIN message_files mf ON mf.file_id = f.id JOIN messages m ON m.id = mf.message_id "
    "JOIN conversations c ON c.id = m.conversation_id "
    f"WHERE f.kind IN ('text', 'pdf') AND {PG_VECTOR} @@ q AND f.user_id = :user_id "
    "AND c.deleted_at IS NULL "
    f"ORDER BY ts_rank({PG_VECTOR}, q) DESC, m.created_at DESC LIMIT :limit"
)


def search_files(user: User, q: str, limit: int = 10) -> list[FileHit]:
    """The best ``limit`` (at most 50) attachment hits of ``user`` for ``q`` (the syntax of
    :func:`webchat.search.query.parse_query`); empty when ``q`` has no searchable word."""
    groups = parse_query(q or "")
    if not groups:
        return []
    postgres = db.engine.dialect.name == "postgresql"
    statement = _POSTGRES if postgres else _SQLITE
    match = _websearch_text(groups) if postgres else _fts5_query(groups)
    rows = db.session.execute(
        statement, {"match": match, "user_id": user.id, "limit": max(1, min(limit, MAX_HITS))}
    ).all()
    return [
        FileHit(
            file_id=_uuid(r[0]),
            name=r[1],
            media_type=r[2].split(";")[0],
            message_id=_uuid(r[3]),
            conversation_id=_uuid(r[4]),
            conversation_title=r[5],
            created_at=r[6] if isinstance(r[6], datetime) else datetime.fromisoformat(str(r[6])),
            snippet=highlight(r[7] or r[1]),
        )
        for r in rows
    ]


def takes_attachments(filters: Any) -> bool:
    """Whether attachment hits belong in a search with these
    :class:`webchat.search.query.Filters`: with no filter, or only the user role (files are
    attached to user messages); a model, date or conversation filter narrows to messages."""
    roles = tuple(filters.roles or ())
    narrowed = filters.model or filters.since or filters.until or filters.conversation_id
    return not narrowed and (not roles or "user" in roles)


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
