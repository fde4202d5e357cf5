"""Export: one conversation as webchat JSON or Markdown; all of a user's as a ZIP or NDJSON.

Every export is a generator of text or bytes, so a response streams it: messages are read in
keyset batches of :data:`BATCH` (``(created_at, id)``, the conversation's index) and let go once
written, so memory stays flat whatever the conversation's or the history's size.

The JSON document (``format`` ``"webchat.conversation"``, ``version`` 1)::

    {"format": "webchat.conversation", "version": 1, "exported_at": "<ISO 8601>",
     "conversation": {"id", "title", "model", "system_prompt", "metadata", "pinned",
                      "archived_at", "deleted_at", "created_at", "updated_at",
                      "active_message_id", "usage",
                      "project": {"name", "instructions", "default_model"} | null,
                      "tags": ["<name>", ...]},
     "messages": [{every column of the message but conversation_id, segment_id, depth}, ...],
     "runs": [{every column of the run but conversation_id}, ...],
     "files": [{"id", "name", "media_type", "kind", "size", "sha256", "created_at"}, ...],
     "message_files": [{"message_id", "file_id", "position"}, ...]}

The files' bytes are not in the document: the ZIP export carries each once, as the member
``files/<sha256>`` (see :func:`webchat.files.services.export_rows`).

Messages are oldest first; every branch of the tree is there (``parent_id``), and
``active_message_id`` is the leaf of the path the person reads. ``segment_id`` and ``depth``
index the tree and are rebuilt on import. Times are ISO 8601 UTC with microseconds, ids are
UUID strings, JSON columns are as stored; so :mod:`webchat.porting.native` re-imports a
document exactly (the whole tree, its active leaf, feedback). The project is exported by its
fields, not its id (an import puts the conversation in the importer's project of that name,
created if need be), and the tags by name.
"""

from __future__ import annotations

import functools
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, inspect, select, tuple_
from sqlalchemy.orm import Mapper

from .. import tree
from ..extensions import db
from ..files import services as file_services
from ..models import (
    Conversation,
    Message,
    Project,
    Role,
    Run,
    Segment,
    Tag,
    User,
    conversation_tags,
    utcnow,
)

FORMAT = "webchat.conversation"
VERSION = 1
BATCH = 1_000  # rows read per query
ZIP_FLUSH_BYTES = 256 * 1024  # compressed bytes buffered before a ZIP chunk is sent
EXCLUDED: dict[type, set[str]] = {
    # the owner is whoever imports; counts derive; the project goes by its fields ("project")
    Conversation: {"user_id", "message_count", "project_id"},
    Message: {"conversation_id", "segment_id", "depth"},  # the tree's index: rebuilt on import
    Run: {"conversation_id"},
}


@functools.cache  # asked once per exported or imported row
def fields(model: type[Conversation] | type[Message] | type[Run]) -> tuple[tuple[str, str], ...]:
    """``(attribute, column name)`` of every exported column of ``model``, in table order."""
    excluded = EXCLUDED.get(model, set())
    mapper: Mapper[Any] = inspect(model)
    return tuple(
        (attr.key, attr.columns[0].name)
        for attr in mapper.column_attrs
        if attr.columns[0].name not in excluded and attr.key not in excluded
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def row_dict(row: Conversation | Message | Run) -> dict[str, Any]:
    """A model row as JSON-ready ``{column name: value}`` (see :func:`fields`)."""
    return {name: _json_value(getattr(row, key)) for key, name in fields(type(row))}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _batches(model: type[Message] | type[Run], conversation: Conversation) -> Iterator[Any]:
    """Rows of ``model`` of the conversation by ``(created_at, id)``, read :data:`BATCH` at a
    time and expunged once yielded."""
    after = None
    while True:
        query: Select[Any] = select(model).where(model.conversation_id == conversation.id)
        if after is not None:
            query = query.where(tuple_(model.created_at, model.id) > after)
        order = (model.created_at, model.id)
        rows = db.session.scalars(query.order_by(*order).limit(BATCH)).all()
        for row in rows:
            yield row
            db.session.expunge(row)
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


def messages_of(conversation: Conversation) -> Iterator[Message]:
    """The conversation's messages, oldest first, in bounded memory."""
    return _batches(Message, conversation)


def json_chunks(conversation: Conversation) -> Iterator[str]:
    """The conversation as one webchat JSON document, in pieces (one per message or run)."""
    project = db.session.get(Project, conversation.project_id) if conversation.project_id else None
    head = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "conversation": {
            **row_dict(conversation),
            "project": (
                {
                    "name": project.name,
                    "instructions": project.instructions,
                    "default_model": project.default_model,
                }
                if project is not None
                else None
            ),
            "tags": list(
                db.session.scalars(
                    select(Tag.name)
                    .join(conversation_tags, conversation_tags.c.tag_id == Tag.id)
                    .where(conversation_tags.c.conversation_id == conversation.id)
                    .order_by(Tag.name)
                )
            ),
        },
    }
    yield _dumps(head)[:-1] + ',"messages":['
    for i, message in enumerate(messages_of(conversation)):
        yield ("," if i else "") + _dumps(row_dict(message))
    yield '],"runs":['
    for i, run in enumerate(_batches(Run, conversation)):
        yield ("," if i else "") + _dumps(row_dict(run))
    attached = file_services.export_rows(conversation.id)  # issue 14
    yield '],"files":' + _dumps(attached["files"])
    yield ',"message_files":' + _dumps(attached["message_files"]) + "}"


def to_json(conversation: Conversation) -> dict[str, Any]:
    """The whole JSON document as a dict (for small conversations and tests)."""
    return json.loads("".join(json_chunks(conversation)))


def _fence(text: str, info: str = "") -> str:
    """``text`` in a fenced code block whose fence is longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}\n"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _tool_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


def markdown_chunks(conversation: Conversation, branches: bool = False) -> Iterator[str]:
    """The conversation as readable Markdown: a heading per turn (your message, the assistant's
    reply with its tool calls and results as fenced blocks, a system note), oldest first.

    What a person reads: the active path (root to the active leaf). With ``branches``, every
    branch: the active path under ``## Branch 1``, then each other branch under a heading of
    its own (``## Branch n · from message d, after …``) with the messages where it departs from
    the branches above, down to its end (a branch point's shared messages are printed once).
    Turns are ``###`` then. Read in batches of :data:`BATCH` messages, in bounded memory.
    """
    yield f"# {conversation.title}\n\n"
    yield (
        f"*Exported from webchat on {_when(utcnow())} · model `{conversation.model}` · "
        f"started {_when(conversation.created_at)}*\n"
    )
    if conversation.system_prompt:
        yield "\n**System prompt**\n\n" + _fence(conversation.system_prompt)
    path = tree.active_path(conversation)
    shown = _along(path) if path is not None else messages_of(conversation)
    if not branches:
        yield from _turns(shown, "##")
        return
    yield "\n## Branch 1 · the active path\n"
    yield from _turns(shown, "###")
    for number, (segment_id, lo, hi, parent) in enumerate(_other_branches(conversation, path), 2):
        if parent is None:
            yield f"\n## Branch {number} · another first message\n"
        else:
            gist = " ".join(parent.content.split())
            gist = gist[:60] + ("…" if len(gist) > 60 else "")
            who = {Role.USER: "you", Role.ASSISTANT: "the assistant"}.get(parent.role, parent.role)
            yield f"\n## Branch {number} · from message {lo + 1}, after {who}: “{gist}”\n"
        yield from _turns(_segment_messages(segment_id, lo, hi), "###")


def _along(path: tree.Path) -> Iterator[Message]:
    """The messages of ``path``, root first, :data:`BATCH` at a time (expunged once yielded)."""
    for lo in range(0, path.length, BATCH):
        for message in path.messages(lo, lo + BATCH - 1):
            yield message
            db.session.expunge(message)


def _segment_messages(segment_id: uuid.UUID, lo: int, hi: int) -> Iterator[Message]:
    """Messages ``lo``..``hi`` (depths) of one segment, in order, :data:`BATCH` at a time."""
    for start in range(lo, hi + 1, BATCH):
        rows = db.session.scalars(
            select(Message)
            .where(
                Message.segment_id == segment_id,
                Message.depth.between(start, min(hi, start + BATCH - 1)),
            )
            .order_by(Message.depth)
        ).all()
        for message in rows:
            yield message
            db.session.expunge(message)


def _other_branches(
    conversation: Conversation, path: tree.Path | None
) -> list[tuple[uuid.UUID, int, int, Message | None]]:
    """Every part of the tree off ``path``, as ``(segment id, lo, hi, the message it hangs
    under)``: a segment the path does not cross, or the rest of one it leaves before its end.
    Ordered by where they depart (depth), then by age; one query over the conversation's
    segments (a row per branch point) and one per branch for the message it hangs under."""
    crossed = {span.segment_id: span.hi for span in (path.spans if path is not None else [])}
    parts: list[tuple[int, uuid.UUID, int, uuid.UUID | None]] = []
    for seg in db.session.scalars(
        select(Segment).where(Segment.conversation_id == conversation.id)
    ):
        if seg.id not in crossed:
            parts.append((seg.start_depth, seg.id, seg.end_depth, seg.parent_message_id))
        elif crossed[seg.id] < seg.end_depth:
            on_path = path.messages(crossed[seg.id], crossed[seg.id]) if path else []
            parts.append((crossed[seg.id] + 1, seg.id, seg.end_depth, on_path[0].id))
    return [
        (segment_id, lo, hi, db.session.get(Message, parent) if parent is not None else None)
        for lo, segment_id, hi, parent in sorted(parts)
    ]


def _turns(messages: Iterable[Message], heading: str) -> Iterator[str]:
    """Markdown of ``messages`` (in order): a ``heading`` per message of yours, per reply."""
    current_run = object()
    for message in messages:
        in_turn = message.run_id is not None and message.run_id == current_run
        current_run = message.run_id
        if message.role in (Role.USER, Role.SYSTEM):
            who = "You" if message.role == Role.USER else "System"
            yield f"\n{heading} {who} · {_when(message.created_at)}\n\n{message.content.rstrip()}\n"
            yield from _file_links(message)
            continue
        if not in_turn:
            model = (message.meta or {}).get("model") or ""
            label = "Assistant" + (f" · {model}" if model else "")
            yield f"\n{heading} {label} · {_when(message.created_at)}\n"
        if message.role == Role.TOOL:
            result = message.tool_result if isinstance(message.tool_result, dict) else {}
            failed = result.get("error")
            body = failed or message.content or result.get("result", message.tool_result)
            verb = "Error from" if failed else "Result of"
            yield f"\n**{verb} `{message.tool_name or 'tool'}`**\n\n" + _fence(_tool_text(body))
            continue
        if message.reasoning:
            thinking = message.reasoning.strip().replace("\n", "\n> ")
            yield f"\n> **Thinking**\n>\n> {thinking}\n"
        if message.content:
            yield f"\n{message.content.rstrip()}\n"
        if message.tool_call:
            call = message.tool_call if isinstance(message.tool_call, dict) else {}
            name = message.tool_name or call.get("name") or "tool"
            arguments = _tool_text(call.get("arguments", {}))
            yield f"\n**Called `{name}`**\n\n" + _fence(arguments, "json")
        if message.error:
            yield f"\n> {message.error}\n"


def _file_links(message: Message) -> Iterator[str]:
    """Markdown links to the files of a user message (issue 14): ``- [name](/files/<id>)``,
    where webchat serves them to their owner."""
    files = file_services.files_of([message]).get(message.id, [])
    if files:
        lines = "".join(
            f"- [{_link_text(f.name)}]({file_services.file_url(f)}) "
            f"({f.media_type.split(';')[0]})\n"
            for f in files
        )
        yield f"\n**Files**\n\n{lines}"


def _link_text(name: str) -> str:
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", name)


def user_conversations(user: User, project: Project | None = None) -> Iterator[Conversation]:
    """The user's conversations not in Trash (archived included; only ``project``'s if given),
    oldest first, read in batches of 100 and yielded detached (expunged, as :func:`_batches`
    does with messages); the read transaction ends between conversations."""
    user_id = user.id  # the rollbacks below expire ``user``
    project_id = project.id if project is not None else None
    after = None
    while True:
        query = select(Conversation).where(
            Conversation.user_id == user_id, Conversation.deleted_at.is_(None)
        )
        if project_id is not None:
            query = query.where(Conversation.project_id == project_id)
        if after is not None:
            query = query.where(tuple_(Conversation.created_at, Conversation.id) > after)
        order = (Conversation.created_at, Conversation.id)
        rows = db.session.scalars(query.order_by(*order).limit(100)).all()
        if not rows:
            return
        after = (rows[-1].created_at, rows[-1].id)
        for conversation in rows:
            # Detached, a rollback leaves the batch loaded instead of expiring it (which would
            # read each conversation again, one SELECT apiece).
            db.session.expunge(conversation)
        for conversation in rows:
            yield conversation
            db.session.rollback()  # a long download holds no snapshot open between them


def filename(conversation: Conversation, extension: str) -> str:
    """``2024-05-01-holiday-plans-<id>.<extension>``: a date, a slug of the title, the id."""
    slug = re.sub(r"[^a-z0-9]+", "-", conversation.title.lower()).strip("-")[:50] or "conversation"
    return f"{conversation.created_at:%Y-%m-%d}-{slug}-{conversation.id}.{extension}"


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that keeps what is written until taken (zipfile writes
    data descriptors to such a stream, so a ZIP can be produced front to back)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def zip_chunks(user: User, project: Project | None = None) -> Iterator[bytes]:
    """All of the user's conversations (not in Trash; ``project``'s alone if given) as a ZIP of
    webchat JSON files, one per conversation, and the bytes of their files (``files/<sha256>``,
    each once), produced as it is sent: at most one conversation's pieces and
    :data:`ZIP_FLUSH_BYTES` of compressed output are held at a time."""
    sink = _Sink()
    written: set[str] = set()  # each file's bytes once, however many messages use them
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for conversation in user_conversations(user, project):
            with archive.open(filename(conversation, "json"), "w", force_zip64=True) as member:
                for piece in json_chunks(conversation):
                    member.write(piece.encode())
                    if sink.size >= ZIP_FLUSH_BYTES:
                        yield sink.take()
            yield sink.take()
            for file in file_services.conversation_files(conversation.id)[0]:  # issue 14
                if file.sha256 not in written:
                    written.add(file.sha256)
                    archive.writestr(f"files/{file.sha256}", file_services.read(file))
                    yield sink.take()
    yield sink.take()


def ndjson_chunks(user: User, project: Project | None = None) -> Iterator[bytes]:
    """All of the user's conversations (``project``'s alone if given) as NDJSON: one webchat
    JSON document per line."""
    for conversation in user_conversations(user, project):
        for piece in json_chunks(conversation):
            yield piece.encode()
        yield b"\n"
