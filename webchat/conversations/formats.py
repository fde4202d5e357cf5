"""The HTML flavour of a run's stream, for htmx-ext-sse: fragments rendered from the same
partials as the page, so a streamed bubble and a reloaded one look the same."""

from __future__ import annotations

import uuid

from flask import render_template

from .. import tree
from ..extensions import db
from ..models import Run
from ..providers import available_models
from ..rendering import render_plain
from ..streaming.sse import StoredMessage
from ..streaming.store import run_messages


class HtmlStreamFormat:
    """Payloads: ``snapshot`` = the live body so far; ``delta`` = escaped text; ``reasoning`` =
    escaped thinking in a ``span.thinking-live`` (the same as the snapshot shows); ``tool_call`` /
    ``tool_result`` = a collapsible block; ``done`` = the finished reply, swapped over the live one.
    """

    def snapshot(self, run_id: uuid.UUID) -> str:
        messages = run_messages(run_id)
        return render_template("conversations/_live_body.html", messages=messages)

    def delta(self, message: StoredMessage, text: str) -> str:
        return render_plain(text)

    def reasoning(self, message: StoredMessage, text: str) -> str:
        return render_template("conversations/_thinking_live.html", text=text)

    def tool_call(self, message: StoredMessage) -> str:
        return render_template("conversations/_tool.html", message=message)

    def tool_result(self, message: StoredMessage) -> str:
        return render_template("conversations/_tool.html", message=message)

    def error(self, run_id: uuid.UUID, text: str) -> str:
        return render_plain(text)

    def done(self, run_id: uuid.UUID) -> str:
        run = db.session.get(Run, run_id)
        messages = run_messages(run_id)
        return render_template(
            "conversations/_reply.html",
            run=run,
            messages=messages,
            siblings=tree.siblings(messages[:1]),
            models=available_models(),
        )
