"""Jinja filters the templates share."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from markupsafe import Markup

from .models import Message
from .rendering import render_markdown


@dataclass
class Turn:
    """Consecutive messages shown as one bubble: a run's messages, or one message alone."""

    run_id: uuid.UUID | None
    messages: list[Message] = field(default_factory=list)
    run: Any = None


def groupby_run(messages: Iterable[Message]) -> list[Turn]:
    """Group consecutive messages of the same run; messages without a run stand alone."""
    turns: list[Turn] = []
    for m in messages:
        if m.run_id is not None and turns and turns[-1].run_id == m.run_id:
            turns[-1].messages.append(m)
        else:
            turns.append(Turn(m.run_id, [m]))
    return turns


@dataclass
class ToolStep:
    """One tool call and its result, shown as one block. ``call`` is the assistant message with
    the ``tool_call`` ``{"id", "name", "arguments"}`` (None for a result whose call is not in the
    list); ``result`` the ``tool`` message with ``tool_result`` ``{"tool_call_id", "result",
    "error", "duration_ms"}`` (None while the call runs, or when it never got an answer)."""

    call: Any = None
    result: Any = None

    @property
    def anchor(self) -> Any:
        """The message whose id names the block (``step-<uuid>``): the call, else the result."""
        return self.call if self.call is not None else self.result

    @property
    def name(self) -> str:
        """The tool's name."""
        call = _mapping(self.call.tool_call) if self.call is not None else {}
        either = self.call if self.call is not None else self.result
        return str(either.tool_name or call.get("name") or "tool")

    @property
    def arguments(self) -> Any:
        """The call's arguments (a dict, or the raw text a model sent); None without a call."""
        return _mapping(self.call.tool_call).get("arguments") if self.call is not None else None

    @property
    def outcome(self) -> dict:
        """The result's ``tool_result`` mapping ({} without a result)."""
        return _mapping(self.result.tool_result) if self.result is not None else {}

    @property
    def failed(self) -> bool:
        """True when the result is an error."""
        return bool(self.outcome.get("error"))

    @property
    def duration_ms(self) -> int | None:
        """How long the tool ran, in milliseconds: the result's ``duration_ms``, else (an
        imported step) the time between the call and the result; None when unknown."""
        duration = self.outcome.get("duration_ms")
        if isinstance(duration, int | float):
            return int(duration)
        call, result = self.call, self.result
        if call is None or result is None:
            return None
        start, end = getattr(call, "created_at", None), getattr(result, "created_at", None)
        if start is None or end is None or end <= start:
            return None
        return int((end - start).total_seconds() * 1000)

    @property
    def output(self) -> str:
        """The result as text: the error, the result (JSON indented when it is not text), or the
        message's content; "" without a result."""
        if self.result is None:
            return ""
        outcome = self.outcome
        if outcome.get("error"):
            return str(outcome["error"])
        if "result" in outcome and outcome["result"] is not None:
            value = outcome["result"]
            return value if isinstance(value, str) else tojson_pretty(value)
        return str(getattr(self.result, "content", None) or getattr(self.result, "text", ""))

    @property
    def summary(self) -> str:
        """The key argument, one line of at most :data:`SUMMARY_CHARS` characters: see
        :func:`tool_summary`."""
        return tool_summary(self.arguments)


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


SUMMARY_CHARS = 80
# The argument that says what a call does, by name, in order of preference: a shell command, a
# file path, a URL, a search query, a pattern, an expression.
KEY_ARGUMENTS = (
    "command",
    "cmd",
    "file_path",
    "path",
    "notebook_path",
    "url",
    "query",
    "q",
    "pattern",
    "expression",
    "description",
    "prompt",
)


def tool_summary(arguments: Any) -> str:
    """A tool call's key argument for its one-line summary: the first of :data:`KEY_ARGUMENTS`
    present, else the first argument; its first non-empty line, cut at :data:`SUMMARY_CHARS`
    characters with "…". Arguments that are not a dict (raw text) are summarised as text;
    "" when there are none."""
    if isinstance(arguments, dict):
        key = next((k for k in KEY_ARGUMENTS if arguments.get(k) not in (None, "")), None)
        if key is None:
            key = next(iter(arguments), None)
        value = arguments.get(key) if key is not None else None
    else:
        value = arguments
    if value in (None, "", {}, []):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    more = len(text.strip().splitlines()) > 1
    if len(line) > SUMMARY_CHARS:
        return line[: SUMMARY_CHARS - 1].rstrip() + "…"
    return line + (" …" if more else "")


@dataclass
class ReplyItem:
    """What a reply shows, in order: ``kind`` is ``"message"`` (``message``: text, thinking),
    ``"step"`` (``steps``: one :class:`ToolStep`), ``"steps"`` (``steps``: more than
    :data:`STEPS_FOLDED` consecutive steps, folded under "N steps") or ``"approval"``
    (``message``: a tool call awaiting the person's approval, see :mod:`webchat.mcp.approval`)."""

    kind: str
    message: Any = None
    steps: list[ToolStep] = field(default_factory=list)


STEPS_FOLDED = 5  # a run of more consecutive tool steps than this folds under "N steps"


def reply_items(messages: Iterable[Any]) -> list[ReplyItem]:
    """A reply's messages (Message or the stream's StoredMessage) as :class:`ReplyItem`: each
    tool call paired with its result (by ``tool_call_id``, else the next result) as one step,
    an assistant message's text and thinking before its call, and runs of more than
    :data:`STEPS_FOLDED` steps with no text between them folded. An imported call whose result
    is on a side branch gets it from there (one query; see :func:`_answer_from_side_branches`)."""
    items: list[ReplyItem] = []
    open_calls: dict[str, ToolStep] = {}
    waiting: list[ToolStep] = []  # calls without an id, answered in order
    for m in messages:
        if m.role == "tool" and getattr(m, "status", None) == "awaiting_approval":
            # the approval card shows the call (tool, server, arguments): it takes the place of
            # the call's step, which is not looked for on side branches either
            waiting_id = _mapping(_mapping(getattr(m, "meta", None)).get("approval")).get("call_id")
            called = open_calls.pop(str(waiting_id), None) if waiting_id else None
            items = [i for i in items if not (i.kind == "step" and i.steps[0] is called)]
            items.append(ReplyItem("approval", message=m))
            continue
        if m.role == "tool":
            call_id = _mapping(m.tool_result).get("tool_call_id")
            step = open_calls.pop(str(call_id), None) if call_id else None
            if step is None and waiting:
                step = waiting.pop(0)
            if step is not None and step.result is None:
                step.result = m
            else:
                items.append(ReplyItem("step", steps=[ToolStep(None, m)]))
            continue
        if (m.content or "").strip() or getattr(m, "reasoning", None):
            items.append(ReplyItem("message", message=m))
        if m.tool_call:
            step = ToolStep(m)
            call_id = _mapping(m.tool_call).get("id")
            if call_id:
                open_calls[str(call_id)] = step
            else:
                waiting.append(step)
            items.append(ReplyItem("step", steps=[step]))
    _answer_from_side_branches([*open_calls.values(), *waiting])
    return _fold(items)


def _answer_from_side_branches(steps: list[ToolStep]) -> None:
    """Give imported calls left without a result on the path their result from a side branch:
    a Claude Code import stores a response's parallel calls as a chain and each result under its
    own call, so all but the last call's result are siblings of the next call. One query (by
    ``parent_id``), only when a call is unanswered (a live run's results are on its path)."""
    calls = {s.call.id: s for s in steps if isinstance(s.call, Message) and s.result is None}
    if not calls:
        return
    from sqlalchemy import select

    from .extensions import db

    results = db.session.scalars(
        select(Message)
        .where(Message.parent_id.in_(list(calls)), Message.role == "tool")
        .order_by(Message.created_at, Message.id)
    )
    for result in results:
        step = calls.get(result.parent_id) if result.parent_id else None
        wanted = _mapping(step.call.tool_call).get("id") if step else None
        if (
            step
            and step.result is None
            and _mapping(result.tool_result).get("tool_call_id")
            in (
                wanted,
                None,
            )
        ):
            step.result = result


def _fold(items: list[ReplyItem]) -> list[ReplyItem]:
    out: list[ReplyItem] = []
    run: list[ReplyItem] = []

    def flush() -> None:
        if len(run) > STEPS_FOLDED:
            out.append(ReplyItem("steps", steps=[item.steps[0] for item in run]))
        else:
            out.extend(run)
        run.clear()

    for item in items:
        if item.kind == "step":
            run.append(item)
        else:
            flush()
            out.append(item)
    flush()
    return out


RESULT_CUT = 2000  # characters of a tool result shown before "Show all"


def cut_text(text: str, limit: int = RESULT_CUT) -> tuple[str, str]:
    """``text`` split for a long result: (what shows, the rest behind "Show all"); the cut
    falls at the last line break before ``limit`` characters when there is one."""
    if len(text) <= limit:
        return text, ""
    at = text.rfind("\n", 0, limit)
    at = at + 1 if at > limit // 2 else limit
    return text[:at], text[at:]


def message_html(message: Message) -> Markup:
    """The message's stored sanitized HTML; rendered now only if none is stored yet."""
    html = message.content_html
    if html is None:
        html = render_markdown(message.content or "")
    return Markup(html)  # sanitized by nh3 in render_markdown


def usage_title(meta: dict | None) -> str:
    """ "model · 12 in / 340 out tokens · finish: stop · 8 cached · 30 reasoning · $0.00012"
    from a message's metadata, for a hover title (parts it lacks are left out)."""
    meta = meta or {}
    parts = [str(meta["model"])] if meta.get("model") else []
    usage = meta.get("usage") or {}
    if usage.get("input_tokens") is not None or usage.get("output_tokens") is not None:
        tokens = [_count(usage.get(key)) for key in ("input_tokens", "output_tokens")]
        parts.append(f"{tokens[0]} in / {tokens[1]} out tokens")
    if meta.get("finish_reason"):
        parts.append(f"finish: {meta['finish_reason']}")
    parts += _usage_extras(usage)
    return " · ".join(parts)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def reply_usage_title(messages: list[Message]) -> str:
    """:func:`usage_title` of a reply (a run's messages): the last message's model and finish,
    with the usage of all its steps summed (tokens None where no step reported them; the cost
    None when no step was priced)."""
    meta = dict(messages[-1].meta or {}) if messages else {}
    steps = [m.meta["usage"] for m in messages if isinstance((m.meta or {}).get("usage"), dict)]
    if steps:
        meta["usage"] = {
            key: None
            if all(step.get(key) is None for step in steps)
            else sum(step.get(key) or 0 for step in steps)
            for key in (
                "input_tokens",
                "output_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cost_usd",
            )
        }
    return usage_title(meta)


def _usage_extras(usage: dict) -> list[str]:
    parts = [
        f"{usage[k]:,} {k.split('_')[0]}"
        for k in ("cached_tokens", "reasoning_tokens")
        if usage.get(k)
    ]
    if usage.get("cost_usd") is not None:
        parts.append(usd(usage["cost_usd"]))
    return parts


def usd(value: float | None) -> str:
    """A cost in US dollars for people: ``$0.0123``, ``$1.50``; ``—`` when unknown."""
    if value is None:
        return "—"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"


def usage_text(usage: dict | None) -> str:
    """Usage sums as one line: "1,234 in / 567 out tokens · 8 cached · $0.0012" (no cost part
    when it is unknown)."""
    usage = usage or {}
    head = f"{usage.get('input_tokens') or 0:,} in / {usage.get('output_tokens') or 0:,} out tokens"
    return " · ".join([head, *_usage_extras(usage)])


SOURCE_LABELS = {"chatgpt": "ChatGPT", "claude-code": "Claude Code"}


@dataclass
class Source:
    """Where a conversation came from, for its badge: ``label`` ("ChatGPT", "Claude Code",
    "via <token name>" for the API gateway) and the model it used there (``model``, or None)."""

    label: str
    model: str | None


def conversation_source(meta: dict | None) -> Source | None:
    """The :class:`Source` of a conversation from its metadata (``source``, ``source_model``;
    ``source_name`` for ``gateway``), or None for one started here. An unknown source shows as
    its own name."""
    meta = meta or {}
    source = meta.get("source")
    if not source:
        return None
    if source == "gateway":
        label = f"via {meta.get('source_name') or 'the API'}"
    else:
        label = SOURCE_LABELS.get(str(source), str(source))
    model = meta.get("source_model")
    return Source(label, str(model) if model else None)


def tojson_pretty(value: Any) -> str:
    """``value`` as indented JSON text (escaped by Jinja when shown)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def tool_choices(conversation: Any) -> list[tuple[str, bool]]:
    """``(server name, enabled)`` for each tool server, for the conversation's tool picker."""
    from flask import current_app

    from .mcp import registry

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    enabled = set(registry.conversation_tools(app, conversation))
    names = registry.server_names(app, conversation.user_id)
    return [(name, name in enabled) for name in names]


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.jinja_env.filters.update(
        groupby_run=groupby_run,
        message_html=message_html,
        usage_title=usage_title,
        reply_usage_title=reply_usage_title,
        usage_text=usage_text,
        usd=usd,
        tojson_pretty=tojson_pretty,
        tool_choices=tool_choices,
        reply_items=reply_items,
        conversation_source=conversation_source,
        cut_text=cut_text,
    )
