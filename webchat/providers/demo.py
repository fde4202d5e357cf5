"""The offline demo model: deterministic replies streamed word by word, no network.

``demo/echo`` answers with a few sentences that quote the user's message; the delay between words
is ``DEMO_DELAY_MS`` (ms). Commands show every feature offline, deterministically:

- ``/fail`` raises mid-stream (an error, with Retry); ``/long N`` streams N words;
- ``/think <text>`` thinks aloud first (a Thinking block), then answers as usual;
- ``/markdown`` answers with a heading, a list, a code block and a table;
- ``/tool <expression>`` calls the built-in ``calculate`` tool (``/tool time``:
  ``current_datetime``), then answers with the tool's result; ``/steps N`` makes N ``calculate``
  calls in a row (one per round), so a run of tool steps can be watched;
- ``/mcp <tool> [JSON arguments]`` calls any tool offered by its name (an MCP server's
  ``server__tool``, say ``/mcp time__get_current_time {"timezone": "Asia/Tokyo"}``), then
  answers with its result.

Tests and benchmarks use ``/fail`` and ``/long``; the plain reply is
:meth:`DemoProvider.reply_text`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .base import (
    Attachment,
    ChatMessage,
    Event,
    Finish,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    Usage,
)

MARKDOWN = """## What the demo can show

- **Thinking**: send `/think why is the sky blue?`
- **Tools**: send `/tool 1231 * 2331` or `/tool time` (`/steps 7`: seven steps in a row)
- **Errors**: send `/fail`, then press Retry

```python
def fibonacci(n: int) -> list[int]:
    numbers = [0, 1]
    while len(numbers) < n:
        numbers.append(numbers[-1] + numbers[-2])
    return numbers[:n]
```

| provider | model id | needs |
| --- | --- | --- |
| demo | `demo/echo` | nothing |
| OpenAI-compatible | `openai/gpt-4o-mini` | `OPENAI_API_KEY` or `OPENAI_BASE_URL` |
| Anthropic | `anthropic/claude-haiku-4-5` | `ANTHROPIC_API_KEY` |
"""

_OPENING = (
    "This is the offline demo model, so nothing left this machine. ",
    "You wrote: “{quote}”. ",
    "Every word of this reply is stored in the database as it streams, ",
    "so you can reload the page, close the tab or restart the server and the conversation ",
    "will still be here.\n\n",
    "Configure an OpenAI-compatible or Anthropic provider to talk to a real model.",
)

_FILLER = [
    "stream",
    "delta",
    "cursor",
    "message",
    "stored",
    "durable",
    "conversation",
    "replay",
    "offset",
    "heartbeat",
    "batch",
    "notify",
    "reader",
    "writer",
    "token",
]


def received(attachments: Sequence[Attachment]) -> str:
    """What the demo model says it received: ``"I received 2 files: a.png (image/png, 12,345
    bytes), b.pdf (application/pdf, 640 bytes)."``"""
    listed = ", ".join(f"{a.name} ({a.media_type}, {len(a.data):,} bytes)" for a in attachments)
    count = len(attachments)
    return f"I received {count} file{'s' if count != 1 else ''}: {listed}."


class DemoProvider:
    """The always-available offline provider (``demo/echo``)."""

    name = "demo"

    def __init__(self, delay_ms: float = 40) -> None:
        self.delay_ms = delay_ms

    def models(self) -> list[str]:
        """The one demo model, ``echo``."""
        return ["echo"]

    def reply_text(self, prompt: str) -> str:
        """The full reply the demo gives to ``prompt`` (deterministic)."""
        command, _, arg = prompt.strip().partition(" ")
        if command == "/long" and arg.strip().isdigit():
            count = int(arg)
            return " ".join(_FILLER[i % len(_FILLER)] for i in range(count)) + "."
        quote = " ".join(prompt.split())
        if len(quote) > 120:
            quote = quote[:117] + "…"
        return "".join(_OPENING).replace("{quote}", quote)

    def thinking_text(self, prompt: str) -> str:
        """The thinking ``/think <text>`` streams before its answer (deterministic)."""
        topic = " ".join(prompt.split()[1:]) or "this"
        return (
            f"The person asks about “{topic}”. This is the demo model, so there is no real "
            "reasoning to do: these words stream as thinking, stored apart from the answer, "
            "and fold into a Thinking block once the answer begins."
        )

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
    ) -> Iterator[Event]:
        """Yield the reply to the last user message word by word, then usage and finish.

        Raises :class:`ProviderError` after a few words when that message starts with ``/fail``.
        ``/tool`` yields a :class:`ToolCall` (finish ``tool_calls``) when the tool is offered,
        and answers with its result once the history ends with it; ``/steps N`` makes N calls
        in a row, one per round, then says so.
        """
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        command = prompt.strip().split(" ", 1)[0]
        last = messages[-1] if messages else None
        if command in ("/tool", "/mcp") and last is not None and last.role == "tool":
            text = f"The tool `{last.tool_name}` answered: {last.content}"
        elif command == "/mcp" and (call := _named_call(prompt, tools)) is not None:
            yield from self._words(f"Let me ask the tool `{call.name}`.", messages)
            yield call
            yield Finish("tool_calls")
            return
        elif command == "/tool" and any(t.get("name") in _DEMO_TOOLS for t in tools):
            yield from self._words("Let me work that out with a tool.", messages)
            yield _tool_call(prompt)
            yield Finish("tool_calls")
            return
        elif command == "/steps" and any(t.get("name") == "calculate" for t in tools):
            wanted, done = _steps_wanted(prompt), _steps_done(messages)
            if done < wanted:
                self._pause()
                yield _step_call(prompt, done + 1)
                yield Finish("tool_calls")
                return
            text = f"{done} steps done, one tool call each."
        elif command == "/markdown":
            text = MARKDOWN
        else:
            text = self.reply_text(prompt)
        asked = next((m for m in reversed(messages) if m.role == "user"), None)
        if asked is not None and asked.attachments and command != "/tool":
            text = f"{received(asked.attachments)} {text}"  # issue 14: what it was sent
        if command == "/think":
            for word in self._split(self.thinking_text(prompt)):
                self._pause()
                yield ReasoningDelta(word)
        yield from self._words(text, messages, fail=command == "/fail")
        yield Finish("stop")

    def _pause(self) -> None:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)

    @staticmethod
    def _split(text: str) -> list[str]:
        words = text.split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]

    def _words(
        self, text: str, messages: Sequence[ChatMessage], *, fail: bool = False
    ) -> Iterator[Event]:
        """``text`` word by word, then its :class:`Usage` (words in and out)."""
        words = self._split(text)
        for i, word in enumerate(words):
            if fail and i == 5:
                raise ProviderError("The demo model failed on purpose (the message began /fail).")
            self._pause()
            yield TextDelta(word)
        yield Usage(
            input_tokens=sum(len(m.content.split()) for m in messages), output_tokens=len(words)
        )


_DEMO_TOOLS = ("calculate", "current_datetime")


def _named_call(prompt: str, tools: Sequence[dict[str, Any]]) -> ToolCall | None:
    """The call ``/mcp <tool> [JSON]`` makes, when that tool is offered and the arguments are a
    JSON object (else None: the demo answers as usual)."""
    _command, _, rest = prompt.strip().partition(" ")
    name, _, raw = rest.strip().partition(" ")
    if not any(t.get("name") == name for t in tools):
        return None
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    return ToolCall(f"demo_{digest}", name, arguments)


def _steps_wanted(prompt: str) -> int:
    """N of ``/steps N`` (1 to 8, the tool loop's default limit; 6 without a number)."""
    words = prompt.split()
    return max(1, min(8, int(words[1]))) if len(words) > 1 and words[1].isdigit() else 6


def _steps_done(messages: Sequence[ChatMessage]) -> int:
    """Tool results since the last user message."""
    count = 0
    for m in reversed(messages):
        if m.role == "user":
            break
        count += m.role == "tool"
    return count


def _step_call(prompt: str, step: int) -> ToolCall:
    """Step ``step`` of ``/steps N``: ``calculate`` of ``step * step``, one call per round."""
    digest = hashlib.sha256(f"{prompt}#{step}".encode()).hexdigest()[:16]
    return ToolCall(f"demo_{digest}", "calculate", {"expression": f"{step} * {step}"})


def _tool_call(prompt: str) -> ToolCall:
    """The call ``/tool <expression>`` (``calculate``) or ``/tool time`` makes; its id is derived
    from the prompt, so the demo stays deterministic (webchat keeps stored ids unique)."""
    argument = " ".join(prompt.split()[1:]) or "6 * 7"
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
    if argument == "time":
        return ToolCall(f"demo_{digest}", "current_datetime", {})
    return ToolCall(f"demo_{digest}", "calculate", {"expression": argument})
