"""Anthropic Messages through the official ``anthropic`` SDK, streaming.

The stream is Anthropic's named SSE events (the SDK needs the ``event:`` lines): ``message_start``
(input token usage), ``content_block_start`` / ``content_block_delta`` / ``content_block_stop``
per block — ``text_delta`` text is yielded at once, a ``tool_use`` block's ``input_json_delta``
fragments are joined and yielded as one :class:`ToolCall` at its block's stop — then
``message_delta`` (stop reason, output tokens) and ``message_stop``. An ``error`` event after the
HTTP 200 makes the SDK raise, which becomes a :class:`ProviderError`. The base URL takes no
``/v1``.

Thinking: a ``thinking`` block's ``thinking_delta`` text is yielded as :class:`ReasoningDelta`
as it comes, and the block whole, with the signature its ``signature_delta`` carries, as a
:class:`ReasoningBlock` at its stop; a ``redacted_thinking`` block (opaque ``data``, no deltas)
only as a block. The blocks are passed back, first in their assistant turn and unchanged, on
later requests, as the API requires within a tool loop. A second ``message_start`` is taken as
a restatement, and block types webchat does not know are logged and skipped.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic

from .base import (
    ChatMessage,
    Event,
    Finish,
    ReasoningBlock,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Usage,
    fenced,
)
from .common import SdkProvider, parse_arguments

log = logging.getLogger(__name__)
KNOWN_BLOCKS = {"text", "tool_use", "thinking", "redacted_thinking"}
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}  # tokens per reasoning effort


def to_anthropic_messages(
    messages: Sequence[ChatMessage],
) -> tuple[str | None, list[dict[str, Any]]]:
    """The history as ``(system, messages)`` in the Messages API form.

    System messages join into the ``system`` parameter. Assistant text and tool calls become
    ``text`` and ``tool_use`` blocks; tool messages become ``tool_result`` blocks of a user
    message; consecutive messages of one role merge into one (the API alternates roles), so
    parallel tool calls stored one per message go back as one assistant turn. Blank text is
    left out (the API refuses empty text blocks). An assistant step's signed thinking blocks
    (``reasoning_blocks``) go first in its turn, as they were received.
    """
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role == "system":
            continue
        text: list[dict[str, Any]] = (
            [{"type": "text", "text": m.content}] if m.content.strip() else []
        )
        if m.role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.content,
            }
            if m.is_error:
                result["is_error"] = True
            add("user", [result])
        elif m.role == "assistant":
            text[:0] = [dict(block) for block in m.reasoning_blocks]
            if m.tool_call:
                text.append(
                    {
                        "type": "tool_use",
                        "id": m.tool_call["id"],
                        "name": m.tool_call["name"],
                        "input": m.tool_call.get("arguments") or {},
                    }
                )
            add("assistant", text)
        else:
            add("user", user_blocks(m))
    return system or None, out


def user_blocks(m: ChatMessage) -> list[dict[str, Any]]:
    """A user message's blocks: with files (issue 14), ``image`` and ``document`` blocks
    (base64 sources; PDFs as ``application/pdf`` documents) first, as Anthropic advises, then
    the text with each text file inlined as a fenced block under its name."""
    blocks: list[dict[str, Any]] = []
    texts = []
    for a in m.attachments:
        source = {
            "type": "base64",
            "media_type": a.media_type,
            "data": base64.b64encode(a.data).decode(),
        }
        if a.kind == "image":
            blocks.append({"type": "image", "source": source})
        elif a.kind == "pdf":
            blocks.append({"type": "document", "source": source, "title": a.name})
        else:
            texts.append(fenced(a))
    text = "\n\n".join([m.content, *texts] if m.content.strip() else texts)
    return blocks + ([{"type": "text", "text": text}] if text.strip() else [])


class AnthropicProvider(SdkProvider):
    """``anthropic/<model>``: Claude through the Messages API.

    ``max_tokens`` (tokens) caps each response, as the API requires; ``options`` are those of
    :class:`~webchat.providers.common.SdkProvider` (the base URL without ``/v1``).
    """

    name = "anthropic"
    label = "Anthropic"
    takes_params = True

    def __init__(self, *, max_tokens: int = 4096, **options: Any) -> None:
        super().__init__(anthropic.Anthropic, **options)
        self.max_tokens = max_tokens

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        params: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Stream one message: text and thinking deltas as they come, each tool call when its
        block ends, then usage and the stop reason. ``params``: ``temperature``, ``max_tokens``
        (else the provider's), ``reasoning_effort`` → extended thinking with a budget of
        :data:`THINKING_BUDGETS` tokens (max_tokens raised above it; no temperature, which
        thinking does not take). Raises :class:`ProviderError`."""
        system, history = to_anthropic_messages(messages)
        request: dict[str, Any] = {
            "model": model,
            "messages": history,
            "max_tokens": self.max_tokens,
            "stream": True,
        }
        params = params or {}
        if params.get("max_tokens"):
            request["max_tokens"] = params["max_tokens"]
        budget = THINKING_BUDGETS.get(params.get("reasoning_effort") or "")
        if budget:
            request["thinking"] = {"type": "enabled", "budget_tokens": budget}
            request["max_tokens"] = max(request["max_tokens"], budget + 1024)
        elif params.get("temperature") is not None:
            request["temperature"] = params["temperature"]
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "input_schema": t.get("parameters") or {"type": "object", "properties": {}},
                }
                for t in tools
            ]
        return self.guarded(lambda: self.client.messages.create(**request), _events)


def _input_tokens(usage: Any) -> int | None:
    """Prompt tokens, cache reads and writes included (all of them were processed)."""
    if usage is None or usage.input_tokens is None:
        return None
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return usage.input_tokens + cached


def _events(events: Any) -> Iterator[Event]:
    """Map raw Messages stream events to webchat events."""
    tool_blocks: dict[int, dict[str, str]] = {}
    thinking: dict[int, dict[str, Any]] = {}
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    stop_reason: str | None = None
    for event in events:
        kind = event.type
        if kind == "message_start":
            usage = event.message.usage
            input_tokens = _input_tokens(usage) or input_tokens
            output_tokens = usage.output_tokens or output_tokens
            cached_tokens = getattr(usage, "cache_read_input_tokens", None) or cached_tokens
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                tool_blocks[event.index] = {"id": block.id, "name": block.name, "json": ""}
            elif block.type == "thinking":
                thinking[event.index] = {
                    "type": "thinking",
                    "thinking": block.thinking or "",
                    "signature": block.signature or "",
                }
            elif block.type == "redacted_thinking":
                thinking[event.index] = {"type": "redacted_thinking", "data": block.data}
            elif block.type not in KNOWN_BLOCKS:
                log.info("skipped an Anthropic content block of type %r", block.type)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                yield TextDelta(delta.text)
            elif delta.type == "input_json_delta" and event.index in tool_blocks:
                tool_blocks[event.index]["json"] += delta.partial_json
            elif delta.type == "thinking_delta" and event.index in thinking:
                thinking[event.index]["thinking"] += delta.thinking
                if delta.thinking:
                    yield ReasoningDelta(delta.thinking)
            elif delta.type == "signature_delta" and event.index in thinking:
                thinking[event.index]["signature"] += delta.signature
        elif kind == "content_block_stop":
            block = tool_blocks.pop(event.index, None)
            if block is not None:
                yield ToolCall(block["id"], block["name"], parse_arguments(block["json"]))
            signed = thinking.pop(event.index, None)
            if signed is not None:
                yield ReasoningBlock(signed)
        elif kind == "message_delta":
            stop_reason = event.delta.stop_reason or stop_reason
            if event.usage is not None:
                output_tokens = event.usage.output_tokens
                input_tokens = _input_tokens(event.usage) or input_tokens
                cached_tokens = getattr(event.usage, "cache_read_input_tokens", None) or (
                    cached_tokens
                )
        elif kind == "message_stop":
            break
    if input_tokens is not None or output_tokens is not None:
        yield Usage(input_tokens, output_tokens, cached_tokens)
    if stop_reason is not None:
        yield Finish(stop_reason)
