"""OpenAI's Chat Completions format at the gateway's door (``POST /v1/chat/completions``).

Follows the API reference of ``POST /v1/chat/completions`` (https://platform.openai.com/docs/
api-reference/chat): the request body is validated by pydantic models (:class:`ChatRequest`,
extra fields allowed and ignored), read into canonical turns; the answer is a
``chat.completion`` object, or with ``stream: true`` a text/event-stream of
``chat.completion.chunk`` objects, one ``data:`` line each, ending with ``data: [DONE]``:

- the first chunk's delta carries ``role: "assistant"``; text arrives in ``delta.content``,
  thinking in ``delta.reasoning_content`` (as DeepSeek and vLLM send it);
- each tool call arrives whole in one chunk, ``delta.tool_calls[0]`` with its ``index`` among
  the reply's calls, ``id``, ``type: "function"`` and ``function.name`` / ``function.arguments``
  (JSON text);
- the last choice chunk has an empty delta and ``finish_reason`` (stop, length, tool_calls,
  content_filter); with ``stream_options.include_usage`` a chunk with ``choices: []`` and
  ``usage`` (``prompt_tokens``, ``completion_tokens``, ``total_tokens``) follows;
- a reply that fails sends ``data: {"error": {...}}`` (the SDK raises ``APIError``).

Errors outside a stream are ``{"error": {"message", "type", "param", "code"}}`` with the status
OpenAI uses: 400 ``invalid_request_error``, 401 ``invalid_api_key``, 404 ``model_not_found``,
409, 413, 429 ``rate_limit_exceeded``, 502 for a reply that failed upstream.
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

API = "openai"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionCall(_Open):
    """``function`` of a tool call: its name and arguments (JSON text, or an object)."""

    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCallIn(_Open):
    """A tool call of an assistant message in the request."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class MessageIn(_Open):
    """One message of ``messages``: content as text or as a list of ``{"type": "text"}``
    parts (other parts, such as images, are refused)."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionDef(_Open):
    """A tool the client offers: name, description and JSON Schema of its parameters."""

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ToolDef(_Open):
    """``{"type": "function", "function": {...}}``."""

    type: Literal["function"] = "function"
    function: FunctionDef


class StreamOptions(_Open):
    """``stream_options``: ``include_usage`` adds the usage chunk before ``[DONE]``."""

    include_usage: bool = False


class ChatRequest(_Open):
    """The body of ``POST /v1/chat/completions`` (the fields the gateway reads)."""

    model: str = Field(min_length=1)
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[ToolDef] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: str | None = None
    n: int | None = Field(default=None, ge=1, le=1)


def parse(body: Any) -> tuple[Exchange, bool]:
    """The request ``body`` (parsed JSON) as an :class:`Exchange`, and whether usage is asked
    for in the stream. Raises :class:`GatewayError` 400 naming the first bad field."""
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        raise GatewayError(400, *_first_error(exc)) from None
    system: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(request.messages):
        text = _text(message.content, f"messages[{index}].content")
        if message.role in ("system", "developer") and not turns:
            system.append(text)
        elif message.role in ("system", "developer"):
            turns.append(Turn(Role.SYSTEM, text))
        elif message.role == "assistant" and message.tool_calls:
            for n, call in enumerate(message.tool_calls):
                turns.append(Turn(Role.ASSISTANT, text if n == 0 else "", _call(call, index)))
        elif message.role == "tool":
            if not message.tool_call_id:
                raise GatewayError(400, "A tool message needs tool_call_id.", "messages")
            turns.append(Turn(Role.TOOL, text, tool_call_id=message.tool_call_id))
        else:
            turns.append(Turn(message.role, text))
    params: dict[str, Any] = {}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_completion_tokens or request.max_tokens:
        params["max_tokens"] = request.max_completion_tokens or request.max_tokens
    if request.reasoning_effort:
        params["reasoning_effort"] = request.reasoning_effort
    tools = [
        {
            "name": t.function.name,
            "description": t.function.description or "",
            "parameters": t.function.parameters,
        }
        for t in request.tools or ()
    ]
    exchange = Exchange(
        API, request.model, "\n\n".join(system) or None, turns, tools, params, request.stream
    )
    usage = bool(request.stream_options and request.stream_options.include_usage)
    return exchange, usage


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"], where


def _text(content: str | list[dict[str, Any]] | None, where: str) -> str:
    """The text of a message's content: a string, or its text parts joined by newlines."""
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise GatewayError(
                400, f"{where}: only text parts are supported, not {part.get('type')!r}.", where
            )
        parts.append(part["text"])
    return "\n".join(parts)


def _call(call: ToolCallIn, index: int) -> dict[str, Any]:
    arguments = call.function.arguments
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            raise GatewayError(
                400,
                f"messages[{index}].tool_calls: the arguments of {call.id!r} are not JSON.",
                "messages",
            ) from None
    if not isinstance(arguments, dict):
        arguments = {"value": arguments}
    return {"id": call.id, "name": call.function.name, "arguments": arguments}


def completion_id(run_id: uuid.UUID) -> str:
    """The ``id`` of a run's completion and of its chunks: ``chatcmpl-<run uuid hex>``."""
    return f"chatcmpl-{run_id.hex}"


def _tool_call(call: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {} if index is None else {"index": index}
    out.update(
        id=call.get("id"),
        type="function",
        function={
            "name": call.get("name"),
            "arguments": json.dumps(call.get("arguments") or {}, ensure_ascii=False),
        },
    )
    return out


def _usage(result: Outcome) -> dict[str, int]:
    return {
        "prompt_tokens": result.input_tokens,
        "completion_tokens": result.output_tokens,
        "total_tokens": result.input_tokens + result.output_tokens,
    }


def completion(result: Outcome, model: str) -> dict[str, Any]:
    """A finished (or stopped) run's reply as a ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.reasoning:
        message["reasoning_content"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = [_tool_call(c) for c in result.tool_calls]
    return {
        "id": completion_id(result.run.id),
        "object": "chat.completion",
        "created": services.created_s(result.run),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
    }


_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object for an HTTP ``status``."""
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    if status == 404 and param != "model":
        code = "not_found"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error(status: int, message: str, param: str | None = None) -> Response:
    """An error response in OpenAI's shape."""
    response = jsonify(error_body(status, message, param))
    response.status_code = status
    return response


def _data(payload: Any) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n"


class ChunkStream:
    """:class:`webchat.streaming.sse.StreamFormat` writing ``chat.completion.chunk`` events
    (see the module) for one run; ``write_event`` passes them through whole."""

    def __init__(self, run_id: uuid.UUID, model: str, created: int, include_usage: bool) -> None:
        self.id = completion_id(run_id)
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.started = False
        self.calls = 0
        self.failed = False

    def write_event(self, data: str, event: str, id: str | None = None) -> str:
        return data

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        if not self.started:
            delta = {"role": "assistant", **delta}
            self.started = True
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return _data(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [choice],
            }
        )

    def snapshot(self, run_id: uuid.UUID) -> str | None:
        return None

    def delta(self, message: StoredMessage, text: str) -> str:
        return self._chunk({"content": text})

    def reasoning(self, message: StoredMessage, text: str) -> str:
        return self._chunk({"reasoning_content": text})

    def tool_call(self, message: StoredMessage) -> str:
        self.calls += 1
        return self._chunk({"tool_calls": [_tool_call(message.tool_call, self.calls - 1)]})

    def tool_result(self, message: StoredMessage) -> str:
        return ""  # the client runs its tools: a gateway run holds no results

    def error(self, run_id: uuid.UUID, text: str) -> str:
        self.failed = True
        return _data(error_body(502, text))

    def done(self, run_id: uuid.UUID) -> str:
        if self.failed:
            return _data("[DONE]")
        result = services.outcome(run_id)
        reason = result.finish_reason if result.run.status != Status.ERROR else "stop"
        out = self._chunk({}, reason)
        if self.include_usage:
            out += _data(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": _usage(result),
                }
            )
        return out + _data("[DONE]")
