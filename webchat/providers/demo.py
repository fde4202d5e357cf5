"""The offline demo model: deterministic replies streamed word by word, no network.

``demo/echo`` answers with a few sentences that quote the user's message; the delay between words
is ``DEMO_DELAY_MS`` (ms). Messages starting with ``/fail`` make it raise mid-stream and ``/long N``
make it stream N words, which tests and benchmarks use.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from .base import ChatMessage, Event, Finish, ProviderError, TextDelta, Usage

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

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
    ) -> Iterator[Event]:
        """Yield the reply to the last user message word by word, then usage and finish.

        Raises :class:`ProviderError` after a few words when that message starts with ``/fail``.
        """
        prompt = next((m.content for m in reversed(messages) if m.role == "user"), "")
        text = self.reply_text(prompt)
        words = text.split(" ")
        fail = prompt.strip().startswith("/fail")
        for i, word in enumerate(words):
            if fail and i == 5:
                raise ProviderError("The demo model failed on purpose (the message began /fail).")
            if self.delay_ms:
                time.sleep(self.delay_ms / 1000)
            yield TextDelta(word if i == len(words) - 1 else word + " ")
        yield Usage(
            input_tokens=sum(len(m.content.split()) for m in messages), output_tokens=len(words)
        )
        yield Finish("stop")
