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
    )
