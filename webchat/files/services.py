"""What webchat does with files: take an upload, find a user's file, attach files to a message,
read them back for the page, the API and the models, and collect the ones nobody uses.

Every lookup of a file filters by its owner here (:func:`owned_file`); another user's file is
"not found". Functions flush; the caller commits.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy import delete, exists, func, or_, select

from ..errors import InvalidInput
from ..extensions import db
from ..models import Blob, File, Message, MessageFile, User, off_the_loop, utcnow
from ..providers.base import Attachment
from . import storage
from .sniff import Refused, Sniffed, sniff

MAX_FILES_PER_MESSAGE = 20
MAX_NAME_CHARS = 255


class NotFound(LookupError):
    """No such file for this user (missing, or someone else's)."""


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


def clean_name(name: str | None) -> str:
    """A file name fit to store and show: the last path part, control characters dropped,
    at most 255 characters; ``"file"`` when nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[-MAX_NAME_CHARS:] or "file"


def check_size(user: User, size: int) -> None:
    """Refuse ``size`` bytes past ``FILES_MAX_BYTES`` or the user's ``FILES_QUOTA_BYTES`` (the
    sizes of the files they keep): raises :class:`InvalidInput` 413 naming the limit."""
    limit = current_app.config["FILES_MAX_BYTES"]
    if size > limit:
        raise InvalidInput(
            f"This file is {_mib(size)}; files may be at most {_mib(limit)}.", status=413
        )
    quota = current_app.config["FILES_QUOTA_BYTES"]
    if quota:
        used = int(
            db.session.scalar(select(func.sum(File.size)).where(File.user_id == user.id)) or 0
        )
        if used + size > quota:
            raise InvalidInput(
                f"Your files would take {_mib(used + size)}; the quota is {_mib(quota)}. "
                "Delete conversations with files you no longer need.",
                status=413,
            )


def prepare(data: bytes, *, reencode: bool = True) -> Sniffed:
    """Sniff and prepare ``data`` with the configured limits (in gevent's thread pool under the
    gevent worker: decoding an image or a PDF is CPU work). Raises :class:`InvalidInput` 400
    for a file webchat refuses."""
    config = current_app.config
    try:
        return off_the_loop(
            _sniff,
            data,
            config["FILES_MAX_IMAGE_PIXELS"],
            config["FILES_MAX_TEXT_CHARS"],
            config["FILES_PDF_MAX_PAGES"],
            reencode,
        )
    except Refused as exc:
        raise InvalidInput(str(exc), field="file") from None


def _sniff(data: bytes, max_pixels: int, max_chars: int, max_pages: int, reencode: bool) -> Sniffed:
    return sniff(
        data,
        max_pixels=max_pixels,
        max_text_chars=max_chars,
        pdf_max_pages=max_pages,
        reencode=reencode,
    )


def upload(user: User, name: str | None, data: bytes) -> File:
    """Store an upload of ``user``: sniffed and prepared (:func:`prepare`), its bytes stored once
    by SHA-256 (:func:`webchat.files.storage.put`). The same bytes under the same name uploaded
    again by the same user give back the file already stored. Raises :class:`InvalidInput`: 400
    for a refused file, 413 past the size limit or the quota. Ends the transaction it finds
    (nothing is written yet) before decoding: a request's transaction holds SQLite's write lock
    (``BEGIN IMMEDIATE``, :mod:`webchat.db`), which other requests must not wait on for an image
    decode. Flush only."""
    check_size(user, len(data))
    user_id = user.id
    db.session.rollback()
    prepared = prepare(data)
    owner = db.session.get(User, user_id)
    assert owner is not None
    check_size(owner, len(data))  # again, in the transaction that writes
    return store(owner, clean_name(name), prepared)


def store(user: User, name: str, prepared: Sniffed, created_at: Any = None) -> File:
    """A :class:`File` of ``user`` for ``prepared`` (see :func:`upload`); flush only."""
    sha256 = storage.sha256_of(prepared.data)
    same = db.session.scalars(
        select(File).where(File.user_id == user.id, File.sha256 == sha256, File.name == name)
    ).first()
    if same is not None:
        return same
    blob = storage.put(prepared.data)
    thumbnail = storage.put(prepared.thumbnail) if prepared.thumbnail is not None else None
    file = File(
        user_id=user.id,
        name=name,
        media_type=prepared.media_type,
        kind=prepared.kind,
        size=blob.size,
        sha256=blob.sha256,
        thumbnail_sha256=thumbnail.sha256 if thumbnail is not None else None,
        width=prepared.width,
        height=prepared.height,
        text=prepared.text,
        created_at=created_at or utcnow(),
    )
    db.session.add(file)
    db.session.flush()
    return file


def owned_file(user: User, file_id: uuid.UUID | str) -> File:
    """The user's file ``file_id``. Raises :class:`NotFound`."""
    try:
        fid = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound(file_id) from None
    file = db.session.get(File, fid)
    if file is None or file.user_id != user.id:
        raise NotFound(file_id)
    return file


def owned_files(user: User, file_ids: Sequence[uuid.UUID | str] | None) -> list[File]:
    """The user's files ``file_ids`` in that order, repeats dropped. Raises
    :class:`InvalidInput`: 404 for an id that is not one of the user's files, 400 past
    :data:`MAX_FILES_PER_MESSAGE`."""
    files: list[File] = []
    for file_id in file_ids or ():
        try:
            file = owned_file(user, file_id)
        except NotFound:
            raise InvalidInput("No such file.", field="files", status=404) from None
        if file not in files:
            files.append(file)
    if len(files) > MAX_FILES_PER_MESSAGE:
        raise InvalidInput(f"A message takes at most {MAX_FILES_PER_MESSAGE} files.", field="files")
    return files


def owned_among(user: User, file_ids: Sequence[uuid.UUID | str]) -> list[File]:
    """Those of ``file_ids`` that are the user's files, in order (others left out): what a
    composer shown again after an error keeps attached."""
    files: list[File] = []
    for file_id in file_ids:
        try:
            files.append(owned_file(user, file_id))
        except NotFound:
            continue
    return files


def takes_images(model: str) -> bool:
    """True when the model id matches a pattern of ``VISION_MODELS`` (fnmatch)."""
    return any(fnmatch.fnmatchcase(model, p) for p in current_app.config["VISION_MODELS"])


def check_model(model: str, files: Iterable[File]) -> None:
    """Refuse images for a model that does not take them, before anything is stored or sent:
    raises :class:`InvalidInput` 400."""
    if any(f.kind == "image" for f in files) and not takes_images(model):
        raise InvalidInput(
            f"The model {model} can't read images; pick a model that can, or remove the image.",
            field="files",
        )


def attach(message: Message, files: Sequence[File]) -> None:
    """Make ``message`` refer to ``files``, in that order (flush only)."""
    for position, file in enumerate(files):
        db.session.add(MessageFile(message_id=message.id, file_id=file.id, position=position))
        file.attached_at = file.attached_at or utcnow()
    if files:
        db.session.flush()


def copy_references(copies: dict[uuid.UUID, uuid.UUID], user_id: int | None = None) -> None:
    """Give each copy of a message the files of its original: ``copies`` maps an original
    message id to its copy's (an edit of a user message, the messages a fork copies, a
    thousand at a time). With ``user_id`` (the copy's owner), a file of another user — a shared
    conversation continued in one's own account — is referred to through a :class:`File` of
    ``user_id`` for the same stored bytes (:func:`adopt`: no bytes copied). One query (and one
    per file adopted); flush only."""
    if not copies:
        return
    rows = db.session.execute(
        select(MessageFile.message_id, MessageFile.position, File)
        .join(File, File.id == MessageFile.file_id)
        .where(MessageFile.message_id.in_(list(copies)))
    ).all()
    adopted: dict[uuid.UUID, File] = {}
    for message_id, position, file in rows:
        if user_id is not None and file.user_id != user_id:
            if file.id not in adopted:
                adopted[file.id] = adopt(file, user_id)
            file = adopted[file.id]
        db.session.add(
            MessageFile(message_id=copies[message_id], file_id=file.id, position=position)
        )
    if rows:
        db.session.flush()


def adopt(file: File, user_id: int) -> File:
    """A file of ``user_id`` with the bytes, thumbnail and name of ``file`` (another user's):
    the one they already have for the same bytes and name, else a new row referring to the same
    blobs (content-addressed: nothing is copied; :func:`collect_garbage` keeps a blob while any
    file refers to it). Flush only."""
    same = db.session.scalars(
        select(File).where(
            File.user_id == user_id, File.sha256 == file.sha256, File.name == file.name
        )
    ).first()
    if same is not None:
        return same
    now = utcnow()
    kept = {c.key for c in File.__table__.columns} - {"id", "user_id", "created_at", "attached_at"}
    copy = File(
        user_id=user_id, created_at=now, attached_at=now, **{k: getattr(file, k) for k in kept}
    )
    db.session.add(copy)
    db.session.flush()
    return copy


def files_of(messages: Iterable[Message]) -> dict[uuid.UUID, list[File]]:
    """The files of each of ``messages`` in their order, by message id: one query, whatever the
    number of messages (messages without files are absent)."""
    ids = [m.id for m in messages]
    out: dict[uuid.UUID, list[File]] = {}
    if not ids:
        return out
    rows = db.session.execute(
        select(MessageFile.message_id, File)
        .join(File, File.id == MessageFile.file_id)
        .where(MessageFile.message_id.in_(ids))
        .order_by(MessageFile.message_id, MessageFile.position)
    ).all()
    for message_id, file in rows:
        out.setdefault(message_id, []).append(file)
    return out


def file_url(file: File) -> str:
    """Where the file is served to its owner (:func:`webchat.files.views.show`), as a path;
    outside a request too (an export run from the CLI)."""
    if has_request_context():
        return url_for("files.show", file_id=file.id)
    with current_app.test_request_context():
        return url_for("files.show", file_id=file.id)


def file_out(file: File, *, sha256: bool = True) -> dict[str, Any]:
    """The API's shape of a file: ``{id, name, media_type, size, sha256, url}`` (``sha256``
    left out with ``sha256=False``, as in a message's ``files``) and ``thumbnail_url`` for an
    image."""
    out: dict[str, Any] = {
        "id": file.id,
        "name": file.name,
        "media_type": file.media_type,
        "size": file.size,
        "url": file_url(file),
    }
    if sha256:
        out["sha256"] = file.sha256
    out["thumbnail_url"] = (
        url_for("files.thumbnail", file_id=file.id) if file.thumbnail_sha256 else None
    )
    return out


def read(file: File) -> bytes:
    """The stored bytes of ``file``. Raises :class:`webchat.files.storage.MissingBlob`."""
    return storage.read(file.sha256)


def attachments_of(messages: Iterable[Message]) -> dict[uuid.UUID, tuple[Attachment, ...]]:
    """What providers receive of each message's files (bytes read from storage), by message."""
    out: dict[uuid.UUID, tuple[Attachment, ...]] = {}
    for message_id, files in files_of(messages).items():
        out[message_id] = tuple(
            Attachment(
                name=f.name,
                kind=f.kind,
                media_type=f.media_type.split(";")[0],
                data=read(f),
                text=f.text,
            )
            for f in files
        )
    return out


def collect_garbage(unattached_hours: float | None = None) -> dict[str, int]:
    """Delete the files no message refers to any more (those of purged conversations), and the
    uploads never sent once older than ``unattached_hours`` (default ``FILES_UNATTACHED_HOURS``),
    then the blobs no file refers to, their bytes with them. Commits. Returns
    ``{"files": n, "blobs": n}`` deleted."""
    hours = unattached_hours
    if hours is None:
        hours = current_app.config["FILES_UNATTACHED_HOURS"]
    cutoff = utcnow() - timedelta(hours=hours)
    referenced = exists().where(MessageFile.file_id == File.id)
    result = db.session.execute(
        delete(File)
        .where(~referenced, or_(File.attached_at.is_not(None), File.created_at <= cutoff))
        .execution_options(synchronize_session=False)
    )
    files = int(getattr(result, "rowcount", 0) or 0)
    used = select(File.sha256).union(
        select(File.thumbnail_sha256).where(File.thumbnail_sha256.is_not(None))
    )
    orphans = list(db.session.scalars(select(Blob).where(Blob.sha256.not_in(used))))
    gone = [b.sha256 for b in orphans if b.backend == "folder"]
    for blob in orphans:
        db.session.delete(blob)
    db.session.commit()
    for sha256 in gone:  # after the commit: a rolled-back delete keeps its bytes
        storage.unlink(sha256)
    return {"files": files, "blobs": len(orphans)}


__all__ = [
    "Attachment",
    "NotFound",
    "adopt",
    "attach",
    "attachments_of",
    "check_model",
    "collect_garbage",
    "copy_references",
    "file_out",
    "files_of",
    "owned_file",
    "owned_files",
    "read",
    "takes_images",
    "upload",
]


# --- Export and import (webchat.porting) -----------------------------------------------------


def conversation_files(conversation_id: uuid.UUID) -> tuple[list[File], list[MessageFile]]:
    """The files the messages of a conversation refer to (each once), and the references: two
    queries, whatever the number of messages."""
    references = list(
        db.session.scalars(
            select(MessageFile)
            .join(Message, Message.id == MessageFile.message_id)
            .where(Message.conversation_id == conversation_id)
            .order_by(MessageFile.message_id, MessageFile.position)
        )
    )
    ids = {r.file_id for r in references}
    files = list(db.session.scalars(select(File).where(File.id.in_(ids)).order_by(File.id)))
    return files, references


def export_rows(conversation_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """What a webchat JSON export says of a conversation's files: ``files`` ``[{"id", "name",
    "media_type", "kind", "size", "sha256", "created_at"}]`` and ``message_files``
    ``[{"message_id", "file_id", "position"}]``. The bytes travel beside the document (the ZIP's
    ``files/<sha256>`` members)."""
    files, references = conversation_files(conversation_id)
    return {
        "files": [
            {
                "id": str(f.id),
                "name": f.name,
                "media_type": f.media_type,
                "kind": f.kind,
                "size": f.size,
                "sha256": f.sha256,
                "created_at": f.created_at.isoformat(),
            }
            for f in files
        ],
        "message_files": [
            {"message_id": str(r.message_id), "file_id": str(r.file_id), "position": r.position}
            for r in references
        ],
    }


def import_rows(
    user: User,
    doc: dict[str, Any],
    message_ids: dict[uuid.UUID, uuid.UUID],
    read_blob: Any,
    notes: Any,
) -> int:
    """Restore the files of an imported document (see :func:`export_rows`) for ``user``:
    each file's bytes from ``read_blob(sha256)`` (None: not in the export), checked against
    their SHA-256 and judged as an upload is (images kept byte for byte, so the hashes stay);
    references re-pointed through ``message_ids`` (old → new message id). A file missing,
    altered, refused or past the quota is left out and counted in ``notes``. Returns the files
    restored. Flush only."""
    by_id: dict[str, File] = {}
    for row in doc.get("files") or []:
        if not isinstance(row, dict):
            continue
        sha256 = str(row.get("sha256") or "")
        data = read_blob(sha256) if sha256 else None
        if data is None:
            notes["files not in the export (left out)"] += 1
            continue
        if storage.sha256_of(data) != sha256:
            notes["files whose bytes do not match their SHA-256 (left out)"] += 1
            continue
        try:
            check_size(user, len(data))
            prepared = prepare(data, reencode=False)
        except InvalidInput as exc:
            notes[f"files refused: {exc.message}"] += 1
            continue
        by_id[str(row.get("id"))] = store(user, clean_name(str(row.get("name") or "")), prepared)
    for row in doc.get("message_files") or []:
        file = by_id.get(str(row.get("file_id"))) if isinstance(row, dict) else None
        try:
            message_id = message_ids.get(uuid.UUID(str(row.get("message_id"))))
        except (ValueError, AttributeError):
            message_id = None
        if file is None or message_id is None:
            continue
        db.session.add(
            MessageFile(
                message_id=message_id, file_id=file.id, position=int(row.get("position") or 0)
            )
        )
        file.attached_at = file.attached_at or utcnow()
    db.session.flush()
    return len(by_id)
