"""The HTML flavour of a run's stream, for htmx-ext-sse: fragments rendered from the same
partials as the page, so a streamed bubble and a reloaded one look the same."""

from __future__ import annotations

import uuid

from flask import render_template

from .. import tree
from ..extensions import db
from ..models import Message, Run
from ..providers import available_models
from ..rendering import render_plain
from ..streaming.sse import StoredMessage
from ..streaming.store import run_messages
from ..templating import ToolStep, reply_items


class HtmlStreamFormat:
    """Payloads: ``snapshot`` = the live body so far; ``delta`` = escaped text; ``reasoning`` =
    escaped thinking in a ``span.thinking-live`` (the same as the snapshot shows); ``tool_call`` /
    ``tool_result`` = the tool step's block (templates/conversations/_tool.html): the call's
    running block, then the step with its result, which replaces it out of band (htmx
    ``hx-swap-oob``); ``done`` = the finished reply, swapped over the live one.
    """

    def snapshot(self, run_id: uuid.UUID) -> str:
        messages = run_messages(run_id)
        return render_template("conversations/_live_body.html", messages=messages)

    def delta(self, message: StoredMessage, text: str) -> str:
        return render_plain(text)

    def reasoning(self, message: StoredMessage, text: str) -> str:
        return render_template("conversations/_thinking_live.html", text=text)

    def tool_call(self, message: StoredMessage) -> str:
        return render_template(
            "conversations/_tool.html", step=ToolStep(message), oob=False, streaming=True
        )

    def tool_result(self, message: StoredMessage) -> str:
        stored = db.session.get(Message, message.id)
        siblings = run_messages(stored.run_id) if stored and stored.run_id else []
        for item in reply_items(siblings):
            for step in item.steps:
                if step.result is not None and step.result.id == message.id:
                    oob = step.call is not None
                    return render_template(
                        "conversations/_tool.html", step=step, oob=oob, streaming=True
                    )
        return render_template(
            "conversations/_tool.html", step=ToolStep(None, message), oob=False, streaming=True
        )

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
