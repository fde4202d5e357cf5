"""Anthropic's Messages format at the gateway's door (``POST /v1/messages``).

Follows the Messages API reference (https://docs.anthropic.com/en/api/messages and its
"Streaming messages" page): the body is validated by pydantic models (:class:`MessagesRequest`),
read into canonical turns (a user message's ``tool_result`` blocks become tool turns before its
text; an assistant's ``tool_use`` blocks become one turn each; ``thinking`` blocks are left
out). The answer is a ``message`` object, or with ``stream: true`` the named events
``message_start``, then per content block ``content_block_start`` / ``content_block_delta``
(``thinking_delta``, ``text_delta``, ``input_json_delta``) / ``content_block_stop``, then
``message_delta`` (``stop_reason``, ``usage``) and ``message_stop``; a reply that fails sends an
``error`` event.

Errors are ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's statuses: 400
``invalid_request_error``, 401 ``authentication_error``, 404 ``not_found_error``, 409, 413
``request_too_large``, 429 ``rate_limit_error``, 502 ``api_error`` for a reply that failed
upstream.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..models import Role, Status
from ..streaming.sse import StoredMessage
from . import services
from .canonical import Turn
from .services import Exchange, GatewayError, Outcome

API = "anthropic"
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MessageIn(_Open):
    """One message: ``content`` as text or a list of content blocks."""

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class ToolDef(_Open):
    """A client tool: name, description and ``input_schema`` (JSON Schema)."""

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    input_schema: dict[str, Any]


class MessagesRequest(_Open):
    """The body of ``POST /v1/messages`` (the fields the gateway reads)."""

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[MessageIn] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False
    tools: list[ToolDef] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)


def parse(body: Any) -> Exchange:
    """The request ``body`` (parsed JSON) as an :class:`Exchange`. Raises
    :class:`GatewayError` 400 naming the first bad field or block."""
    try:
        request = MessagesRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise GatewayError(400, f"{where}: {error['msg']}", where) from None
    turns: list[Turn] = []
    for index, message in enumerate(request.messages):
        turns.extend(_turns(message, f"messages.{index}.content"))
    system = request.system
    if isinstance(system, list):
        system = "\n".join(_block_text(b, "system") for b in system)
    params: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    tools = [
        {"name": t.name, "description": t.description or "", "parameters": t.input_schema}
        for t in request.tools or ()
    ]
    return Exchange(API, request.model, system or None, turns, tools, params, request.stream)


def _block_text(block: dict[str, Any], where: str) -> str:
    if block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise GatewayError(
            400, f"{where}: expected a text block, not {block.get('type')!r}.", where
        )
    return block["text"]


def _turns(message: MessageIn, where: str) -> list[Turn]:
    """The turns of one message (see the module)."""
    if isinstance(message.content, str):
        return [Turn(message.role, message.content)]
    texts: list[str] = []
    out: list[Turn] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "text":
            texts.append(_block_text(block, where))
        elif kind in ("thinking", "redacted_thinking") and message.role == Role.ASSISTANT:
            continue
        elif kind == "tool_use" and message.role == Role.ASSISTANT:
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise GatewayError(400, f"{where}: a tool_use block needs id and name.", where)
            arguments = block.get("input")
            call = {
                "id": block["id"],
                "name": block["name"],
                "arguments": arguments if isinstance(arguments, dict) else {},
            }
            text = "".join(texts) if not out else ""
            texts.clear()
            out.append(Turn(Role.ASSISTANT, text, call))
        elif kind == "tool_result" and message.role == Role.USER:
            content = block.get("content")
            if isinstance(content, list):
                content = "\n".join(_block_text(b, where) for b in content)
            out.append(
                Turn(
                    Role.TOOL,
                    content if isinstance(content, str) else "",
                    tool_call_id=str(block.get("tool_use_id") or ""),
                    is_error=bool(block.get("is_error")),
                )
            )
        else:
            raise GatewayError(400, f"{where}: content blocks of type {kind!r} are not supported.")
    if message.role == Role.ASSISTANT:
        if texts or not out:
            out.append(Turn(Role.ASSISTANT, "".join(texts)))
    elif texts or not out:
        out.append(Turn(Role.USER, "\n".join(texts)))
    return out


def message_id(run_id: uuid.UUID) -> str:
    """The ``id`` of a run's message: ``msg_<run uuid hex>``."""
    return f"msg_{run_id.hex}"


def _usage(result: Outcome) -> dict[str, int]:
    return {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens}


def reply(result: Outcome, model: str) -> dict[str, Any]:
    """A finished (or stopped) run's reply as a Messages ``message`` object."""
    content: list[dict[str, Any]] = []
    if result.reasoning_blocks:
        content.extend(result.reasoning_blocks)
    elif result.reasoning:
        content.append({"type": "thinking", "thinking": result.reasoning, "signature": ""})
    if result.text:
        content.append({"type": "text", "text": result.text})
    for call in result.tool_calls:
        content.append(
            {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["arguments"]}
        )
    return {
        "id": message_id(result.run.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(result.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": _usage(result),
    }


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error object for an HTTP ``status``."""
    return {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def error(status: int, message: str, param: str | None = None) -> Response:
    """An error response in Anthropic's shape."""
    response = jsonify(error_body(status, message))
    response.status_code = status
    return response


def _event(name: str, payload: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **payload}, ensure_ascii=False)}\n\n"


class EventStream:
    """:class:`webchat.streaming.sse.StreamFormat` writing the Messages stream's named events
    (see the module) for one run; content blocks are opened and closed as the stored reply
    moves from thinking to text to tool calls."""

    def __init__(self, run_id: uuid.UUID, model: str) -> None:
        self.run_id = run_id
        self.model = model
        self.started = False
        self.block: str | None = None  # the open block's type
        self.index = -1
        self.failed = False

    def write_event(self, data: str, event: str, id: str | None = None) -> str:
        return data

    def _start(self) -> str:
        if self.started:
            return ""
        self.started = True
        message: dict[str, Any] = {
            "id": message_id(self.run_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"message": message})

    def _open(self, kind: str, block: dict[str, Any]) -> str:
        out = self._start() + self._close()
        self.index += 1
        self.block = kind
        return out + _event("content_block_start", {"index": self.index, "content_block": block})

    def _close(self) -> str:
        if self.block is None:
            return ""
        self.block = None
        return _event("content_block_stop", {"index": self.index})

    def _delta(self, delta: dict[str, Any]) -> str:
        return _event("content_block_delta", {"index": self.index, "delta": delta})

    def snapshot(self, run_id: uuid.UUID) -> str | None:
        return None

    def delta(self, message: StoredMessage, text: str) -> str:
        out = ""
        if self.block != "text":
            out = self._open("text", {"type": "text", "text": ""})
        return out + self._delta({"type": "text_delta", "text": text})

    def reasoning(self, message: StoredMessage, text: str) -> str:
        out = ""
        if self.block != "thinking":
            out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        return out + self._delta({"type": "thinking_delta", "thinking": text})

    def tool_call(self, message: StoredMessage) -> str:
        call = message.tool_call or {}
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": call.get("id"),
            "name": call.get("name"),
            "input": {},
        }
        out = self._open("tool_use", block)
        arguments = json.dumps(call.get("arguments") or {}, ensure_ascii=False)
        return out + self._delta({"type": "input_json_delta", "partial_json": arguments})

    def tool_result(self, message: StoredMessage) -> str:
        return ""  # the client runs its tools: a gateway run holds no results

    def error(self, run_id: uuid.UUID, text: str) -> str:
        self.failed = True
        return self._start() + _event("error", {"error": error_body(502, text)["error"]})

    def done(self, run_id: uuid.UUID) -> str:
        if self.failed:
            return ""
        result = services.outcome(run_id)
        reason = STOP_REASONS.get(result.finish_reason, "end_turn")
        if result.run.status != Status.COMPLETE and reason == "tool_use":
            reason = "end_turn"
        return (
            self._start()
            + self._close()
            + _event(
                "message_delta",
                {"delta": {"stop_reason": reason, "stop_sequence": None}, "usage": _usage(result)},
            )
            + _event("message_stop", {})
        )
