"""A provider that replays queued scripts, like simonw/llm's fake model: no network, exact control.

Each ``stream()`` call takes the next script: a list whose items are events (yielded), exceptions
(raised), or floats (seconds to sleep). An empty queue replies "ok".
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from webchat.providers.base import ChatMessage, Event, Finish, TextDelta


class QueuedProvider:
    """``fake/<anything>``: replays scripts queued with :meth:`queue`; records each request."""

    name = "fake"

    def __init__(self) -> None:
        self.scripts: deque[list] = deque()
        self.requests: list[list[ChatMessage]] = []
        self.lock = threading.Lock()

    def queue(self, *script: Any) -> None:
        """Queue one response's script."""
        self.scripts.append(list(script))

    def models(self) -> list[str]:
        return ["model"]

    def stream(
        self, model: str, messages: Sequence[ChatMessage], *, tools: Sequence[dict] = ()
    ) -> Iterator[Event]:
        with self.lock:
            self.requests.append(list(messages))
            script = self.scripts.popleft() if self.scripts else [TextDelta("ok"), Finish("stop")]
        for item in script:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, (int, float)):
                time.sleep(item)
                continue
            yield item
