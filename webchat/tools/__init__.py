"""Built-in tools the models may call: a registry of JSON-schema definitions and safe functions.

A :class:`Tool` has a ``name``, a ``description`` and ``parameters`` (a JSON Schema object, as
OpenAI's ``function.parameters`` and Anthropic's ``input_schema`` take it), and a function
``(arguments, context) -> result`` whose result is JSON-serializable. :func:`run` calls one in a
thread of its own with a time limit (``TOOL_TIMEOUT_MS``) and turns every failure — an unknown
tool, bad arguments, an exception, the time limit — into an error :class:`Outcome`, so a tool
never fails a reply: the model reads the error and carries on.

Each app has its own registry (the built-ins of :mod:`.builtin`); tests add theirs with
:func:`register`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from ..extensions import db
from ..ops import metrics
from ..providers.base import ToolCall

RESULT_CHARS = 20_000  # a result longer than this (as JSON text) is cut for the model


class ToolError(Exception):
    """A tool's readable refusal (bad input, nothing found…), shown to the model as the result."""


@dataclass(frozen=True)
class ToolContext:
    """Who is asking: the app (for a database session), the user and the conversation."""

    app: Flask
    user_id: int
    conversation_id: uuid.UUID


@dataclass(frozen=True)
class Tool:
    """One tool: ``function(arguments: dict, context: ToolContext)`` returns a JSON value."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[[dict[str, Any], ToolContext], Any]

    def definition(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}`` as providers send it."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Outcome:
    """What a tool call gave: ``result`` (a JSON value) or ``error`` (text), and its duration;
    ``parts`` are an MCP result's images and other non-text content (see
    :func:`webchat.mcp.registry.result_parts`); ``limit`` is the most characters of text the
    model reads."""

    result: Any = None
    error: str | None = None
    duration_ms: int = 0
    parts: list[dict[str, Any]] | None = None
    limit: int = RESULT_CHARS

    @property
    def text(self) -> str:
        """The result as the model reads it: a string as it is, other values as JSON; an error
        as ``"Error: …"``. At most ``limit`` characters."""
        if self.error is not None:
            return f"Error: {self.error}"
        text = self.result if isinstance(self.result, str) else json.dumps(self.result)
        if len(text) > self.limit:
            text = text[: self.limit] + "… [cut]"
        return text

    def as_json(self, tool_call_id: str) -> dict[str, Any]:
        """The stored ``tool_result``: ``{"tool_call_id", "result", "error", "duration_ms"}``,
        and ``"parts"`` when there are some."""
        stored = {
            "tool_call_id": tool_call_id,
            "result": self.result,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }
        if self.parts:
            stored["parts"] = self.parts
        return stored


_KEY = "webchat.tools"


def registry(app: Flask) -> dict[str, Tool]:
    """The app's tools by name (the built-ins, made on first use)."""
    tools = app.extensions.get(_KEY)
    if tools is None:
        from .builtin import BUILTIN_TOOLS

        tools = app.extensions.setdefault(_KEY, {t.name: t for t in BUILTIN_TOOLS})
    return tools


def register(app: Flask, tool: Tool) -> None:
    """Add or replace ``tool`` under its name."""
    registry(app)[tool.name] = tool


def definitions(app: Flask) -> list[dict[str, Any]]:
    """The definitions of every tool, for :meth:`webchat.providers.base.Provider.stream`."""
    return [tool.definition() for tool in registry(app).values()]


def _check_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    if "_invalid_json" in arguments:
        raise ToolError(f"the arguments were not a JSON object: {arguments['_invalid_json']!r}")
    missing = [k for k in tool.parameters.get("required", ()) if k not in arguments]
    if missing:
        raise ToolError(f"missing argument(s): {', '.join(missing)}")
    known = tool.parameters.get("properties", {})
    unknown = [k for k in arguments if known and k not in known]
    if unknown:
        raise ToolError(f"unknown argument(s): {', '.join(unknown)}")


def run(call: ToolCall, context: ToolContext, timeout_ms: float) -> Outcome:
    """Run ``call`` with at most ``timeout_ms`` ms; never raises.

    The function runs in a daemon thread with an app context of its own (its database session is
    removed afterwards). A call still running at the limit is abandoned and reported as an
    error; its thread ends on its own.
    """
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    tool = registry(context.app).get(call.name)
    if tool is None:
        return Outcome(
            error=f"no such tool: there is no tool named {call.name!r}", duration_ms=elapsed()
        )
    box: dict[str, Any] = {}

    def target() -> None:
        with context.app.app_context():
            try:
                _check_arguments(tool, call.arguments)
                value = tool.function(call.arguments, context)
                json.dumps(value)  # a result that can't be stored is the tool's error
                box["result"] = value
            except ToolError as exc:
                box["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a result
                box["error"] = f"the tool failed ({type(exc).__name__}: {exc})"
            finally:
                db.session.remove()

    thread = threading.Thread(target=target, name=f"webchat-tool-{call.name}", daemon=True)
    thread.start()
    thread.join(timeout_ms / 1000)
    if thread.is_alive():
        metrics.tool_called(call.name, "timeout")
        return Outcome(
            error=f"the tool took longer than {timeout_ms / 1000:g} s and was abandoned",
            duration_ms=elapsed(),
        )
    if "error" in box:
        metrics.tool_called(call.name, "error")
        return Outcome(error=box["error"], duration_ms=elapsed())
    metrics.tool_called(call.name, "ok")
    return Outcome(result=box.get("result"), duration_ms=elapsed())
