"""Import Claude Code sessions: the JSON Lines files under ``~/.claude/projects/<project>/``.

Each line of a session file is one JSON object. Conversation lines (``type`` ``user``,
``assistant``, ``system``) carry ``uuid``, ``parentUuid``, ``sessionId``, ``timestamp``, ``cwd``,
``gitBranch``, ``isSidechain`` and a ``message`` in the Anthropic Messages format. Claude Code
writes one line per content block, so the lines of one API response share ``message.id``; they
are grouped back: text (and thinking) blocks into one assistant message, the first ``tool_use``
on that message as its tool call and each further one on an assistant message of its own (as
webchat stores parallel calls), each ``tool_result`` block as a ``tool`` message
(``tool_result`` = ``{"tool_call_id", "result", "error"}``). Usage is repeated on every line of a
response; it is counted once, on the response's first message (the last line's figures).

The tree is kept: ``parentUuid`` links (or ``logicalParentUuid`` across a compaction boundary),
rewinds (several children of one parent: the abandoned attempt is a sibling branch) and
sidechains (sub-agent lines, ``isSidechain``; a sidechain's first line, which has no parent,
hangs under the ``Task`` call that started it). The active path ends at the newest message of
the main chain (a sidechain is never the active leaf), which is where the session went on.
``summary`` lines name the conversation; ``queue-operation`` and ``file-history-snapshot`` lines
are skipped; a line that is not JSON is counted and skipped, never fatal.

The conversation records ``session_id``, ``project_path`` (``cwd``), ``git_branch`` and
``claude_code_version`` in its metadata; each message keeps the uuids of the lines it was built
from in ``metadata.source_ids``, so importing a session again adds only the lines it gained.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ..conversations.services import title_from
from ..db import begin_write
from ..extensions import db
from ..models import Message, Role, User
from . import drafts
from .drafts import DraftConversation, DraftMessage, from_timestamp
from .report import ImportReport

SOURCE = "claude-code"
MESSAGE_TYPES = ("user", "assistant", "system")
SKIPPED_TYPES = {
    "queue-operation": "queue operation",
    "file-history-snapshot": "file-history snapshot",
    "progress": "progress update",
}
TASK_TOOLS = ("Task", "Agent")


def default_root() -> Path:
    """``~/.claude/projects``, where Claude Code keeps its sessions."""
    return Path.home() / ".claude" / "projects"


def discover(path: str | Path | None = None) -> list[Path]:
    """Session files to import: ``path`` itself if it is a file; the ``*.jsonl`` files of a
    folder and of its sub-folders one level down (a project folder, or ``projects/`` itself);
    ``~/.claude/projects/*/*.jsonl`` when ``path`` is None. Sorted by path."""
    root = Path(path).expanduser() if path is not None else default_root()
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted({*root.glob("*.jsonl"), *root.glob("*/*.jsonl")})


def _text_blocks(content: Any) -> str:
    """The text of a tool result's or a user message's content: a string, or the ``text`` of
    text blocks (an image block becomes ``[image]``)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "image":
                parts.append("[image]")
    return "\n\n".join(parts)


@dataclass
class _Group:
    """The rows built so far from the lines of one API response (one ``message.id``)."""

    rows: list[DraftMessage] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    stop_reason: str | None = None


@dataclass
class Session:
    """What reading one session file gave: its draft, how many lines were already known, and
    usage to set on messages stored before (by message id)."""

    draft: DraftConversation | None
    already_imported: int = 0
    usage_updates: dict[Any, dict[str, Any]] = field(default_factory=dict)


class _Reader:
    def __init__(self, report: ImportReport, earlier: Earlier):
        self.report = report
        self.known = earlier.lines
        self.heads = earlier.heads
        self.usage_updates: dict[Any, dict[str, Any]] = {}
        self.tool_names = dict(earlier.tool_names)  # tool_use id → tool name
        self.rows: list[DraftMessage] = []
        self.row_of: dict[str, DraftMessage] = {}  # line uuid → the row it went into
        self.rowless: dict[str, str | None] = {}  # line uuid without a row → its parent line
        self.keys: set[str] = set()
        self.call_row: dict[str, str] = {}  # tool_use id → key of the row holding the call
        self.groups: dict[str, _Group] = {}
        self.summaries: dict[str, str] = {}
        self.custom_title: str | None = None
        self.meta: dict[str, Any] = {}
        self.session_id: str | None = None
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None
        self.last_task_key: str | None = None
        self.already = 0

    # --- lines -----------------------------------------------------------------------------

    def line(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        try:
            entry = json.loads(text)
        except ValueError:
            self.report.skipped["corrupt line (not JSON)"] += 1
            return
        if not isinstance(entry, dict):
            self.report.skipped["corrupt line (not an object)"] += 1
            return
        kind = entry.get("type")
        if kind == "summary":
            if isinstance(entry.get("summary"), str):
                self.summaries[str(entry.get("leafUuid"))] = entry["summary"]
            self.report.skipped["summary line (read for the title)"] += 1
            return
        if kind in ("custom-title", "ai-title"):
            title = entry.get("customTitle") or entry.get("aiTitle") or entry.get("title")
            if isinstance(title, str) and title.strip():
                self.custom_title = title.strip()
            self.report.skipped["title line (read for the title)"] += 1
            return
        if kind not in MESSAGE_TYPES:
            reason = SKIPPED_TYPES.get(str(kind), f"{kind or 'untyped'} line")
            self.report.skipped[reason] += 1
            return
        uuid = entry.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            self.report.skipped["message line without a uuid"] += 1
            return
        self._session(entry)
        if uuid in self.known:
            self.already += 1
            return
        when = from_timestamp(entry.get("timestamp")) or self.last_at or datetime.now(UTC)
        self.first_at = min(self.first_at or when, when)
        self.last_at = max(self.last_at or when, when)
        if kind == "assistant":
            self._assistant(entry, uuid, when)
        elif kind == "user":
            self._user(entry, uuid, when)
        else:
            self._system(entry, uuid, when)

    def _session(self, entry: dict[str, Any]) -> None:
        if self.session_id is None and isinstance(entry.get("sessionId"), str):
            self.session_id = entry["sessionId"]
        if entry.get("cwd") and "project_path" not in self.meta:
            self.meta["project_path"] = entry["cwd"]
        if isinstance(entry.get("gitBranch"), str) and (
            entry["gitBranch"] or "git_branch" not in self.meta
        ):
            self.meta["git_branch"] = entry["gitBranch"]  # the latest one wins; "": no repository
        if entry.get("version"):
            self.meta["claude_code_version"] = entry["version"]

    def _parent_key(self, entry: dict[str, Any]) -> str | None:
        parent = entry.get("parentUuid") or entry.get("logicalParentUuid")
        seen: set[str] = set()
        while isinstance(parent, str) and parent in self.rowless and parent not in seen:
            seen.add(parent)  # a line that gave no message: link to its parent instead
            parent = self.rowless[parent]
        if not isinstance(parent, str):
            return None
        row = self.row_of.get(parent)
        return row.keys[0] if row is not None else parent  # an earlier import's, or missing

    def _no_row(self, entry: dict[str, Any], uuid: str, reason: str) -> None:
        self.report.skipped[reason] += 1
        parent = entry.get("parentUuid") or entry.get("logicalParentUuid")
        self.rowless[uuid] = parent if isinstance(parent, str) else None

    def _base_meta(self, entry: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if entry.get("isSidechain"):
            meta["sidechain"] = True
            if entry.get("agentId"):
                meta["agent_id"] = entry["agentId"]
        if entry.get("isMeta"):
            meta["is_meta"] = True
        if entry.get("isCompactSummary"):
            meta["compact_summary"] = True
        return meta

    def _new_row(
        self,
        entry: dict[str, Any],
        uuid: str,
        when: datetime,
        parent_key: str | None,
        **fields: Any,
    ) -> DraftMessage:
        key = uuid if uuid not in self.keys else f"{uuid}#{len(self.rows)}"
        self.keys.add(key)
        meta = {**self._base_meta(entry), **fields.pop("meta", {})}
        row = DraftMessage(keys=[key], parent_key=parent_key, created_at=when, meta=meta, **fields)
        if entry.get("isSidechain") and parent_key is None and self.last_task_key is not None:
            row.parent_key = self.last_task_key  # a sub-agent's first line: under its Task call
            row.meta["parent_inferred"] = True
        self.rows.append(row)
        return row

    def _add_key(self, row: DraftMessage, uuid: str) -> None:
        if uuid not in self.keys:
            row.keys.append(uuid)
            self.keys.add(uuid)

    def _open_row(
        self, entry: dict[str, Any], uuid: str, when: datetime, group: _Group
    ) -> DraftMessage:
        """The response's message a block goes on: its last one while that has no tool call
        yet (text goes on; the first call joins the text, as webchat stores it), else a new one
        after it (or, for the response's first, under the line's parent)."""
        last = group.rows[-1] if group.rows else None
        if last is not None and last.tool_call is None:
            self._add_key(last, uuid)
            return last
        parent = self._parent_key(entry) if last is None else last.keys[0]
        row = self._new_row(entry, uuid, when, parent, role=Role.ASSISTANT)
        group.rows.append(row)
        return row

    def _assistant(self, entry: dict[str, Any], uuid: str, when: datetime) -> None:
        message: dict[str, Any] = entry["message"] if isinstance(entry.get("message"), dict) else {}
        group_id = str(message.get("id") or uuid)
        group = self.groups.setdefault(group_id, _Group())
        if isinstance(message.get("usage"), dict):
            group.usage = message["usage"]
        if message.get("stop_reason"):
            group.stop_reason = message["stop_reason"]
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        model = message.get("model")
        row: DraftMessage | None = None  # the message this line's blocks went into
        count = len(group.rows)
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind in ("text", "thinking"):
                row = self._open_row(entry, uuid, when, group)
                if kind == "text":
                    text = str(block.get("text") or "")
                    row.content = f"{row.content}\n\n{text}" if row.content else text
                else:
                    thinking = str(block.get("thinking") or "")
                    row.meta["thinking"] = (row.meta.get("thinking", "") + thinking).strip()
            elif kind == "tool_use":
                call: dict[str, Any] = {
                    "id": block.get("id"),
                    "name": block.get("name"),
                    "arguments": block.get("input") if isinstance(block.get("input"), dict) else {},
                }
                row = self._open_row(entry, uuid, when, group)
                row.tool_call, row.tool_name = call, call["name"]
                if call["id"]:
                    self.tool_names[str(call["id"])] = str(call["name"])
                    self.call_row[str(call["id"])] = row.keys[0]
                if call["name"] in TASK_TOOLS:
                    self.last_task_key = row.keys[0]
            else:
                self.report.skipped[f"{kind or 'untyped'} block"] += 1
        if row is None:  # a response line with nothing to show
            self._no_row(entry, uuid, "empty assistant line")
            return
        for new in group.rows[count:]:
            new.meta["response_id"] = group_id
        if model:
            row.meta["model"] = model
        if entry.get("isApiErrorMessage"):
            row.meta["api_error"] = True
        self.row_of[uuid] = row

    def _user(self, entry: dict[str, Any], uuid: str, when: datetime) -> None:
        message: dict[str, Any] = entry["message"] if isinstance(entry.get("message"), dict) else {}
        content = message.get("content")
        parent_key = self._parent_key(entry)
        row: DraftMessage | None = None
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                call_id = str(block.get("tool_use_id") or "")
                text = _text_blocks(block.get("content"))
                failed = bool(block.get("is_error"))
                row = self._new_row(
                    entry,
                    uuid,
                    when,
                    self.call_row.get(call_id, parent_key),
                    role=Role.TOOL,
                    content=text,
                    tool_name=self.tool_names.get(call_id),
                    tool_result={
                        "tool_call_id": call_id or None,
                        "result": None if failed else text,
                        "error": text if failed else None,
                    },
                )
                parent_key = row.keys[0]
        text = (
            content
            if isinstance(content, str)
            else _text_blocks(
                [b for b in blocks if isinstance(b, dict) and b.get("type") != "tool_result"]
            )
        )
        if text.strip():
            row = self._new_row(entry, uuid, when, parent_key, role=Role.USER, content=text)
        if row is None:
            self._no_row(entry, uuid, "empty user line")
            return
        self.row_of[uuid] = row

    def _system(self, entry: dict[str, Any], uuid: str, when: datetime) -> None:
        text = entry.get("content") if isinstance(entry.get("content"), str) else ""
        subtype = entry.get("subtype")
        meta = {k: v for k, v in (("subtype", subtype), ("level", entry.get("level"))) if v}
        row = self._new_row(
            entry,
            uuid,
            when,
            self._parent_key(entry),
            role=Role.SYSTEM,
            content=text or str(subtype or "system"),
            meta=meta,
        )
        self.row_of[uuid] = row

    # --- the result ------------------------------------------------------------------------

    def draft(self, name: str) -> DraftConversation | None:
        for group_id, group in self.groups.items():
            fields: dict[str, Any] = {}
            if group.usage is not None:
                fields["usage"] = group.usage
            if group.stop_reason:
                fields["finish_reason"] = group.stop_reason
            if group_id in self.heads:  # counted once: on the message an earlier import made
                if fields:
                    self.usage_updates[self.heads[group_id]] = fields
            elif group.rows:
                group.rows[0].meta.update(fields)
        if self.session_id is None and not self.rows:
            return None
        keys = {k for r in self.rows for k in r.keys}
        summary = next((s for leaf, s in reversed(self.summaries.items()) if leaf in keys), None)
        summary = summary or next(reversed(self.summaries.values()), None)
        prompt = next(
            (
                r.content
                for r in self.rows
                if r.role == Role.USER
                and not r.meta.get("is_meta")
                and not r.meta.get("sidechain")
                and not r.meta.get("compact_summary")
                and not r.content.lstrip().startswith("<")
            ),
            None,
        )
        title = self.custom_title or summary or (title_from(prompt) if prompt else "")
        when = self.first_at or datetime.now(UTC)
        main = [(r.created_at, i) for i, r in enumerate(self.rows) if not r.meta.get("sidechain")]
        current = self.rows[max(main)[1]].keys[0] if main else None
        project = re.split(r"[\\/]", str(self.meta.get("project_path") or "").rstrip("\\/"))[-1]
        return DraftConversation(
            source=SOURCE,
            source_id=self.session_id or name,
            title=title,
            fallback_title=f"Claude Code · {project or name[:8]} · {when:%Y-%m-%d %H:%M}",
            created_at=when,
            updated_at=self.last_at or when,
            messages=self.rows,
            meta={
                "session_id": self.session_id or name,
                "source_file": name,
                "source_model": next(
                    (r.meta["model"] for r in reversed(self.rows) if r.meta.get("model")), None
                ),
                **self.meta,
            },
            current_key=current,
        )


def read(
    lines: Iterable[str],
    report: ImportReport,
    name: str = "session",
    earlier: Earlier | None = None,
) -> Session:
    """Read a session's ``lines`` into a draft; lines an ``earlier`` import stored are left out.
    Skipped lines are counted into ``report``."""
    reader = _Reader(report, earlier or Earlier())
    for text in lines:
        reader.line(text)
    return Session(reader.draft(name), reader.already, reader.usage_updates)


@dataclass
class Earlier:
    """What an earlier import stored of a session: its line uuids, tool names by tool_use id,
    and the message carrying each response's usage (by ``message.id``)."""

    lines: set[str] = field(default_factory=set)
    tool_names: dict[str, str] = field(default_factory=dict)
    heads: dict[str, Any] = field(default_factory=dict)


def earlier_import(conversation: Any) -> Earlier:
    """:class:`Earlier` for ``conversation`` (one query over its messages)."""
    earlier = Earlier()
    rows = db.session.execute(
        select(Message.id, Message.meta, Message.tool_call)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.created_at, Message.id)
    )
    for message_id, meta, call in rows:
        meta = meta or {}
        earlier.lines.update(k.split("#", 1)[0] for k in meta.get("source_ids") or ())
        if isinstance(call, dict) and call.get("id"):
            earlier.tool_names[str(call["id"])] = str(call.get("name"))
        if meta.get("response_id"):
            earlier.heads.setdefault(meta["response_id"], message_id)  # a response's first
    return earlier


def _session_id_of(lines: list[str]) -> str | None:
    for text in lines[:50]:
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("sessionId"), str):
            return entry["sessionId"]
    return None


def import_lines(
    user: User,
    lines: Iterable[str],
    name: str,
    report: ImportReport,
    existing: dict[str, Any] | None = None,
) -> None:
    """Import one session's lines for ``user`` into ``report`` (one commit). ``existing`` maps
    session ids to conversations imported before (see :func:`drafts.sources_of`)."""
    lines = list(lines)
    existing = existing if existing is not None else drafts.sources_of(user, SOURCE)
    session_id = _session_id_of(lines) or name
    conversation = existing.get(session_id)
    earlier = earlier_import(conversation) if conversation is not None else Earlier()
    session = read(lines, report, name, earlier)
    report.files += 1
    report.already_imported += session.already_imported
    if session.draft is None:
        report.failed.append((name, "no conversation lines"))
        return
    written = drafts.write(user, session.draft, report, conversation)
    if written is not None:
        existing[session.draft.source_id] = written
        _update_usage(session.usage_updates)


def _update_usage(updates: dict[Any, dict[str, Any]]) -> None:
    """A response whose first lines an earlier import stored, and whose later lines came now:
    its usage (repeated, growing, on every line) is the latest, on the message holding it."""
    if not updates:
        return
    begin_write()
    for message_id, fields in updates.items():
        message = db.session.get(Message, message_id)
        if message is not None:
            message.meta = {**(message.meta or {}), **fields}
    db.session.commit()


def import_path(user: User, path: Path, report: ImportReport, existing: dict[str, Any]) -> None:
    """Import one session file (read as UTF-8, undecodable bytes replaced)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        import_lines(user, f, path.stem, report, existing)


def import_paths(user: User, paths: Iterable[Path]) -> Iterator[tuple[Path, ImportReport]]:
    """Import each session file in turn (one commit each), yielding ``(path, its report)`` as
    each is done — for a progress bar."""
    existing = drafts.sources_of(user, SOURCE)
    for path in paths:
        report = ImportReport(format=SOURCE)
        import_path(user, path, report, existing)
        yield path, report


def import_bytes(user: User, data: bytes, name: str = "upload") -> ImportReport:
    """Import one uploaded session file for ``user``; returns the report."""
    report = ImportReport(format=SOURCE)
    text = data.decode("utf-8", errors="replace")
    import_lines(user, io.StringIO(text), Path(name).stem or name, report)
    return report
