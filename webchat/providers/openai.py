"""OpenAI-compatible chat completions through the official ``openai`` SDK.

One provider covers OpenAI itself and the servers that speak its API (Ollama, vLLM, llama.cpp
server, LM Studio): ``OPENAI_BASE_URL`` points at them and ``OPENAI_MODELS`` / the server's own
``GET /models`` name the models. Requests stream with ``stream_options.include_usage`` so the last
chunk carries token usage. The wire format is OpenAI's ``chat.completion.chunk``: text arrives in
``choices[0].delta.content``; a tool call arrives in pieces under
``choices[0].delta.tool_calls[i]`` (its ``id`` and ``function.name`` first, then
``function.arguments`` as JSON text fragments), and is yielded once assembled.

Servers that speak this API bend it; the stream is read by what it carries, not by OpenAI's
letter (docs/providers.md has the table, with the test of each row). Chunks are read as plain
JSON (``to_dict()``), so fields the SDK's types do not declare are seen:

- a stream that ends (``[DONE]`` or EOF) without any ``finish_reason`` is judged by what arrived:
  tool calls make a tool turn, anything else a complete reply (:class:`Finish` ``inferred``);
  ``finish_reason`` may come on a chunk with an empty delta, twice, or be a name the SDK does not
  know (kept as sent);
- usage may come in a last chunk with empty ``choices``, inside the last choice chunk, twice, or
  not at all; cached and reasoning tokens are read from ``*_tokens_details`` or DeepSeek's
  ``prompt_cache_hit_tokens``; a reported price from OpenRouter's ``cost`` or xAI's
  ``cost_in_usd_ticks``;
- tool-call pieces may lack ``index`` (Mistral: a new ``id`` starts a new call), start at index 1,
  repeat the function name (never concatenated), send the arguments whole or as a JSON object
  instead of text; a call without an id gets one;
- reasoning arrives as ``reasoning_content`` (DeepSeek, vLLM, llama.cpp, xAI), ``reasoning`` or
  ``reasoning_details`` (OpenRouter), or as a leading ``<think>…</think>`` inside ``content``
  (models served by Ollama and others): all become :class:`ReasoningDelta`;
- only choice 0 is read; ``content: null`` and role-only chunks carry nothing;
- a ``data:`` chunk holding ``{"error": …}`` after the 200 makes the SDK raise (an error);
  ``: PROCESSING`` comments are skipped by the SDK's SSE reader; a 200 whose body is one JSON
  ``chat.completion`` instead of a stream is read as if it were one chunk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import openai

from .base import (
    ChatMessage,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Usage,
    data_url,
    fenced,
)
from .common import SdkProvider, parse_arguments


def user_content(m: ChatMessage, *, pdf_parts: bool = False) -> str | list[dict[str, Any]]:
    """A user message's ``content``: its text alone, or with files (issue 14) a list of parts —
    the text with each text file (and, without ``pdf_parts``, each PDF's text) inlined as a
    fenced block under its name, then ``image_url`` parts (data URLs) and, with ``pdf_parts``,
    ``file`` parts (``{"filename", "file_data": <data URL>}``) for PDFs."""
    if not m.attachments:
        return m.content
    texts = [m.content] if m.content else []
    parts: list[dict[str, Any]] = []
    for a in m.attachments:
        if a.kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": data_url(a)}})
        elif a.kind == "pdf" and pdf_parts:
            parts.append({"type": "file", "file": {"filename": a.name, "file_data": data_url(a)}})
        else:
            texts.append(fenced(a))
    text = "\n\n".join(texts)
    return ([{"type": "text", "text": text}] if text else []) + parts


def to_openai_messages(
    messages: Sequence[ChatMessage], *, pdf_parts: bool = False
) -> list[dict[str, Any]]:
    """The history in chat-completions form.

    An assistant tool call becomes ``tool_calls: [{"id", "type": "function", "function": {"name",
    "arguments": <JSON text>}}]``; consecutive assistant messages that carry only a tool call are
    merged into the one before (webchat stores parallel calls one per message); a tool message
    becomes ``{"role": "tool", "tool_call_id", "content"}``; a user message with files gets
    content parts (:func:`user_content`).
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
        elif m.role == "user":
            out.append({"role": "user", "content": user_content(m, pdf_parts=pdf_parts)})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


class OpenAIProvider(SdkProvider):
    """``openai/<model>``: any OpenAI-compatible chat-completions server.

    ``options`` are those of :class:`~webchat.providers.common.SdkProvider` (``api_key``,
    ``base_url``, ``models``, ``list_models``, ``timeout_ms``, ``max_retries``…);
    ``send_tools`` False leaves tool definitions out (for models that reject them);
    ``pdf_parts`` sends PDFs as ``file`` parts (OpenAI's own API) instead of their text.
    """

    name = "openai"
    label = "the OpenAI-compatible server"
    takes_params = True

    def __init__(self, *, send_tools: bool = True, pdf_parts: bool = False, **options: Any) -> None:
        super().__init__(openai.OpenAI, **options)
        self.send_tools = send_tools
        self.pdf_parts = pdf_parts
        # OpenAI itself wants max_completion_tokens (its reasoning models refuse max_tokens);
        # the servers that copy its API know max_tokens.
        self.max_tokens_key = "max_tokens" if options.get("base_url") else "max_completion_tokens"

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        params: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Stream one chat completion: text and reasoning deltas as they come; tool calls, usage
        and the finish reason once the upstream has sent them whole. ``params`` become
        ``temperature``, ``max_tokens`` (``max_completion_tokens`` for OpenAI itself) and
        ``reasoning_effort``. Raises :class:`ProviderError`."""
        request: dict[str, Any] = {
            "model": model,
            "messages": to_openai_messages(messages, pdf_parts=self.pdf_parts),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools and self.send_tools:
            request["tools"] = [{"type": "function", "function": dict(t)} for t in tools]
        params = params or {}
        for key, sent in (
            ("temperature", "temperature"),
            ("max_tokens", self.max_tokens_key),
            ("reasoning_effort", "reasoning_effort"),
        ):
            if params.get(key) is not None:
                request[sent] = params[key]
        return self.guarded(lambda: self._open(request), _events)

    def _open(self, request: dict[str, Any]) -> Any:
        """Send ``request``; the SDK's chunk stream, or :class:`_WholeResponse` when the server
        answered the streamed request with one JSON body."""
        raw = self.client.chat.completions.with_raw_response.create(**request)
        if "json" in (raw.headers.get("content-type") or ""):
            return _WholeResponse(raw.http_response)
        return raw.parse()


class _WholeResponse:
    """A 200 answered with one JSON ``chat.completion`` (or an ``{"error"}`` object) to a
    streamed request: iterates it as a single chunk dict (``message`` read as the ``delta``)."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            body = json.loads(self.response.read())
        finally:
            self.response.close()
        if isinstance(body, dict) and body.get("error"):
            raise openai.APIError(
                _error_text(body["error"]), request=self.response.request, body=body["error"]
            )
        if not isinstance(body, dict):
            raise ValueError("the response is not a JSON object")
        choices = [
            {**choice, "delta": choice.get("message") or {}}
            for choice in body.get("choices") or ()
            if isinstance(choice, dict)
        ]
        yield {**body, "choices": choices}

    def close(self) -> None:
        self.response.close()


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return str(error)


def _as_dict(chunk: Any) -> dict[str, Any]:
    """A chunk as plain JSON values, the fields the SDK's types do not declare included."""
    if isinstance(chunk, dict):
        return chunk
    return chunk.to_dict(warnings=False)  # a field of an unexpected type is read, not warned of


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_usage(usage: dict[str, Any]) -> Usage:
    """A chat-completions ``usage`` object as :class:`Usage` (tokens; USD).

    ``output_tokens`` includes reasoning: xAI reports ``completion_tokens`` without it (its
    ``total_tokens`` then exceeds prompt + completion by the reasoning tokens), and those are
    added back. The price is OpenRouter's ``cost`` (USD) or xAI's ``cost_in_usd_ticks``
    (10⁻¹⁰ USD each) when present.
    """
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    details_in = usage.get("prompt_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or {}
    cached = _int(details_in.get("cached_tokens") if isinstance(details_in, dict) else None)
    if cached is None:
        cached = _int(usage.get("prompt_cache_hit_tokens"))
    reasoning = _int(details_out.get("reasoning_tokens") if isinstance(details_out, dict) else None)
    total = _int(usage.get("total_tokens"))
    if (
        reasoning
        and prompt is not None
        and completion is not None
        and total == prompt + completion + reasoning
    ):
        completion += reasoning
    cost: float | None = None
    if isinstance(usage.get("cost"), (int, float)) and not isinstance(usage.get("cost"), bool):
        cost = float(usage["cost"])
    elif _int(usage.get("cost_in_usd_ticks")) is not None:
        cost = usage["cost_in_usd_ticks"] / 1e10
    return Usage(prompt, completion, cached, reasoning, cost)


def _reasoning_text(delta: dict[str, Any]) -> str:
    """The thinking a delta carries: ``reasoning_content``, else ``reasoning``, else the text of
    ``reasoning_details`` (OpenRouter sends the same text in both of the last two)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(delta.get(key), str) and delta[key]:
            return delta[key]
    parts = []
    for detail in delta.get("reasoning_details") or ():
        if isinstance(detail, dict):
            text = detail.get("text") or detail.get("summary")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


class ThinkSplitter:
    """Splits streamed ``content`` that opens with ``<think>…</think>`` into reasoning and text.

    Only a ``<think>`` at the very start (after white space) opens a thinking section; the white
    space after ``</think>`` is dropped, so the text is exactly the answer. Tags split across
    chunks are held back until they are whole. :meth:`feed` and :meth:`end` return
    ``[(kind, text)]`` with kind ``"reasoning"`` or ``"text"``.
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.state = "start"  # start → thinking → after → answer, or start → answer
        self.pending = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        """The pieces ``text`` completes, held-back text first."""
        self.pending += text
        out: list[tuple[str, str]] = []
        while self.pending:
            if self.state in ("start", "after"):
                stripped = self.pending.lstrip()
                if not stripped:
                    return out  # only white space so far: wait for what follows
                if self.state == "start" and stripped.startswith(self.OPEN):
                    self.pending, self.state = stripped[len(self.OPEN) :], "thinking"
                elif self.state == "start" and self.OPEN.startswith(stripped):
                    return out  # perhaps the tag, still arriving
                else:
                    if self.state == "after":
                        self.pending = stripped
                    self.state = "answer"
            elif self.state == "answer":
                out.append(("text", self.pending))
                self.pending = ""
            else:
                end = self.pending.find(self.CLOSE)
                if end >= 0:
                    if end:
                        out.append(("reasoning", self.pending[:end]))
                    self.pending, self.state = self.pending[end + len(self.CLOSE) :], "after"
                    continue
                keep = next(
                    (
                        n
                        for n in range(len(self.CLOSE) - 1, 0, -1)
                        if self.pending.endswith(self.CLOSE[:n])
                    ),
                    0,
                )
                cut = len(self.pending) - keep
                if cut:
                    out.append(("reasoning", self.pending[:cut]))
                self.pending = self.pending[cut:]
                return out
        return out

    def end(self) -> list[tuple[str, str]]:
        """What is still held back when the stream ends."""
        text, self.pending = self.pending, ""
        if not text or self.state == "after":
            return []
        return [("reasoning" if self.state == "thinking" else "text", text)]


class ChunkReader:
    """The state of one streamed chat completion, fed chunk dicts one by one (see the module
    docstring for what it tolerates). :meth:`feed` yields the text and reasoning deltas a chunk
    carries; :meth:`end` the tool calls, usage and finish once the stream is over."""

    def __init__(self) -> None:
        self.calls: dict[Any, dict[str, str]] = {}
        self.last_key: Any = None
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.think = ThinkSplitter()
        self.said = False  # any text or reasoning arrived

    def feed(self, chunk: dict[str, Any]) -> Iterator[Event]:
        """The deltas of one chunk (choice 0 only)."""
        if isinstance(chunk.get("usage"), dict):
            self.usage = read_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or (choice.get("index") or 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict):
                reasoning = _reasoning_text(delta)
                if reasoning:
                    self.said = True
                    yield ReasoningDelta(reasoning)
                if isinstance(delta.get("content"), str) and delta["content"]:
                    yield from self._pieces(self.think.feed(delta["content"]))
                for piece in delta.get("tool_calls") or ():
                    if isinstance(piece, dict):
                        self._call_piece(piece)
            if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                self.finish = choice["finish_reason"]

    def _pieces(self, pieces: list[tuple[str, str]]) -> Iterator[Event]:
        for kind, text in pieces:
            self.said = True
            yield ReasoningDelta(text) if kind == "reasoning" else TextDelta(text)

    def _call_piece(self, piece: dict[str, Any]) -> None:
        """Add one ``tool_calls[]`` piece to its call: by ``index``; without one (Mistral), a
        new id starts a new call and no id continues the last."""
        call_id = piece.get("id") if isinstance(piece.get("id"), str) else ""
        if isinstance(piece.get("index"), int):
            key: Any = piece["index"]
        elif call_id and all(c["id"] != call_id for c in self.calls.values()):
            key = ("id", call_id)
        elif call_id:
            key = next(k for k, c in self.calls.items() if c["id"] == call_id)
        else:
            key = self.last_key if self.last_key is not None else 0
        self.last_key = key
        call = self.calls.setdefault(key, {"id": "", "name": "", "arguments": ""})
        if call_id and not call["id"]:
            call["id"] = call_id
        function = piece.get("function") or {}
        name = function.get("name")
        if isinstance(name, str) and name and not call["name"]:
            call["name"] = name  # a name sent again later is the same name, not more of it
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["arguments"] += arguments
        elif isinstance(arguments, dict):
            call["arguments"] = json.dumps(arguments)

    def end(self) -> Iterator[Event]:
        """Held-back text, then each tool call whole, usage, and the finish — named by the
        upstream, or judged from what arrived when the stream ended without one."""
        yield from self._pieces(self.think.end())
        for call in self.calls.values():
            yield ToolCall(
                id=call["id"] or f"call_{uuid.uuid4().hex[:24]}",
                name=call["name"],
                arguments=parse_arguments(call["arguments"]),
            )
        if self.usage is not None:
            yield self.usage
        if self.finish is not None:
            yield Finish(self.finish)
        elif self.calls:
            yield Finish("tool_calls", inferred=True)
        elif self.said:
            yield Finish("stop", inferred=True)


def _events(chunks: Any) -> Iterator[Event]:
    """Map a stream of ``chat.completion.chunk`` objects (or dicts) to events."""
    reader = ChunkReader()
    for chunk in chunks:
        yield from reader.feed(_as_dict(chunk))
    yield from reader.end()
