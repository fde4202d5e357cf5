"""Import ChatGPT's data export: ``conversations.json`` (or the export's ZIP holding it).

The file is a JSON array of conversations. Each has a ``mapping`` of nodes ``{id: {"message",
"parent", "children"}}`` — a tree, since an edited prompt or a regenerated answer adds a sibling —
and ``current_node``, the leaf shown last. Every node with a visible message becomes a message
whose ``parent_id`` follows the tree (hidden nodes are skipped and their children attached to the
nearest kept ancestor), so branches survive. ``current_node`` (or, when it is a skipped node,
its nearest kept ancestor) is kept as ``metadata.current_message_id`` and becomes the active
leaf: the conversation opens on the path ChatGPT showed, the other branches a click away.

Messages by author and content type:

- ``user`` and ``assistant`` ``text`` / ``multimodal_text``: the text parts (an image part becomes
  ``[image]``); ``code`` addressed to the user: a fenced code block;
- ``assistant`` addressed to a tool (``recipient`` not ``all``: ``browser``, ``python``…): a tool
  call ``{"id": node id, "name": recipient, "arguments": {"code"|"input": text}}``;
- ``tool`` (``tether_browsing_display``, ``tether_quote``, ``execution_output``…): a tool result
  ``{"tool_call_id", "result", "error"}`` with the text as ``content``;
- skipped: nodes without a message, hidden nodes (``is_visually_hidden_from_conversation``),
  custom-instruction contexts, empty system messages, reasoning summaries, unknown content.

A conversation that cannot be read (no ``mapping``, not an object) is reported and skipped; the
rest are imported.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from ..conversations.services import title_from
from ..models import Role, Status, User
from . import drafts
from .drafts import DraftConversation, DraftMessage, from_timestamp
from .report import ImportReport

SOURCE = "chatgpt"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONTEXT_TYPES = {"user_editable_context", "model_editable_context"}
REASONING_TYPES = {"thoughts", "reasoning_recap"}


class Corrupt(ValueError):
    """A conversation (or the whole file) that cannot be read; the message says why."""


def load(fileobj: IO[bytes]) -> list[Any]:
    """The conversations of a ``conversations.json`` or of an export ZIP containing one.

    Raises :class:`Corrupt` when the file is neither, or not a JSON array.
    """
    head = fileobj.read(4)
    fileobj.seek(0)
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(fileobj) as archive:
                name = next(
                    (n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"),
                    None,
                )
                if name is None:
                    raise Corrupt("the ZIP has no conversations.json")
                raw = archive.read(name)
        except zipfile.BadZipFile as exc:
            raise Corrupt(f"not a readable ZIP: {exc}") from None
    else:
        raw = fileobj.read()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Corrupt(f"not JSON: {exc}") from None
    if not isinstance(data, list):
        raise Corrupt("not a ChatGPT export: expected a JSON array of conversations")
    return data


def link_citations(text: str, citations: Any) -> tuple[str, list[dict[str, Any]]]:
    """``text`` with ChatGPT's citation markers (``【6†source】`` at ``start_ix``–``end_ix``)
    replaced by numbered Markdown links to the cited page, and the sources as
    ``[{"n", "url", "title"}]``. Citations without a URL or whose span is not a marker are left
    as they are."""
    if not isinstance(citations, list):
        return text, []
    numbers: dict[str, int] = {}
    sources: list[dict[str, Any]] = []
    spans = []
    for citation in citations:
        if not isinstance(citation, dict):
            continue
        start, end = citation.get("start_ix"), citation.get("end_ix")
        url = (citation.get("metadata") or {}).get("url")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            continue
        if not url or text[start] not in "【\ue200":
            continue
        if url not in numbers:
            numbers[url] = len(numbers) + 1
            title = (citation.get("metadata") or {}).get("title")
            sources.append({"n": numbers[url], "url": url, "title": title})
        spans.append((start, end, numbers[url], url))
    for start, end, n, url in sorted(spans, reverse=True):
        text = f"{text[:start]} [{n}]({url}){text[end:]}"
    return text, sources


def _text_of(content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The readable text of a message's ``content`` and extra metadata for it."""
    kind = content.get("content_type") or "text"
    extra: dict[str, Any] = {}
    if kind in ("text", "multimodal_text"):
        parts: list[str] = []
        for part in content.get("parts") or []:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                sub = part.get("content_type") or "part"
                if sub == "audio_transcription" and isinstance(part.get("text"), str):
                    parts.append(part["text"])
                else:
                    parts.append("[image]" if "image" in sub else f"[{sub}]")
                    extra.setdefault("attachments", []).append(sub)
        return "\n\n".join(p for p in parts if p), extra
    if kind == "code":
        extra["language"] = content.get("language")
        return str(content.get("text") or ""), extra
    if kind == "tether_browsing_display":
        return str(content.get("result") or content.get("summary") or ""), extra
    if kind == "tether_quote":
        extra["url"] = content.get("url")
        title = content.get("title") or content.get("domain") or ""
        text = str(content.get("text") or "")
        return (f"{title}\n{content.get('url') or ''}\n{text}".strip()), extra
    if kind in ("execution_output", "system_error"):
        return str(content.get("text") or content.get("name") or ""), extra
    if isinstance(content.get("text"), str):
        return content["text"], extra
    if content.get("parts"):
        return "\n\n".join(p for p in content["parts"] if isinstance(p, str)), extra
    return "", extra


def _skip_reason(message: dict[str, Any]) -> str | None:
    meta = message.get("metadata") or {}
    kind = (message.get("content") or {}).get("content_type")
    if meta.get("is_visually_hidden_from_conversation"):
        return "hidden node"
    if kind in CONTEXT_TYPES:
        return "custom-instructions context"
    if kind in REASONING_TYPES:
        return "reasoning summary"
    return None


def _draft_message(
    node_id: str,
    message: dict[str, Any],
    parent_key: str | None,
    parent_call: str | None,
    fallback_time: datetime,
    report: ImportReport,
) -> DraftMessage | None:
    """One node's message as a draft, or None (counted as skipped) when it shows nothing."""
    reason = _skip_reason(message)
    if reason:
        report.skipped[reason] += 1
        return None
    author = message.get("author") or {}
    role = author.get("role")
    content = message.get("content") or {}
    text, extra = _text_of(content)
    parts = content.get("parts")
    if role == "assistant" and isinstance(parts, list) and len(parts) == 1:
        citations = (message.get("metadata") or {}).get("citations")
        text, sources = link_citations(text, citations)
        if sources:
            extra["sources"] = sources
    meta: dict[str, Any] = {"content_type": content.get("content_type") or "text"}
    model = (message.get("metadata") or {}).get("model_slug")
    if model:
        meta["model"] = model
    meta.update({k: v for k, v in extra.items() if v is not None})
    created = from_timestamp(message.get("create_time")) or fallback_time
    recipient = message.get("recipient") or "all"
    draft = DraftMessage([node_id], parent_key, role="", created_at=created, meta=meta)
    if role == "assistant" and recipient != "all":
        argument = "code" if meta["content_type"] == "code" else "input"
        draft.role, draft.tool_name = Role.ASSISTANT, recipient
        draft.tool_call = {"id": node_id, "name": recipient, "arguments": {argument: text}}
        return draft
    if role == "tool":
        draft.role, draft.content, draft.tool_name = Role.TOOL, text, author.get("name") or "tool"
        draft.tool_result = {"tool_call_id": parent_call, "result": text, "error": None}
        return draft
    if role not in ("user", "assistant", "system"):
        report.skipped[f"{role or 'unknown'} author"] += 1
        return None
    if not text.strip():
        report.skipped[f"empty {role} message"] += 1
        return None
    if meta["content_type"] == "code":
        fence = "```"
        while fence in text:
            fence += "`"
        text = f"{fence}{meta.get('language') or ''}\n{text}\n{fence}"
    draft.role, draft.content = role, text
    draft.status = Status.COMPLETE if message.get("status") != "in_progress" else Status.INTERRUPTED
    return draft


def read_conversation(raw: Any, report: ImportReport) -> DraftConversation:
    """A draft of one exported conversation. Raises :class:`Corrupt` when it cannot be read."""
    if not isinstance(raw, dict):
        raise Corrupt("not an object")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise Corrupt("no mapping of messages")
    source_id = str(raw.get("id") or raw.get("conversation_id") or "")
    if not source_id:
        raise Corrupt("no conversation id")
    created = from_timestamp(raw.get("create_time")) or _EPOCH
    updated = from_timestamp(raw.get("update_time")) or created
    messages: list[DraftMessage] = []
    roots = [
        k for k, n in mapping.items() if not isinstance(n, dict) or n.get("parent") not in mapping
    ]
    # Depth-first from each root, in the children's order: (node id, kept ancestor, its call id,
    # the time a message without one inherits).
    stack: list[tuple[str, str | None, str | None, datetime]] = [
        (k, None, None, created) for k in reversed(roots)
    ]
    seen: set[str] = set()
    kept: dict[str, str | None] = {}  # node id → its own key if kept, else its kept ancestor's
    while stack:
        node_id, parent_key, parent_call, when = stack.pop()
        if node_id in seen:
            continue  # a malformed export that lists a node twice
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            report.skipped["malformed node"] += 1
            continue
        message = node.get("message")
        draft = None
        if isinstance(message, dict):
            draft = _draft_message(node_id, message, parent_key, parent_call, when, report)
        if draft is not None:
            messages.append(draft)
            parent_key, when = node_id, draft.created_at + timedelta(microseconds=1)
            parent_call = (draft.tool_call or {}).get("id") or parent_call
        kept[node_id] = parent_key
        children = [c for c in node.get("children") or [] if isinstance(c, str)]
        stack.extend((c, parent_key, parent_call, when) for c in reversed(children))
    title = str(raw.get("title") or "").strip()
    if not title:
        first = next((m for m in messages if m.role == Role.USER), None)
        title = title_from(first.content) if first else "ChatGPT conversation"
    current = raw.get("current_node")
    last_model = next((m.meta["model"] for m in reversed(messages) if m.meta.get("model")), None)
    meta = {"source_model": raw.get("default_model_slug") or last_model}
    if raw.get("gizmo_id"):
        meta["gizmo_id"] = raw["gizmo_id"]
    return DraftConversation(
        source=SOURCE,
        source_id=source_id,
        title=title,
        created_at=created,
        updated_at=updated,
        messages=messages,
        meta={k: v for k, v in meta.items() if v is not None},
        archived=bool(raw.get("is_archived")),
        pinned=bool(raw.get("is_starred")),
        current_key=kept.get(current) if isinstance(current, str) else None,
    )


def read(data: list[Any], report: ImportReport) -> Iterator[DraftConversation]:
    """Drafts of every readable conversation of ``data``; the rest go into ``report.failed``."""
    for index, raw in enumerate(data):
        label = (
            f"#{index + 1} “{raw.get('title')}”"
            if isinstance(raw, dict) and raw.get("title")
            else f"#{index + 1}"
        )
        try:
            yield read_conversation(raw, report)
        except Corrupt as exc:
            report.failed.append((label, str(exc)))


def import_file(user: User, fileobj: IO[bytes]) -> ImportReport:
    """Import a ChatGPT export for ``user`` (commits per conversation); returns the report.

    Raises :class:`Corrupt` when the file as a whole is not a ChatGPT export.
    """
    report = ImportReport(format=SOURCE, files=1)
    existing = drafts.sources_of(user, SOURCE)
    for draft in read(load(fileobj), report):
        drafts.write(user, draft, report, existing.get(draft.source_id))
    return report


def import_bytes(user: User, data: bytes) -> ImportReport:
    """:func:`import_file` for bytes in memory."""
    return import_file(user, io.BytesIO(data))
