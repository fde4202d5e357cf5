"""The WSGI app the concurrency benchmark serves with gunicorn: webchat itself, plus two things.

- The demo model stamps each delta it yields: ``(conversation key, end offset, time.time())``
  rows go to ``<instance>/gen-<pid>.tsv`` when the reply ends. The key is the conversation's
  system prompt (the benchmark sets ``bench-<n>``). The text and pace are the demo's own.
- ``GET /bench/bare?key=…&words=N`` streams the same demo words at the same pace as SSE
  ``delta`` events (same payloads and ids as webchat's stream) straight from the generator: no
  database, no notifier, no login. It stamps its deltas the same way, so the two compare.

Serve it as ``gunicorn --config gunicorn.conf.py bench.stream_wsgi:app``; never in production.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from flask import Response, request

from webchat import create_app
from webchat.providers import register
from webchat.providers.base import ChatMessage, Event, TextDelta
from webchat.providers.demo import DemoProvider
from webchat.rendering import render_plain
from webchat.streaming.sse import comment, format_event

app = create_app()
_lock = threading.Lock()


def _log(key: str, stamps: list[tuple[int, float]]) -> None:
    lines = "".join(f"{key}\t{offset}\t{t:.6f}\n" for offset, t in stamps)
    path = os.path.join(app.instance_path, f"gen-{os.getpid()}.tsv")
    with _lock, open(path, "a") as f:
        f.write(lines)


class StampedDemo(DemoProvider):
    """The demo model, logging when each delta leaves it (see the module's docstring)."""

    def stream(
        self, model: str, messages: Sequence[ChatMessage], *, tools: Sequence[dict] = (), **_: Any
    ) -> Iterator[Event]:
        key = messages[0].content if messages and messages[0].role == "system" else "-"
        stamps: list[tuple[int, float]] = []
        offset = 0
        try:
            for event in super().stream(model, messages, tools=tools):
                if isinstance(event, TextDelta):
                    offset += len(event.text)
                    stamps.append((offset, time.time()))
                yield event
        finally:
            _log(key, stamps)


demo = StampedDemo(delay_ms=app.config["DEMO_DELAY_MS"])
register(app, demo)


@app.get("/bench/bare")
def bare() -> Response:
    """The demo's words as SSE, relayed with no storage at all (the overhead baseline)."""
    key = request.args["key"]
    words = int(request.args["words"])
    chat = [ChatMessage(role="user", content=f"/long {words}")]

    def events() -> Iterator[str]:
        yield "retry: 1000\n" + comment("bare stream")
        stamps: list[tuple[int, float]] = []
        offset = 0
        try:
            for event in DemoProvider.stream(demo, "echo", chat):
                if isinstance(event, TextDelta):
                    offset += len(event.text)
                    stamps.append((offset, time.time()))
                    yield format_event(render_plain(event.text), "delta", f"{key}:{offset}")
            yield format_event("", "done", f"{key}:end")
        finally:
            _log(key, stamps)

    return Response(events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
