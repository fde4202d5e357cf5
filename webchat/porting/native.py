"""Import webchat's own JSON export (see :mod:`webchat.porting.export` for the format).

Accepted: one conversation document, a JSON array of them, NDJSON (one per line), or a ZIP of
``.json`` documents (the bulk export). A conversation comes back exactly — every field of every
message and run, with the same ids — unless its ids are taken on this server (imported before by
the same person: reported and left alone; someone else's: imported with new ids, links kept).
Stored HTML is never taken from the file: it is rendered again from the Markdown, so a crafted
file cannot inject markup.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import Uuid, insert, select

from .. import tree
from ..conversations import projects
from ..db import begin_write
from ..errors import InvalidInput
from ..extensions import db
from ..files import services as file_services
from ..models import Conversation, Message, Project, Run, User, UTCDateTime, new_id
from ..providers import available_models
from ..rendering import render_markdown
from ..usage.services import usage_of
from . import drafts
from .export import FORMAT, VERSION, fields
from .report import ImportReport

SOURCE = "webchat"


class Unreadable(ValueError):
    """The file is not webchat JSON at all."""


def documents(fileobj: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """``(label, parsed JSON)`` of each conversation document in the file (see module doc);
    a ZIP member or NDJSON line that is not JSON is yielded as ``(label, Unreadable)``."""
    head = fileobj.read(4)
    fileobj.seek(0)
    if head.startswith(b"PK"):
        try:
            archive = zipfile.ZipFile(fileobj)
        except zipfile.BadZipFile as exc:
            raise Unreadable(f"not a readable ZIP: {exc}") from None
        with archive:
            for name in archive.namelist():
                if name.endswith(".json"):
                    yield name, _parse(archive.read(name))
        return
    raw = fileobj.read()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        yield "document", data
    elif isinstance(data, list):
        for i, doc in enumerate(data):
            yield f"#{i + 1}", doc
    else:
        for i, line in enumerate(raw.splitlines()):
            if line.strip():
                yield f"line {i + 1}", _parse(line)


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        return Unreadable(f"not JSON: {exc}")


def _value(column: Any, value: Any) -> Any:
    """An exported JSON value back as the column's Python value; raises ValueError."""
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        parsed = drafts.from_timestamp(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValueError(f"{column.name}: {value!r} is not an ISO 8601 time")
        return parsed
    if isinstance(column.type, Uuid):
        return uuid.UUID(str(value))
    return value


def _rows(model: type, items: Any) -> list[dict[str, Any]]:
    """Model attribute dicts from exported rows; raises ValueError for a malformed one."""
    if not isinstance(items, list):
        raise ValueError(f"{model.__tablename__} is not a list")  # type: ignore[attr-defined]
    table = model.__table__  # type: ignore[attr-defined]
    out = []
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            raise ValueError(f"a row of {table.name} is not an object with an id")
        out.append(
            {key: _value(table.c[name], item[name]) for key, name in fields(model) if name in item}
        )
    return out


def _taken(model: type, ids: list[uuid.UUID]) -> bool:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        if db.session.scalars(select(model.id).where(model.id.in_(chunk)).limit(1)).first():  # type: ignore[attr-defined]
            return True
    return False


def _relink(
    messages: list[dict[str, Any]], runs: list[dict[str, Any]], fresh: bool, report: ImportReport
) -> dict[uuid.UUID, uuid.UUID]:
    """Give every row a new id when ``fresh``, and point links at rows of this document only
    (a link to a row the document does not hold is dropped, and noted). Returns old id → id."""
    # New ids (UUIDv7, increasing) are handed out in the old ids' order, so messages with equal
    # created_at keep their order.
    ids = sorted({row["id"] for row in (*messages, *runs)})
    mapping = {old: (new_id() if fresh else old) for old in ids}

    def link(row: dict[str, Any], key: str) -> None:
        value = row.get(key)
        if value is not None and value not in mapping:
            report.notes[f"{key} pointing outside the conversation (dropped)"] += 1
        row[key] = mapping.get(value) if value is not None else None

    for row in messages:
        row["id"] = mapping[row["id"]]
        link(row, "parent_id")
        link(row, "run_id")
    for row in runs:
        row["id"] = mapping[row["id"]]
        link(row, "message_id")
        link(row, "user_message_id")
    return mapping


def _organising(head: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The ``project`` fields and ``tags`` of a document's conversation (None and [] when an
    export from before migration 0013 has none). Raises ``ValueError`` for malformed ones."""
    project = head.get("project")
    if project is not None and not (
        isinstance(project, dict) and isinstance(project.get("name"), str)
    ):
        raise ValueError("project must be an object with a name")
    tags = head.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of strings")
    try:
        return project, projects.parse_tags(tags)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _project_named(user: User, fields: dict[str, Any] | None) -> Project | None:
    """The user's project named as ``fields["name"]``, created from ``fields`` when they have
    none of that name (a default model not offered here is left out)."""
    if fields is None:
        return None
    name = " ".join(str(fields["name"]).split())
    found = db.session.scalars(
        select(Project).where(Project.user_id == user.id, Project.name == name).limit(1)
    ).first()
    if found is not None:
        return found
    model = fields.get("default_model")
    return projects.create_project(
        user,
        name,
        fields.get("instructions"),
        model if isinstance(model, str) and model in available_models() else None,
    )


def import_document(
    user: User, doc: Any, label: str, report: ImportReport, read_blob: Any = None
) -> None:
    """Import one conversation document for ``user`` (one commit), counting into ``report``;
    a malformed document goes into ``report.failed``. Its files come back from
    ``read_blob(sha256) -> bytes | None`` (a ZIP export's ``files/<sha256>`` members)."""
    if isinstance(doc, Unreadable):
        report.failed.append((label, str(doc)))
        return
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        report.failed.append((label, "not a webchat conversation document"))
        return
    if doc.get("version") != VERSION:
        report.failed.append((label, f"version {doc.get('version')!r} is not supported"))
        return
    try:
        head = doc.get("conversation")
        conversation = _rows(Conversation, [head])[0]
        project_fields, tag_list = _organising(head)
        messages = _rows(Message, doc.get("messages", []))
        runs = _rows(Run, doc.get("runs", []))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        report.failed.append((label, f"malformed: {exc}"))
        return
    begin_write()
    existing = db.session.get(Conversation, conversation["id"])
    if existing is not None and existing.user_id == user.id:
        report.conversations_unchanged += 1
        report.notes["already on this server (left alone)"] += 1
        db.session.rollback()
        return
    fresh = (
        existing is not None
        or _taken(Message, [m["id"] for m in messages])
        or _taken(Run, [r["id"] for r in runs])
    )
    if fresh:
        conversation["id"] = new_id()
        report.notes["ids taken on this server (imported with new ids)"] += 1
    mapping = _relink(messages, runs, fresh, report)
    # The active leaf is set once its message exists; absent or unknown: the newest message.
    active = mapping.get(conversation.pop("active_message_id", None))
    for row in messages:
        row["conversation_id"] = conversation["id"]
        if row.get("content_html") is not None:  # rendered here, never trusted from the file
            row["content_html"] = render_markdown(row.get("content") or "")
    for row in runs:
        row["conversation_id"] = conversation["id"]
    if "usage" not in conversation:  # an export from before migration 0009
        conversation["usage"] = usage_of(row.get("meta") for row in messages)
    try:
        project = _project_named(user, project_fields)
    except InvalidInput as exc:
        report.failed.append((label, f"malformed: project: {exc.message}"))
        db.session.rollback()
        return
    conversation["project_id"] = project.id if project is not None else None
    db.session.execute(insert(Conversation), [{**conversation, "user_id": user.id}])
    if tag_list:
        imported = db.session.get(Conversation, conversation["id"])
        assert imported is not None
        projects.set_tags(imported, tag_list)
    ordered = drafts.parents_first(messages, lambda m: [m["id"]], lambda m: m.get("parent_id"))
    drafts.insert_rows(ordered, runs)
    if doc.get("files"):  # issue 14
        file_services.import_rows(user, doc, mapping, read_blob or _no_blob, report.notes)
    if active is None and messages:
        active = max(messages, key=lambda m: (m["created_at"], m["id"]))["id"]
    tree.set_active(conversation["id"], active)
    report.conversations_created += 1
    report.messages += len(messages)
    report.conversation_ids.append(str(conversation["id"]))
    db.session.commit()


def import_file(user: User, fileobj: IO[bytes]) -> ImportReport:
    """Import every conversation document of a webchat export file for ``user`` (a commit per
    conversation); returns the report. Raises :class:`Unreadable` for a broken ZIP."""
    report = ImportReport(format=SOURCE, files=1)
    with _blobs(fileobj) as read_blob:
        for label, doc in documents(fileobj):
            import_document(user, doc, label, report, read_blob)
    return report


def _no_blob(_sha256: str) -> bytes | None:
    return None


@contextlib.contextmanager
def _blobs(fileobj: IO[bytes]) -> Iterator[Any]:
    """``read_blob(sha256) -> bytes | None`` over a ZIP export's ``files/<sha256>`` members
    (a second reader of the same seekable file: zipfile seeks before every read)."""
    head = fileobj.read(4)
    fileobj.seek(0)
    if not head.startswith(b"PK"):
        yield _no_blob
        return
    try:
        archive = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile:
        yield _no_blob
        return
    names = set(archive.namelist())

    def read_blob(sha256: str) -> bytes | None:
        name = f"files/{sha256}"
        return archive.read(name) if name in names else None

    with archive:
        yield read_blob


def import_bytes(user: User, data: bytes) -> ImportReport:
    """:func:`import_file` for bytes in memory."""
    return import_file(user, io.BytesIO(data))
