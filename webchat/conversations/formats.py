"""The HTML flavour of a run's stream, for htmx-ext-sse: fragments rendered from the same
partials as the page, so a streamed bubble and a reloaded one look the same."""

from __future__ import annotations

import uuid

from flask import render_template
from sqlalchemy import select

from ..extensions import db
from ..models import Message, Run
from ..rendering import render_plain
from ..streaming.sse import StoredMessage


class HtmlStreamFormat:
    """Payloads: ``snapshot`` = the live body so far; ``delta`` = escaped text; ``tool_call`` /
    ``tool_result`` = a collapsible block; ``done`` = the finished reply, swapped over the live one.
    """

    def snapshot(self, run_id: uuid.UUID) -> str:
        messages = _run_messages(run_id)
        return render_template("conversations/_live_body.html", messages=messages)

    def delta(self, message: StoredMessage, text: str) -> str:
        return render_plain(text)

    def tool_call(self, message: StoredMessage) -> str:
        return render_template("conversations/_tool.html", message=message)

    def tool_result(self, message: StoredMessage) -> str:
        return render_template("conversations/_tool.html", message=message)

    def error(self, run_id: uuid.UUID, text: str) -> str:
        return render_plain(text)

    def done(self, run_id: uuid.UUID) -> str:
        run = db.session.get(Run, run_id)
        return render_template("conversations/_reply.html", run=run, messages=_run_messages(run_id))


def _run_messages(run_id: uuid.UUID) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message).where(Message.run_id == run_id).order_by(Message.created_at, Message.id)
        )
    )
