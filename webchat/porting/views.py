"""Export downloads and the import page."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
)
from flask_login import current_user, login_required

from .. import audit
from ..conversations import paging, projects
from ..conversations import services as conversations
from ..conversations.services import NotFound
from ..errors import InvalidInput
from ..models import Conversation, User
from . import export
from .report import ImportReport

bp = Blueprint("porting", __name__)

EXPORTS = {
    "json": ("application/json", "json", export.json_chunks),
    "markdown": ("text/markdown; charset=utf-8", "md", export.markdown_chunks),
}
BULK_EXPORTS = {
    "zip": ("application/zip", "zip", export.zip_chunks),
    "ndjson": ("application/x-ndjson", "ndjson", export.ndjson_chunks),
}


@bp.url_value_preprocessor
def _allow_large_uploads(endpoint: str | None, values: dict | None) -> None:
    # Runs before every before_request hook (CSRF reads the form there), so the larger limit
    # is in place when the upload is parsed; everywhere else MAX_CONTENT_LENGTH holds.
    if endpoint == "porting.upload":
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]


def download(chunks, mimetype: str, filename: str, user: User | None = None):
    """A streamed attachment response of ``chunks`` (str or bytes pieces); an export of
    ``user``'s conversations is audited."""
    if user is not None:
        audit.record_now("export", user, file=filename[:200])
    return current_app.response_class(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def conversation_download(
    conversation: Conversation, kind: str, branches: bool = False, user: User | None = None
):
    """The download of one conversation as ``kind`` (a key of :data:`EXPORTS`); Markdown of
    the active path, or of every branch with ``branches`` (JSON always holds the whole tree).
    A download for ``user`` is audited."""
    mimetype, extension, chunks = EXPORTS[kind]
    pieces = (
        export.markdown_chunks(conversation, branches)
        if kind == "markdown"
        else chunks(conversation)
    )
    return download(pieces, mimetype, export.filename(conversation, extension), user)


@bp.get("/c/<conversation_id>/export")
@login_required
def export_conversation(conversation_id: str):
    """Download one conversation: ``?format=markdown`` (readable: the active path, or every
    branch with ``&branches=all``) or ``json`` (complete)."""
    kind = request.args.get("format", "markdown")
    if kind not in EXPORTS:
        abort(400, "format must be markdown or json.")
    if request.args.get("branches", "all") != "all":
        abort(400, "branches must be all, or left out for the active path.")
    try:
        conversation = conversations.owned_conversation(current_user, conversation_id)
    except NotFound:
        abort(404, "No such conversation.")
    return conversation_download(
        conversation, kind, "branches" in request.args, current_user._get_current_object()
    )


@bp.get("/export")
@login_required
def export_all():
    """Download every conversation (Trash excluded): ``?format=zip`` (JSON files) or ``ndjson``;
    ``?project=<id>``: that project's alone."""
    kind = request.args.get("format", "zip")
    if kind not in BULK_EXPORTS:
        abort(400, "format must be zip or ndjson.")
    mimetype, extension, chunks = BULK_EXPORTS[kind]
    user = current_user._get_current_object()
    try:
        project = projects.project_for(user, request.args.get("project"))
    except InvalidInput:
        abort(404, "No such project.")
    return download(chunks(user, project), mimetype, f"webchat-export.{extension}", user)


@bp.route("/import", methods=["GET", "POST"])
@login_required
def upload():
    """The import page: upload ChatGPT, Claude Code or webchat files; shows what was imported."""
    from . import FORMATS, import_upload

    reports: list[tuple[str, ImportReport]] = []
    error, status = None, 200
    if request.method == "POST":
        kind = request.form.get("format") or None
        files = [(f, f.filename) for f in request.files.getlist("file") if f and f.filename]
        try:
            if kind is not None and kind not in FORMATS:
                raise InvalidInput("Choose a format from the list.", field="format")
            if not files:
                raise InvalidInput("Choose a file to import.", field="file")
            for f, name in files:
                reports.append((name, import_upload(current_user, f.stream, name, kind)))
        except InvalidInput as exc:
            error, status = exc.message, exc.status
    page = render_template(
        "porting/import.html",
        reports=reports,
        error=error,
        formats=FORMATS,
        **paging.sidebar(current_user),
        conversation=None,
    )
    return page, status
