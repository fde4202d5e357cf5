"""Taking conversations in and out: export (webchat JSON, Markdown, a streamed ZIP or NDJSON of
everything) and import (webchat JSON, ChatGPT's export, Claude Code sessions).

:func:`import_upload` detects a file's format and imports it; the readers live in
:mod:`.native`, :mod:`.chatgpt` and :mod:`.claude_code`, the one writer in :mod:`.drafts`.
"""

from __future__ import annotations

import io
import zipfile
from typing import IO

from .. import audit
from ..errors import InvalidInput
from ..extensions import db
from ..models import User
from . import chatgpt, claude_code, native
from .report import ImportReport

FORMATS = ("webchat", "chatgpt", "claude-code")
_SNIFF_BYTES = 64 * 1024


def detect(fileobj: IO[bytes], filename: str = "") -> str | None:
    """The format of an export file (one of :data:`FORMATS`), from its first bytes (and the
    member names of a ZIP); None when it is none of them. Leaves the file at its start."""
    fileobj.seek(0)
    head = fileobj.read(_SNIFF_BYTES)
    fileobj.seek(0)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(fileobj) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return None
        finally:
            fileobj.seek(0)
        if any(n.rsplit("/", 1)[-1] == "conversations.json" for n in names):
            return "chatgpt"
        if any(n.endswith(".jsonl") for n in names):
            return "claude-code"
        if any(n.endswith(".json") for n in names):
            return "webchat"
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if '"webchat.conversation"' in text.split("\n", 1)[0] or (
        text.startswith("{") and '"format": "webchat.conversation"' in text
    ):
        return "webchat"
    if text.startswith("["):
        if '"mapping"' in text or '"current_node"' in text:
            return "chatgpt"
        if '"webchat.conversation"' in text:
            return "webchat"
        return None
    if text.startswith("{") and ('"sessionId"' in text or '"parentUuid"' in text):
        return "claude-code"
    if filename.endswith(".jsonl") and text.startswith("{"):
        return "claude-code"
    return None


def import_upload(
    user: User, fileobj: IO[bytes], filename: str = "", format: str | None = None
) -> ImportReport:
    """Import one uploaded file for ``user`` in ``format`` (detected when None); commits per
    conversation. Raises :class:`InvalidInput` (field ``file``) when the format is unknown or
    the file cannot be read at all."""
    kind = format or detect(fileobj, filename)
    report = _import_upload(user, fileobj, filename, kind)
    audit.record(
        "import",
        user,
        format=kind,
        file=filename[:200],
        conversations=report.conversations_created + report.conversations_updated,
        messages=report.messages,
    )
    db.session.commit()
    return report


def _import_upload(user: User, fileobj: IO[bytes], filename: str, kind: str | None) -> ImportReport:
    if kind not in FORMATS:
        raise InvalidInput(
            "This file is not a webchat export, a ChatGPT conversations.json (or its ZIP) or a "
            "Claude Code session (.jsonl).",
            field="file",
        )
    try:
        if kind == "chatgpt":
            return chatgpt.import_file(user, fileobj)
        if kind == "webchat":
            return native.import_file(user, fileobj)
        return _claude_code_upload(user, fileobj, filename)
    except (chatgpt.Corrupt, native.Unreadable, zipfile.BadZipFile) as exc:
        raise InvalidInput(f"The file could not be read as {kind}: {exc}", field="file") from None


def _claude_code_upload(user: User, fileobj: IO[bytes], filename: str) -> ImportReport:
    """One session file, or a ZIP of them (a project folder zipped)."""
    head = fileobj.read(4)
    fileobj.seek(0)
    if not head.startswith(b"PK"):
        return claude_code.import_bytes(user, fileobj.read(), filename or "upload")
    report = ImportReport(format=claude_code.SOURCE)
    existing = claude_code.drafts.sources_of(user, claude_code.SOURCE)
    with zipfile.ZipFile(fileobj) as archive:
        for name in sorted(n for n in archive.namelist() if n.endswith(".jsonl")):
            with archive.open(name) as member:
                lines = io.TextIOWrapper(member, encoding="utf-8", errors="replace")
                stem = name.rsplit("/", 1)[-1].removesuffix(".jsonl")
                claude_code.import_lines(user, lines, stem, report, existing)
    return report


from .views import bp  # noqa: E402  (the views use the functions above)

__all__ = ["FORMATS", "ImportReport", "bp", "detect", "import_upload"]
