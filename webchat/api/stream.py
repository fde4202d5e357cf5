"""The JSON flavour of a run's stream, for programs (``GET /api/v1/messages/{id}/stream``).

The same events and event ids as the page's stream (:func:`webchat.streaming.sse.follow`), each
``data:`` a JSON object:

- ``delta``: ``{"message_id", "text"}``, text appended to that message of the reply;
- ``reasoning``: ``{"message_id", "reasoning"}``, thinking appended to that message's
  ``reasoning`` (sent while its content is still empty);
- ``tool_call``: ``{"message_id", "tool_name", "tool_call"}``, once its message is final;
- ``tool_result``: ``{"message_id", "tool_name", "tool_result", "content"}``;
- ``error``: ``{"message"}``, readable, before ``done`` when the run failed;
- ``done``: ``{"status", "message", "messages"}``, the run's ending, its last message and all
  of its messages (as ``GET /api/v1/messages/{id}`` gives them).

There is no ``snapshot``: a client that reconnects with ``Last-Event-ID`` gets exactly what it
has not seen, and one without gets everything from the start.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..extensions import db
from ..models import Run
from ..streaming.sse import StoredMessage
from ..streaming.store import run_messages
from .schemas import MessageOut


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


class JsonStreamFormat:
    """:class:`webchat.streaming.sse.StreamFormat` with JSON payloads (see the module)."""

    def snapshot(self, run_id: uuid.UUID) -> str | None:
        return None

    def delta(self, message: StoredMessage, text: str) -> str:
        return _json({"message_id": message.id, "text": text})

    def reasoning(self, message: StoredMessage, text: str) -> str:
        return _json({"message_id": message.id, "reasoning": text})

    def tool_call(self, message: StoredMessage) -> str:
        return _json(
            {
                "message_id": message.id,
                "tool_name": message.tool_name,
                "tool_call": message.tool_call,
            }
        )

    def tool_result(self, message: StoredMessage) -> str:
        return _json(
            {
                "message_id": message.id,
                "tool_name": message.tool_name,
                "tool_result": message.tool_result,
                "content": message.text,
                "status": message.status,
            }
        )

    def error(self, run_id: uuid.UUID, text: str) -> str:
        return _json({"message": text})

    def done(self, run_id: uuid.UUID) -> str:
        run = db.session.get(Run, run_id)
        messages = [m.model_dump(mode="json") for m in MessageOut.many(run_messages(run_id))]
        return _json(
            {
                "status": run.status if run else None,
                "message": messages[-1] if messages else None,
                "messages": messages,
            }
        )
