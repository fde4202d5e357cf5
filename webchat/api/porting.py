"""The API's search, export and import: ``GET /search``, ``GET /conversations/{id}/export``,
``GET /export``, ``POST /import`` — the same functions as the pages, as JSON.

Downloads stream (so spectree, which reads a response's whole body, only documents them, see
:func:`webchat.api.base.documented`); their query and the import's form are validated here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from flask import current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..conversations import projects
from ..errors import InvalidInput
from ..files.search import FileHit, search_files, takes_attachments
from ..porting import FORMATS, ImportReport, import_upload
from ..porting.views import BULK_EXPORTS, conversation_download, download
from ..search import BadCursor, Filters, search
from ..search.query import MAX_LIMIT, MAX_OFFSET, organising_filters
from .auth import current_api_user
from .base import bp, documented, field_errors, query_args, responses, spec
from .errors import fail
from .schemas import STORABLE, RoleName, optional
from .views import _conversation


class SearchQuery(BaseModel):
    """What to look for: words, ``"a phrase"``, ``-excluded``, ``this OR that``."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=1000, pattern=STORABLE, description="The query.")
    role: RoleName = optional(description="Only messages of this role (titles left out).")
    model: str = optional(
        max_length=200,
        pattern=STORABLE,
        description="Only messages of this model (metadata.model, else the conversation's).",
    )
    since: date = optional(description="Only from this day on (UTC).")
    until: date = optional(description="Only up to this day, included (UTC).")
    conversation: uuid.UUID = optional(description="Only in this conversation.")
    project: uuid.UUID = optional(description="Only in this project's conversations.")
    tag: str = optional(max_length=50, pattern=STORABLE, description="Only in tagged ones.")
    limit: int = Field(20, ge=1, le=MAX_LIMIT, description=f"Hits per page, 1–{MAX_LIMIT}.")
    cursor: str = optional(pattern=r"^[0-9]{1,4}$", description="next_cursor of the previous page.")


class SearchHit(BaseModel):
    """One hit: a message, or (``message_id`` null) the conversation's title."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID | None = Field(description="null: the conversation's title matched.")
    role: RoleName | None
    snippet: str = Field(
        description="Sanitized HTML: the text around the matches, escaped, matches in <mark>."
    )
    created_at: datetime
    conversation_title: str
    model: str | None
    score: float = Field(description="Higher is better; comparable within one search.")
    in_reasoning: bool = Field(
        default=False,
        description="The words are only in the message's reasoning (its model's thinking), "
        "not in its text; the snippet is taken from the reasoning.",
    )


class SearchResults(BaseModel):
    """Hits, best first."""

    items: list[SearchHit]
    attachments: list[FileHit] = Field(
        default=[],
        description="The first page only (no cursor), with no filter but role=user: attached "
        "text files and PDFs whose text matches, best first (at most 10).",
    )
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")
    windowed: bool = Field(
        description="More than 10,000 messages match: the hits are the best of the newest "
        "10,000 (add words or filters to reach older ones)."
    )


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["json", "markdown"] = Field(
        "json", description="json: complete, re-importable; markdown: readable."
    )
    branches: Literal["all"] = optional(
        description="markdown: every branch, each under its own heading (left out: the active "
        "path only). json always holds the whole tree and its active leaf."
    )


class BulkExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["ndjson", "zip"] = Field(
        "ndjson", description="ndjson: a conversation document per line; zip: a JSON file each."
    )
    project: uuid.UUID = optional(description="Only this project's conversations.")


class ImportForm(BaseModel):
    """A multipart upload."""

    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="A webchat export, a ChatGPT conversations.json (or its ZIP), or a Claude "
        "Code session (.jsonl, or a ZIP of them).",
    )
    format: Literal["webchat", "chatgpt", "claude-code"] = optional(
        description="Detected from the file when left out."
    )


class ImportFailure(BaseModel):
    conversation: str
    reason: str


class ImportResult(BaseModel):
    """What the import did."""

    format: str
    conversations_created: int
    conversations_updated: int = Field(description="Imported before; new messages added.")
    conversations_unchanged: int
    messages: int = Field(description="Messages added.")
    already_imported: int = Field(description="Source items imported before, left out.")
    skipped: dict[str, int] = Field(description="Source items left out, by reason.")
    notes: dict[str, int]
    failed: list[ImportFailure] = Field(description="Conversations that could not be read.")
    conversation_ids: list[uuid.UUID]


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """``model`` from ``data``, or the API's 400 naming each field at fault (as spectree's
    validation gives it, for the streamed downloads spectree does not run around)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fail(400, "Some input is invalid; see details.fields.", fields=field_errors(exc.errors()))


@bp.get("/search")
@spec.validate(query=SearchQuery, resp=responses(200, SearchResults, 400, 404), tags=["search"])
def search_messages():
    """Search the caller's conversation titles and messages (tool calls and results included),
    ranked; conversations in Trash are left out."""
    query: SearchQuery = query_args()
    filters = Filters(
        roles=(query.role,) if query.role else (),
        model=query.model,
        since=datetime.combine(query.since, datetime.min.time(), UTC) if query.since else None,
        until=(
            datetime.combine(query.until + timedelta(days=1), datetime.min.time(), UTC)
            if query.until and query.until < date.max
            else None
        ),
        conversation_id=query.conversation,
        **organising_filters(current_api_user(), query.project, query.tag),
    )
    try:
        results = search(
            current_api_user(), query.q, filters, cursor=query.cursor, limit=query.limit
        )
    except BadCursor:
        fail(400, f"cursor: at most {MAX_OFFSET} hits can be paged.", fields={"cursor": "too far"})
    items = [
        SearchHit(
            conversation_id=hit.conversation_id,
            message_id=hit.message_id,
            role=hit.role,  # type: ignore[arg-type]
            snippet=str(hit.snippet),
            created_at=hit.created_at,
            conversation_title=hit.conversation_title,
            model=hit.model,
            score=hit.score,
            in_reasoning=hit.in_reasoning,
        )
        for hit in results.items
    ]
    attachments: list[FileHit] = (
        search_files(current_api_user(), query.q)
        if query.cursor is None and takes_attachments(filters)
        else []
    )  # issue 14
    return SearchResults(
        items=items,
        attachments=attachments,
        next_cursor=results.next_cursor,
        windowed=results.windowed,
    )


@bp.get("/conversations/<uuid:conversation_id>/export")
@documented(spec.validate(query=ExportQuery, resp=responses(200, None, 400, 404), tags=["export"]))
def export_conversation(conversation_id: uuid.UUID):
    """Download one conversation, streamed: webchat JSON (every field of every message and run,
    the whole tree and its active leaf; ``POST /import`` takes it back exactly) or Markdown (the
    active path; ``branches=all``: every branch)."""
    query: ExportQuery = _validated(ExportQuery, request.args.to_dict())
    conversation = _conversation(conversation_id)
    return conversation_download(
        conversation, query.format, query.branches == "all", current_api_user()
    )


@bp.get("/export")
@documented(
    spec.validate(query=BulkExportQuery, resp=responses(200, None, 400, 404), tags=["export"])
)
def export_all():
    """Download every conversation of the caller (Trash excluded; ``?project=``: one
    project's), streamed in bounded memory."""
    query: BulkExportQuery = _validated(BulkExportQuery, request.args.to_dict())
    mimetype, extension, chunks = BULK_EXPORTS[query.format]
    user = current_api_user()
    project = projects.project_for(user, query.project)
    return download(chunks(user, project), mimetype, f"webchat-export.{extension}", user)


@bp.url_value_preprocessor
def _allow_large_uploads(endpoint: str | None, values: dict | None) -> None:
    # Before the API's authentication, which may read the form (CSRF of a session call).
    if endpoint == "api.import_conversations":
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]


@bp.post("/import")
@documented(
    spec.validate(form=ImportForm, resp=responses(200, ImportResult, 400, 413), tags=["import"])
)
def import_conversations():
    """Import a file (multipart ``file``; ``format`` detected when left out). Conversations
    imported before only gain their new messages. Up to ``IMPORT_MAX_BYTES`` bytes. A file that
    is none of the formats, or cannot be read at all, imports nothing: ``failed`` says why."""
    upload = request.files.get("file")
    if upload is None:
        fail(400, "Send the file as multipart form field 'file'.", fields={"file": "missing"})
    kind = request.form.get("format")
    if kind is not None and kind not in FORMATS:
        fail(400, "Unknown format.", fields={"format": f"one of {', '.join(FORMATS)}"})
    name = upload.filename or "file"
    try:
        report = import_upload(current_api_user(), upload.stream, name, kind)
    except InvalidInput as exc:
        report = ImportReport(format=kind or "unknown", files=1, failed=[(name, exc.message)])
    result = ImportResult.model_validate(report.as_dict())
    return jsonify(result.model_dump(mode="json"))
