"""The API's file routes: ``POST /api/v1/files`` (an upload, multipart field ``file``) and
``GET /api/v1/files/{id}`` (its description). The bytes are served by :mod:`.views`
(``GET /files/<id>``), to the same owner with the session or the same bearer token."""

from __future__ import annotations

import uuid

from flask import current_app, request
from pydantic import BaseModel, Field

from ..api.auth import current_api_user
from ..api.base import bp, documented, responses, spec
from ..api.errors import fail
from ..extensions import db
from . import services
from .schemas import FileOut

# Room for the multipart envelope around the largest file allowed.
ENVELOPE_BYTES = 64 * 1024


class FileUpload(BaseModel):
    """A multipart upload."""

    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="An image (PNG, JPEG, WebP, GIF), a PDF, or a text or code file; judged by "
        "its content, not its name or type. At most FILES_MAX_BYTES bytes (413 beyond, and past "
        "the user's FILES_QUOTA_BYTES).",
    )


@bp.url_value_preprocessor
def _allow_file_uploads(endpoint: str | None, values: dict | None) -> None:
    # Before the API's authentication, which may read the form (CSRF of a session call).
    if endpoint == "api.upload_file":
        limit = current_app.config["FILES_MAX_BYTES"]
        request.max_content_length = limit + ENVELOPE_BYTES
        if (request.content_length or 0) > limit + ENVELOPE_BYTES:  # say the limit, unread
            fail(413, f"This file is too large; files may be at most {limit:,} bytes.")


@bp.post("/files")
@documented(spec.validate(form=FileUpload, resp=responses(201, FileOut, 400, 413), tags=["files"]))
def upload_file():
    """Upload a file (multipart ``file``) to attach to messages; the same bytes are stored once."""
    upload = request.files.get("file")
    if upload is None:
        fail(400, "Send the file as multipart form field 'file'.", fields={"file": "missing"})
    file = services.upload(current_api_user(), upload.filename, upload.read())
    db.session.commit()
    return FileOut.model_validate(services.file_out(file)).model_dump(mode="json"), 201


@bp.get("/files/<uuid:file_id>")
@spec.validate(resp=responses(200, FileOut, 404), tags=["files"])
def get_file(file_id: uuid.UUID):
    """An uploaded file's description (its bytes: ``url``)."""
    try:
        file = services.owned_file(current_api_user(), file_id)
    except services.NotFound:
        fail(404, "No such file.")
    return FileOut.model_validate(services.file_out(file))
