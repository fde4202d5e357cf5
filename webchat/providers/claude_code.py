"""The Claude Code CLI as a provider: ``claude -p --output-format stream-json --verbose
--include-partial-messages``.

Each reply runs the CLI once, non-interactively, with the prompt on stdin. Its stdout is one JSON
object per line (Claude Code's stream-json, the same message shapes as its session files):

- ``{"type": "system", "subtype": "init", "session_id", "model", …}`` — the session id is
  remembered in the conversation's metadata (``claude_code_session_id``) and the next turn runs
  with ``--resume <id>``, so Claude Code keeps its own context;
- ``{"type": "stream_event", "event": {…}}`` — the Messages API's own stream events, token by
  token (``--include-partial-messages``): ``text_delta`` becomes text as it comes,
  ``thinking_delta`` reasoning;
- ``{"type": "assistant", "message": {"content": [blocks]}}`` — ``text`` blocks become text (two
  text blocks in a row are separated by a blank line) unless their message was streamed already
  by ``stream_event`` lines, ``tool_use`` blocks become tool calls;
- ``{"type": "user", "message": {"content": [{"type": "tool_result", …}]}}`` — the results of the
  tools Claude Code ran itself, yielded as :class:`ToolResult` (webchat runs none of them);
- ``{"type": "result", "subtype", "is_error", "result", "usage", "total_cost_usd", …}`` — the
  end: usage (its cost as Claude Code reports it) and finish, or a :class:`ProviderError` when
  ``is_error`` is set.

A conversation imported from a Claude Code session file (its metadata holds the recorded
``session_id`` and ``project_path``) continues that very session: ``--resume <session id>`` in
the recorded project folder, when that folder exists on this machine; when it does not, the
reply fails with a sentence that says so.

Without a session (the first turn, or a conversation that started on another model) the earlier
messages are put into the prompt as a transcript. The system prompt goes to
``--append-system-prompt``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import selectors
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import (
    ChatMessage,
    Event,
    Finish,
    ProviderError,
    ReasoningDelta,
    SessionState,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)

SESSION_KEY = "claude_code_session_id"
ERROR_TEXT_CHARS = 300
# prompt tokens, cache writes and cache reads: all of them were processed for the reply
INPUT_TOKEN_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result"}


def build_prompt(messages: Sequence[ChatMessage], resumed: bool) -> str:
    """The text sent on stdin: the last user message; without a session to resume, the earlier
    messages first, as a transcript."""
    turns = [m for m in messages if m.role != "system"]
    last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "user"), None)
    if last is None:
        return ""
    if resumed or last == 0:
        return turns[last].content
    lines = ["Earlier in this conversation:", ""]
    for m in turns[:last]:
        if m.content:
            lines += [f"{_LABELS.get(m.role, m.role)}: {m.content}", ""]
    lines += ["Now the user says:", "", turns[last].content]
    return "\n".join(lines)


ATTACHMENTS = "webchat-files"  # the folder under the working folder the files are written to


def with_files(messages: Sequence[ChatMessage], folder: Path) -> list[ChatMessage]:
    """``messages`` with each user message's files written into ``folder/webchat-files/``
    (as ``<first 12 hex of their SHA-256>-<name>``, once) and named at the end of its text, so
    Claude Code reads them with its own tools."""
    out: list[ChatMessage] = []
    for m in messages:
        if not m.attachments:
            out.append(m)
            continue
        target = folder / ATTACHMENTS
        target.mkdir(parents=True, exist_ok=True)
        names = []
        for a in m.attachments:
            name = f"{hashlib.sha256(a.data).hexdigest()[:12]}-{Path(a.name).name or 'file'}"
            path = target / name
            if not path.exists():
                path.write_bytes(a.data)
            names.append(f"- {ATTACHMENTS}/{name} ({a.media_type})")
        listing = "Attached files, in the working folder:\n" + "\n".join(names)
        text = f"{m.content}\n\n{listing}" if m.content else listing
        out.append(dataclasses.replace(m, content=text, attachments=()))
    return out


def _result_text(content: Any) -> str:
    """A tool_result's content as text: a string, or the text of its blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, dict):
                parts.append(f"[{block.get('type', 'block')}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


class StreamJsonParser:
    """Turns stream-json lines (dicts) into events; keeps what it needs between lines."""

    def __init__(self) -> None:
        self.text_in_segment = False
        self.names: dict[str, str] = {}
        self.finished = False
        self.streamed: set[str] = set()  # ids of messages whose text came by stream_event
        self.current: str | None = None  # the message stream_event lines are about

    def _partial(self, event: dict[str, Any]) -> Iterator[Event]:
        """Text and thinking of one ``stream_event`` (a Messages API stream event)."""
        kind = event.get("type")
        if kind == "message_start":
            self.current = (event.get("message") or {}).get("id")
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "text":
                if self.current:
                    self.streamed.add(self.current)
                if self.text_in_segment:
                    yield TextDelta("\n\n")
                self.text_in_segment = True
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield TextDelta(delta["text"])
            elif delta.get("type") == "thinking_delta" and delta.get("thinking"):
                yield ReasoningDelta(delta["thinking"])

    def events(self, line: dict[str, Any]) -> Iterator[Event]:
        """The events of one line. Raises :class:`ProviderError` for a failed ``result``."""
        kind = line.get("type")
        session_id = line.get("session_id") or line.get("sessionId")
        if kind == "system" and line.get("subtype") == "init" and session_id:
            yield SessionState({SESSION_KEY: session_id})
        elif kind == "stream_event" and isinstance(line.get("event"), dict):
            yield from self._partial(line["event"])
        elif kind == "assistant":
            message = line.get("message") or {}
            streamed = message.get("id") in self.streamed
            for block in message.get("content") or ():
                if block.get("type") == "text" and block.get("text") and not streamed:
                    if self.text_in_segment:
                        yield TextDelta("\n\n")
                    self.text_in_segment = True
                    yield TextDelta(block["text"])
                elif block.get("type") == "tool_use":
                    self.names[block["id"]] = block.get("name", "")
                    yield ToolCall(block["id"], block.get("name", ""), block.get("input") or {})
        elif kind == "user":
            content = (line.get("message") or {}).get("content")
            for block in content if isinstance(content, list) else ():
                if block.get("type") == "tool_result":
                    self.text_in_segment = False
                    call_id = block.get("tool_use_id", "")
                    yield ToolResult(
                        tool_call_id=call_id,
                        content=_result_text(block.get("content")),
                        is_error=bool(block.get("is_error")),
                        name=self.names.get(call_id),
                    )
        elif kind == "result":
            self.finished = True
            if line.get("is_error") or line.get("subtype") != "success":
                detail = str(line.get("result") or line.get("subtype") or "no details")
                raise ProviderError(f"Claude Code ended with an error: {detail[:ERROR_TEXT_CHARS]}")
            usage = line.get("usage") or {}
            if usage:
                cost = line.get("total_cost_usd")
                yield Usage(
                    sum(usage.get(k) or 0 for k in INPUT_TOKEN_KEYS),
                    usage.get("output_tokens"),
                    cached_tokens=usage.get("cache_read_input_tokens"),
                    cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
                )
            yield Finish(line.get("stop_reason") or "end_turn")


def resumed_session(meta: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(session id, folder)`` a conversation continues in: the session webchat's own turns
    remembered (folder None: the configured one), else the one an imported session file recorded,
    in its recorded project folder. Raises :class:`ProviderError` when that folder does not exist
    on this machine (Claude Code keeps a session with its project folder)."""
    if meta.get(SESSION_KEY):
        return str(meta[SESSION_KEY]), _existing(meta.get("project_path"))
    recorded, folder = meta.get("session_id"), meta.get("project_path")
    try:
        uuid.UUID(str(recorded))
    except ValueError:
        return None, None  # not imported from a Claude Code session
    if not isinstance(folder, str) or not folder:
        return str(recorded), None
    if not Path(folder).is_dir():
        raise ProviderError(
            f"This conversation was imported from a Claude Code session recorded in {folder}, "
            "which does not exist on this machine, so Claude Code cannot resume it here. "
            "Create that folder (with the project in it) or continue with another model."
        )
    return str(recorded), folder


def _existing(folder: Any) -> str | None:
    return folder if isinstance(folder, str) and folder and Path(folder).is_dir() else None


class ClaudeCodeProvider:
    """``claude-code/<model>``: the ``claude`` CLI; ``default`` runs it without ``--model``.

    ``command`` is the executable (and any leading arguments); ``extra_args`` are appended to
    every call (e.g. ``["--permission-mode", "acceptEdits"]``); ``cwd`` is the folder it works
    in; ``timeout_ms`` is the longest silence on its stdout before it is killed.
    """

    name = "claude-code"
    uses_session = True

    def __init__(
        self,
        command: Sequence[str],
        *,
        models: Sequence[str] = ("default",),
        extra_args: Sequence[str] = (),
        cwd: str | None = None,
        timeout_ms: float = 120_000,
    ) -> None:
        self.command = list(command)
        self._models = list(models)
        self.extra_args = list(extra_args)
        self.cwd = cwd
        self.timeout_ms = timeout_ms

    def models(self) -> list[str]:
        """The configured model names (``default``, or aliases like ``sonnet``)."""
        return list(self._models)

    def arguments(self, model: str, messages: Sequence[ChatMessage], session_id: str | None):
        """The command line for one reply (the prompt itself goes on stdin)."""
        args = [*self.command, "-p", "--output-format", "stream-json", "--verbose"]
        args.append("--include-partial-messages")
        if model != "default":
            args += ["--model", model]
        if session_id:
            args += ["--resume", session_id]
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        if system:
            args += ["--append-system-prompt", system]
        return args + self.extra_args

    def stream(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[dict[str, Any]] = (),
        session: dict[str, Any] | None = None,
    ) -> Iterator[Event]:
        """Run the CLI and yield the events of its stream-json output. ``tools`` are ignored
        (Claude Code brings its own). Raises :class:`ProviderError`; the process is killed when
        the stream is closed early or goes silent for ``timeout_ms``."""
        session_id, cwd = resumed_session(session or {})
        cwd = cwd or self.cwd
        if cwd == self.cwd and self.cwd:
            Path(self.cwd).mkdir(parents=True, exist_ok=True)
        messages = with_files(messages, Path(cwd or "."))  # issue 14
        prompt = build_prompt(messages, resumed=bool(session_id))
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
        try:
            process = subprocess.Popen(
                self.arguments(model, messages, session_id),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd or None,
            )
        except OSError as exc:
            stderr.close()
            raise ProviderError(f"Claude Code could not be started: {exc.strerror}.") from None
        parser = StreamJsonParser()
        try:
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(prompt.encode())
                process.stdin.close()
            except BrokenPipeError:
                pass
            for raw in self._lines(process):
                try:
                    line = json.loads(raw)
                except ValueError:
                    raise ProviderError(
                        "Claude Code printed a line that is not JSON: "
                        f"{raw[:80].decode(errors='replace')!r}"
                    ) from None
                if isinstance(line, dict):
                    yield from parser.events(line)
            code = process.wait()
            if not parser.finished:
                stderr.seek(0)
                tail = stderr.read()[-ERROR_TEXT_CHARS:].decode(errors="replace").strip()
                raise ProviderError(
                    f"Claude Code exited (status {code}) before finishing the reply"
                    + (f": {tail}" if tail else ".")
                )
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
            stderr.close()

    def _lines(self, process: subprocess.Popen) -> Iterator[bytes]:
        """Complete lines of the process's stdout; raises :class:`ProviderError` after
        ``timeout_ms`` without output."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        timeout_s = self.timeout_ms / 1000
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            last = time.monotonic()
            while True:
                if not selector.select(max(0.0, timeout_s - (time.monotonic() - last))):
                    raise ProviderError(
                        f"Claude Code sent nothing for {timeout_s:g} s and was stopped."
                    )
                data = os.read(fd, 65536)
                if not data:
                    break
                last = time.monotonic()
                pending += data
                *lines, pending = pending.split(b"\n")
                yield from (line for line in lines if line.strip())
        if pending.strip():
            yield pending
