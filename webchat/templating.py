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
    """ "model · 12 in / 340 out tokens · stop" from a message's metadata, for a hover title."""
    meta = meta or {}
    parts = [str(meta["model"])] if meta.get("model") else []
    usage = meta.get("usage") or {}
    if usage.get("input_tokens") is not None or usage.get("output_tokens") is not None:
        parts.append(
            f"{usage.get('input_tokens', '?')} in / {usage.get('output_tokens', '?')} out tokens"
        )
    if meta.get("finish_reason"):
        parts.append(f"finish: {meta['finish_reason']}")
    return " · ".join(parts)


def tojson_pretty(value: Any) -> str:
    """``value`` as indented JSON text (escaped by Jinja when shown)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.jinja_env.filters.update(
        groupby_run=groupby_run,
        message_html=message_html,
        usage_title=usage_title,
        tojson_pretty=tojson_pretty,
    )
