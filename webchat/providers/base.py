"""The provider interface: conversation history in, a stream of typed events out.

A provider is one module with a class that implements :class:`Provider`. ``stream()`` yields
:data:`Event` values in the order the upstream produced them and ends after a :class:`Finish`
(or raises :class:`ProviderError`). Text arrives as :class:`TextDelta`; a tool call is yielded
once, fully assembled from its fragments, as :class:`ToolCall`. The model's thinking, where the
upstream sends it apart from the answer, arrives as :class:`ReasoningDelta` (and, for Anthropic,
each signed block whole as :class:`ReasoningBlock`, to be passed back on later turns).

Tool calls a provider yields are run by webchat (see :mod:`webchat.tools`) unless the upstream runs
them itself: Claude Code does, and then follows each :class:`ToolCall` with a :class:`ToolResult`
carrying the same id. A provider whose upstream keeps a session between turns sets
``uses_session = True``; it is then called with ``session=`` (a copy of the conversation's
metadata) and may yield :class:`SessionState` to remember values there. A provider that takes the
conversation's generation parameters sets ``takes_params = True``; it is then called with
``params=`` (``{"temperature", "max_tokens", "reasoning_effort"}``, each optional).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Attachment:
    """A file of a user message, as a provider receives it (:mod:`webchat.files`): ``kind``
    ``image`` (PNG, JPEG, WebP or GIF), ``text`` or ``pdf``; its ``media_type`` without
    parameters, ``name``, bytes (``data``), and the ``text`` of a text file or PDF."""

    name: str
    kind: str
    media_type: str
    data: bytes
    text: str | None = None


@dataclass(frozen=True)
class ChatMessage:
    """One message of the history sent to a provider.

    ``role`` is user, assistant, system or tool. An assistant message may carry ``tool_call``
    (``{"id", "name", "arguments"}``, arguments a dict); a tool message carries ``tool_call_id``
    and its ``content`` is the tool result as text.
    """

    role: str
    content: str
    tool_call: dict[str, Any] | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False  # a tool message whose tool failed
    # Signed thinking blocks of an assistant step, as the upstream sent them (Anthropic
    # ``thinking`` / ``redacted_thinking``): passed back verbatim on later turns of a tool loop.
    reasoning_blocks: tuple[dict[str, Any], ...] = ()
    # Files of a user message (issue 14), in the order attached.
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's thinking (kept apart from the reply text), in characters."""

    text: str


@dataclass(frozen=True)
class ReasoningBlock:
    """A whole signed thinking block, as the upstream sent it: ``{"type": "thinking", "thinking",
    "signature"}`` or ``{"type": "redacted_thinking", "data"}`` (Anthropic Messages)."""

    block: dict[str, Any]


@dataclass(frozen=True)
class TextDelta:
    """A piece of reply text, in characters as the upstream sent them."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call: id, tool name and parsed JSON arguments. ``upstream_id`` is the
    id the upstream gave when webchat stores the call under another (a repeated or missing one)."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    upstream_id: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token usage of one upstream response, in tokens: ``input`` = prompt (cached included),
    ``output`` = completion (reasoning included), ``cached`` = prompt tokens read from a cache,
    ``reasoning`` = completion tokens spent thinking; ``cost_usd`` when the upstream itself
    reports the price (OpenRouter, xAI). None where the upstream said nothing."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Finish:
    """The upstream ended the response; ``reason`` as it named it (stop, length, tool_calls…).
    ``inferred`` is True when the upstream named none and the reason was judged from what
    arrived (tool calls → ``tool_calls``, else ``stop``)."""

    reason: str = "stop"
    inferred: bool = False


@dataclass(frozen=True)
class ToolResult:
    """The result of a tool call the upstream ran itself (Claude Code): ``content`` as text."""

    tool_call_id: str
    content: str
    is_error: bool = False
    name: str | None = None


@dataclass(frozen=True)
class SessionState:
    """Values to merge into the conversation's metadata (e.g. Claude Code's session id)."""

    values: dict[str, Any]


Event = (
    TextDelta
    | ReasoningDelta
    | ReasoningBlock
    | ToolCall
    | ToolResult
    | Usage
    | Finish
    | SessionState
)


class ProviderError(Exception):
    """The upstream failed: ``message`` is readable text for the person; never holds secrets."""


class Provider(Protocol):
    """A source of replies. ``name`` is the part of a model id before the first slash."""

    name: str

    def models(self) -> list[str]:
        """The model names (without the provider prefix) this provider offers now."""
        ...

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
    ) -> Iterator[Event]:
        """Yield the events of one response to ``messages`` from ``model``.

        ``tools`` are JSON-schema tool definitions (``{"name", "description", "parameters"}``).
        Raises :class:`ProviderError` on any upstream failure.
        """
        ...


def split_model_id(model_id: str) -> tuple[str, str]:
    """Split ``"provider/model"`` at the first slash: ``"openai/llama3.1:8b"`` → ``("openai",
    "llama3.1:8b")``. Raises ``ValueError`` when there is no slash or either side is empty."""
    provider, sep, model = model_id.partition("/")
    if not sep or not provider or not model:
        raise ValueError(f"model id {model_id!r} is not of the form provider/model")
    return provider, model


def fenced(attachment: Attachment) -> str:
    """A text file or a PDF's text as Markdown: the file name, then the text in a fence longer
    than any backtick run inside it (CommonMark §4.5)."""
    text = attachment.text or ""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{attachment.name}:\n{fence}\n{text}\n{fence}"


def data_url(attachment: Attachment) -> str:
    """``data:<media type>;base64,<bytes>`` (RFC 2397)."""
    import base64

    return f"data:{attachment.media_type};base64,{base64.b64encode(attachment.data).decode()}"
