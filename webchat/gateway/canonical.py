"""The canonical form of a conversation's messages and the hash of a path, shared by both wire
formats and by the store.

A request to the gateway (OpenAI Chat Completions or Anthropic Messages) is turned into a list
of :class:`Turn` values, one per message as webchat stores it: an assistant message with N tool
calls becomes N turns (the first with the text, as ``webchat.streaming.runs`` stores parallel
calls), an Anthropic user message with tool results becomes one ``tool`` turn per result, then
a ``user`` turn of its text. Thinking is not part of a turn (clients drop or keep it as they
like), nor is a tool message's name (OpenAI's tool messages carry none).

The hash of a path is a chain of SHA-256 digests (64 hex characters): the root digest covers the
user's id and the system prompt, and each turn's digest covers the one before and the turn as
canonical JSON (sorted keys, no spaces). ``messages.path_hash`` (migration 0012) stores the
digest of the path from the root to that message, so the conversation a request continues is
found by one index lookup, whatever its length.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Message, Role


@dataclass(frozen=True)
class Turn:
    """One message in canonical form. ``tool_call`` (assistant) is ``{"id", "name",
    "arguments"}`` with arguments a dict; a ``tool`` turn answers ``tool_call_id`` with
    ``content`` as text (``is_error`` when the tool failed)."""

    role: str
    content: str
    tool_call: dict[str, Any] | None = None
    tool_call_id: str | None = None
    is_error: bool = False

    def key(self) -> list[Any]:
        """What the hash covers: role, content, the call's id, name and arguments, the id a
        result answers."""
        call = self.tool_call
        return [
            self.role,
            self.content,
            [call.get("id"), call.get("name"), call.get("arguments") or {}] if call else None,
            self.tool_call_id,
        ]


def of_message(message: Message) -> Turn:
    """The stored ``message`` as a turn (its reasoning and tool name left out)."""
    call = message.tool_call if message.role == Role.ASSISTANT else None
    result = message.tool_result if isinstance(message.tool_result, dict) else {}
    return Turn(
        role=message.role,
        content=message.content or "",
        tool_call=(
            {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("arguments")}
            if isinstance(call, dict)
            else None
        ),
        tool_call_id=result.get("tool_call_id") if message.role == Role.TOOL else None,
        is_error=bool(result.get("error")),
    )


def root_hash(user_id: int, system: str | None) -> str:
    """The digest a path starts from: the user's id and the system prompt (None = none)."""
    return _sha256(json.dumps(["webchat-path-v1", user_id, system or ""], ensure_ascii=False))


def next_hash(previous: str, turn: Turn) -> str:
    """The digest of the path ``previous`` followed by ``turn``."""
    body = json.dumps(turn.key(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _sha256(previous + "\n" + body)


def chain(start: str, turns: Iterable[Turn]) -> list[str]:
    """The digest after each of ``turns``, starting from ``start``."""
    out = []
    for turn in turns:
        start = next_hash(start, turn)
        out.append(start)
    return out


def stamp(start: str, messages: Sequence[Message]) -> None:
    """Set ``path_hash`` of ``messages`` (one chain, oldest first, the first a child of the
    message whose digest is ``start``). Sets attributes only; the caller flushes."""
    for message, digest in zip(messages, chain(start, map(of_message, messages)), strict=True):
        message.path_hash = digest


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
