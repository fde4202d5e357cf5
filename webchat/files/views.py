"""Serving files to their owner: ``GET /files/<id>`` and ``GET /files/<id>/thumbnail``.

The caller is the signed-in user, or the owner of an ``Authorization: Bearer`` API token.
Another user's file, or none, is a 404. Only raster images (PNG, JPEG, WebP, GIF, which were
decoded and re-encoded at upload) are served ``inline``; everything else — PDFs, text, and so any
HTML or SVG uploaded as text — is an ``attachment`` download, typed ``text/plain`` or
``application/pdf``. Every answer carries ``X-Content-Type-Options: nosniff`` and a
``sandbox`` Content-Security-Policy, so nothing in a file runs even when opened directly.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, request
from flask_login import current_user

from ..models import File, User
from . import services, storage

bp = Blueprint("files", __name__)

INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
DOWNLOAD_TYPES = frozenset({"application/pdf", "text/plain; charset=utf-8"})
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _caller() -> User | None:
    from ..api import tokens  # the API package imports the services this blueprint serves

    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        found = tokens.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        return found[0] if found else None
    return current_user if current_user.is_authenticated else None


def file_answer(file: File) -> Response:
    """:func:`send` of ``file``'s bytes; a 404 when they are missing."""
    try:
        data = services.read(file)
    except storage.MissingBlob:
        abort(404)
    return send(data, file.media_type, file.name, file.sha256)


def thumbnail_answer(file: File) -> Response:
    """:func:`send` of an image's WebP thumbnail; a 404 for a file without one."""
    if file.thumbnail_sha256 is None:
        abort(404)
    try:
        data = storage.read(file.thumbnail_sha256)
    except storage.MissingBlob:
        abort(404)
    stem = file.name.rsplit(".", 1)[0]
    return send(data, "image/webp", f"{stem}.thumbnail.webp", file.thumbnail_sha256)


def _owned(file_id: str) -> File:
    user = _caller()
    if user is None:
        abort(404)
    try:
        return services.owned_file(user, file_id)
    except services.NotFound:
        abort(404)


def disposition(kind: str, name: str) -> str:
    """A ``Content-Disposition`` value (RFC 6266) with the name as ASCII and as UTF-8
    (RFC 8187 ``filename*``)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def send(data: bytes, media_type: str, name: str, etag: str) -> Response:
    """A file's bytes as served to the owner and under a share link: ``inline`` only for the
    raster images of :data:`INLINE_TYPES`, else an ``attachment`` (``application/octet-stream``
    unless a PDF or text); ``nosniff``, the sandbox CSP, an ETag answered conditionally."""
    inline = media_type in INLINE_TYPES
    served = media_type if inline or media_type in DOWNLOAD_TYPES else "application/octet-stream"
    response = Response(data, content_type=served)
    kind = "inline" if inline else "attachment"
    response.headers["Content-Disposition"] = disposition(kind, name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.set_etag(etag)
    response.make_conditional(request)
    return response


@bp.get("/files/<file_id>")
def show(file_id: str):
    """A file's bytes, to its owner: inline for a raster image, else a download."""
    return file_answer(_owned(file_id))


@bp.get("/files/<file_id>/thumbnail")
def thumbnail(file_id: str):
    """An image's WebP thumbnail (320 pixels on its longer side), to its owner."""
    return thumbnail_answer(_owned(file_id))


@bp.app_template_filter("file_size")
def file_size(size: int) -> str:
    """``size`` bytes for people: ``812 B``, ``14 KB``, ``3.2 MB`` (powers of 1,024)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@bp.app_template_filter("file_label")
def file_label(file: File) -> str:
    """The short label of a file's icon: ``PDF``, or its name's extension (``PY``), or ``TXT``."""
    if file.kind == "pdf":
        return "PDF"
    _, dot, extension = file.name.rpartition(".")
    return extension[:4].upper() if dot and extension else "TXT"
