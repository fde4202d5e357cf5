"""OpenAI-compatible chat completions through the official ``openai`` SDK.

One provider covers OpenAI itself and the servers that speak its API (Ollama, vLLM, llama.cpp
server, LM Studio): ``OPENAI_BASE_URL`` points at them and ``OPENAI_MODELS`` / the server's own
``GET /models`` name the models. Requests stream with ``stream_options.include_usage`` so the last
chunk carries token usage. The wire format is OpenAI's ``chat.completion.chunk``: text arrives in
``choices[0].delta.content``; a tool call arrives in pieces under
``choices[0].delta.tool_calls[i]`` (its ``id`` and ``function.name`` first, then
``function.arguments`` as JSON text fragments), and is yielded once assembled.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import openai

from .base import ChatMessage, Event, Finish, TextDelta, ToolCall, Usage
from .common import SdkProvider, parse_arguments


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The history in chat-completions form.

    An assistant tool call becomes ``tool_calls: [{"id", "type": "function", "function": {"name",
    "arguments": <JSON text>}}]``; consecutive assistant messages that carry only a tool call are
    merged into the one before (webchat stores parallel calls one per message); a tool message
    becomes ``{"role": "tool", "tool_call_id", "content"}``.
    """
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.role == "assistant" and m.tool_call:
            call = {
                "id": m.tool_call["id"],
                "type": "function",
                "function": {
                    "name": m.tool_call["name"],
                    "arguments": json.dumps(m.tool_call.get("arguments") or {}),
                },
            }
            previous = out[-1] if out else None
            if previous and previous.get("tool_calls") and not m.content:
                previous["tool_calls"].append(call)
            else:
                out.append(
                    {"role": "assistant", "content": m.content or None, "tool_calls": [call]}
                )
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class OpenAIProvider(SdkProvider):
    """``openai/<model>``: any OpenAI-compatible chat-completions server.

    ``options`` are those of :class:`~webchat.providers.common.SdkProvider` (``api_key``,
    ``base_url``, ``models``, ``list_models``, ``timeout_ms``, ``max_retries``…);
    ``send_tools`` False leaves tool definitions out (for models that reject them).
    """

    name = "openai"
    label = "the OpenAI-compatible server"

    def __init__(self, *, send_tools: bool = True, **options: Any) -> None:
        super().__init__(openai.OpenAI, **options)
        self.send_tools = send_tools

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
    ) -> Iterator[Event]:
        """Stream one chat completion: text deltas as they come; tool calls, usage and the finish
        reason once the upstream has sent them whole. Raises :class:`ProviderError`."""
        request: dict[str, Any] = {
            "model": model,
            "messages": to_openai_messages(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools and self.send_tools:
            request["tools"] = [{"type": "function", "function": dict(t)} for t in tools]
        return self.guarded(lambda: self.client.chat.completions.create(**request), _events)


def _events(chunks: Any) -> Iterator[Event]:
    """Map ``chat.completion.chunk`` objects to events (only choice 0 is read)."""
    calls: dict[int, dict[str, str]] = {}
    finish: str | None = None
    usage: Usage | None = None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None and delta.content:
                yield TextDelta(delta.content)
            for piece in (delta.tool_calls if delta is not None else None) or ():
                call = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                if piece.id and not call["id"]:
                    call["id"] = piece.id
                if piece.function is not None:
                    if piece.function.name and not call["name"]:
                        call["name"] = piece.function.name
                    call["arguments"] += piece.function.arguments or ""
            if choice.finish_reason:
                finish = choice.finish_reason
    for index in sorted(calls):
        call = calls[index]
        yield ToolCall(
            id=call["id"] or f"call_{uuid.uuid4().hex[:24]}",
            name=call["name"],
            arguments=parse_arguments(call["arguments"]),
        )
    if usage is not None:
        yield usage
    if finish is not None:
        yield Finish(finish)
