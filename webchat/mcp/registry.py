"""The tools a conversation may use: the built-in tools and every MCP server's, in one registry.

The built-in tools (:mod:`webchat.tools`) are the server ``webchat``; they keep their own names
and are always allowed. An MCP server's tools are offered as ``<server>__<tool>`` (so two servers
cannot collide), cut to the 64 characters of ``[A-Za-z0-9_-]`` that OpenAI and Anthropic accept
(a hash keeps a cut name unique). A conversation's ``metadata.tools`` lists the servers it
enables; absent, it enables all of the operator's. ``metadata.allowed_tools`` lists the tools the
person allowed "for this conversation".
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import select

from .. import tools
from ..errors import InvalidInput
from ..extensions import db
from ..models import Conversation, McpServer
from ..ops import metrics
from ..providers.base import ToolCall
from . import config
from .client import broker
from .config import ServerConfig

BUILTIN = "webchat"  # the built-in tools, as a server of the registry
NAME_CHARS = 64
_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")
_cache_lock = threading.Lock()


def namespaced(server: str, tool: str) -> str:
    """``server__tool`` within ``[A-Za-z0-9_-]{1,64}``: other characters become ``_``; a longer
    name keeps its first 55 characters and 8 hex digits of its SHA-256."""
    name = _NAME_OK.sub("_", f"{server}__{tool}")
    if len(name) > NAME_CHARS:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: NAME_CHARS - 9]}_{digest}"
    return name


@dataclass(frozen=True)
class McpTool:
    """One tool of an MCP server: its server, its own name, the name the model sees."""

    server: ServerConfig
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def qualified(self) -> str:
        return namespaced(self.server.name, self.name)

    def definition(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}`` as providers send it."""
        schema = dict(self.input_schema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return {
            "name": self.qualified,
            "description": (self.description or f"{self.name} of {self.server.name}")[:1024],
            "parameters": schema,
        }


@dataclass
class ServerState:
    """A server as last asked: its tools, or why it failed (``error``), and when."""

    server: ServerConfig
    tools: list[McpTool] = field(default_factory=list)
    error: str | None = None
    checked_at: float = 0.0

    @property
    def connected(self) -> bool:
        return self.error is None


def servers(app: Flask, user_id: int | None = None) -> list[ServerConfig]:
    """The operator's servers (``mcp.json``; a broken file gives none, ``flask mcp list`` says
    why), then those user ``user_id`` added (:func:`add_user_server`)."""
    try:
        found = config.load(app)
    except config.ConfigError:
        found = []
    if user_id is not None:
        taken = {server.name for server in found} | {BUILTIN}
        found += [  # a host no longer allowed, or a name the operator took since, is left out
            ServerConfig(row.name, url=row.url, owner_id=user_id)
            for row in user_servers(user_id)
            if row.name not in taken and host_allowed(app, row.url)
        ]
    return found


def user_servers(user_id: int) -> list[McpServer]:
    """The servers user ``user_id`` added, by name."""
    return list(
        db.session.scalars(
            select(McpServer).where(McpServer.user_id == user_id).order_by(McpServer.name)
        )
    )


def host_allowed(app: Flask, url: str) -> bool:
    """True when ``url`` is http(s) on a host of ``MCP_USER_HOSTS`` (exactly, or a subdomain of
    a ``*.example.com`` entry)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    for allowed in app.config["MCP_USER_HOSTS"]:
        allowed = str(allowed).lower()
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return True
    return False


def add_user_server(app: Flask, user_id: int, name: str, url: str) -> McpServer:
    """Add a Streamable HTTP server ``name`` at ``url`` for user ``user_id`` (flush only).

    Raises :class:`webchat.errors.InvalidInput` (field ``name`` or ``url``): 400 for a name
    that is not 1-32 letters, digits or ``-``; 409 for a name taken (by the operator, the
    built-ins or the user) or more than ``MCP_USER_SERVERS`` servers; 403 for a URL not on an
    allowed host (``MCP_USER_HOSTS``; none allowed: users add no servers). A user can never add
    a stdio command.
    """
    name, url = (name or "").strip(), (url or "").strip()
    if not config.SERVER_NAME.match(name):
        raise InvalidInput("A server name is 1-32 letters, digits or '-'.", field="name")
    if name in server_names(app, user_id):
        raise InvalidInput(
            f"There is a tool server named {name!r} already.", field="name", status=409
        )
    if not app.config["MCP_USER_HOSTS"]:
        raise InvalidInput(
            "This server does not let users add tool servers.", field="url", status=403
        )
    if len(url) > 2000 or not host_allowed(app, url):
        hosts = ", ".join(app.config["MCP_USER_HOSTS"])
        raise InvalidInput(
            f"The URL must be http:// or https:// on an allowed host ({hosts}).",
            field="url",
            status=403,
        )
    if len(user_servers(user_id)) >= app.config["MCP_USER_SERVERS"]:
        raise InvalidInput(
            f"You have {app.config['MCP_USER_SERVERS']} servers, the most allowed.",
            field="name",
            status=409,
        )
    row = McpServer(user_id=user_id, name=name, url=url)
    db.session.add(row)
    db.session.flush()
    return row


def remove_user_server(user_id: int, server_id: int) -> None:
    """Remove user ``user_id``'s server ``server_id`` (flush only). Raises
    :class:`webchat.conversations.services.NotFound` for another user's or no server."""
    from ..conversations.services import NotFound

    row = db.session.get(McpServer, server_id) if 0 < server_id < 2**31 else None  # an INTEGER
    if row is None or row.user_id != user_id:
        raise NotFound("No such tool server.")
    db.session.delete(row)
    db.session.flush()


def state(app: Flask, server: ServerConfig, *, fresh: bool = False) -> ServerState:
    """The server's tools, asked of it at most every ``MCP_TOOLS_TTL_S`` seconds (a failure is
    asked again after a tenth of that); ``fresh`` asks now."""
    cache: dict[str, ServerState] = app.extensions.setdefault("webchat.mcp.states", {})
    key = f"{server.owner_id}:{server.name}:{hash(repr(server))}"
    ttl = app.config["MCP_TOOLS_TTL_S"]
    with _cache_lock:
        known = cache.get(key)
    now = time.monotonic()
    if known and not fresh and now - known.checked_at < (ttl if known.connected else ttl / 10):
        return known
    answer = broker(app).request(
        {"op": "tools", "server": server.resolved()}, app.config["MCP_CALL_TIMEOUT_MS"] / 1000
    )
    if answer.get("ok"):
        found = [
            McpTool(server, t["name"], t.get("description") or "", t.get("input_schema") or {})
            for t in answer.get("tools") or []
        ]
        current = ServerState(server, found, None, now)
    else:
        current = ServerState(server, [], server.scrub(str(answer.get("error") or "failed")), now)
    with _cache_lock:
        cache[key] = current
    return current


def overview(
    app: Flask, user_id: int | None = None, *, fresh: bool = False
) -> list[dict[str, Any]]:
    """Every server of the registry for ``flask mcp list`` and the Settings panel: the
    built-ins first, then the operator's, each ``{"name", "transport", "target", "connected",
    "error", "tools": [{"name", "qualified", "policy", "description"}]}`` (no secrets, see
    :meth:`ServerConfig.public`), then user ``user_id``'s own (with their ``"id"``). A broken
    mcp.json is one entry with its error."""
    rows: list[dict[str, Any]] = [
        {
            "id": None,
            "name": BUILTIN,
            "transport": "built-in",
            "target": "webchat",
            "env": [],
            "headers": [],
            "connected": bool(app.config["TOOLS_ENABLED"]),
            "error": None if app.config["TOOLS_ENABLED"] else "TOOLS_ENABLED is false",
            "tools": [
                {"name": t["name"], "qualified": t["name"], "policy": "allow", **_about(t)}
                for t in tools.definitions(app)
            ],
        }
    ]
    try:
        config.load(app)
    except config.ConfigError as exc:
        path = str(config.config_path(app))
        failed = {"id": None, "name": "mcp.json", "transport": "file", "target": path}
        rows.append({**failed, "connected": False, "error": str(exc), "tools": []})
    ids = {row.name: row.id for row in user_servers(user_id)} if user_id is not None else {}
    for server in servers(app, user_id):
        current = state(app, server, fresh=fresh)
        rows.append(
            {
                **server.public(),
                "id": ids.get(server.name) if server.owner_id is not None else None,
                "connected": current.connected,
                "error": current.error,
                "tools": [
                    {
                        "name": t.name,
                        "qualified": t.qualified,
                        "policy": server.policy(t.name),
                        **_about({"description": t.description}),
                    }
                    for t in current.tools
                ],
            }
        )
    return rows


def _about(definition: dict[str, Any]) -> dict[str, str]:
    text = (definition.get("description") or "").strip().split("\n")[0]
    return {"description": text[:200]}


def server_names(app: Flask, user_id: int | None = None) -> list[str]:
    """The names a conversation's tools may list: the built-ins, the operator's servers, then
    those user ``user_id`` added."""
    return [BUILTIN, *(server.name for server in servers(app, user_id))]


def conversation_tools(app: Flask, conversation: Conversation) -> list[str]:
    """The servers ``conversation`` may use, by name: its ``metadata.tools`` (those still
    configured), or by default every server (see :func:`server_names`)."""
    names = server_names(app, conversation.user_id)
    enabled = enabled_servers(conversation)
    return names if enabled is None else [n for n in names if n in enabled]


def set_conversation_tools(app: Flask, conversation: Conversation, names: list[str] | None) -> None:
    """Enable the servers ``names`` for ``conversation`` (None: back to the default, every
    server). Flush only. Raises :class:`webchat.errors.InvalidInput` (400, field ``tools``)
    for a name that is not a server."""
    meta = {k: v for k, v in (conversation.meta or {}).items() if k != "tools"}
    if names is not None:
        known = server_names(app, conversation.user_id)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidInput(
                f"No tool server named {', '.join(map(repr, unknown))}; "
                f"the servers are {', '.join(known)}.",
                field="tools",
            )
        meta["tools"] = [n for n in known if n in names]
    conversation.meta = meta
    db.session.flush()


def enabled_servers(conversation: Conversation) -> list[str] | None:
    """The server names a conversation enables (``metadata.tools``), None for the default
    (the built-ins and all of the operator's servers)."""
    names = (conversation.meta or {}).get("tools")
    return [str(n) for n in names] if isinstance(names, list) else None


@dataclass
class Toolset:
    """What one reply may call: ``definitions`` for the provider and ``mcp`` by qualified
    name; ``allowed`` are the names allowed for this conversation."""

    definitions: list[dict[str, Any]]
    mcp: dict[str, McpTool]
    allowed: set[str]

    def policy(self, call: ToolCall) -> str:
        """``"allow"`` (run it), ``"ask"`` (wait for the person) or ``"never"`` for ``call``.
        Built-in and unknown names are ``"allow"`` (an unknown one ends in an error result)."""
        tool = self.mcp.get(call.name)
        if tool is None:
            return "allow"
        policy = tool.server.policy(tool.name)
        if policy == "ask" and call.name in self.allowed:
            return "allow"
        return policy


def toolset(app: Flask, conversation: Conversation) -> Toolset:
    """The tools of ``conversation``'s enabled servers (asking MCP servers for their lists,
    cached); a server that fails offers none."""
    enabled = enabled_servers(conversation)
    definitions: list[dict[str, Any]] = []
    if app.config["TOOLS_ENABLED"] and (enabled is None or BUILTIN in enabled):
        definitions.extend(tools.definitions(app))
    found: dict[str, McpTool] = {}
    for server in servers(app, conversation.user_id):
        if enabled is not None and server.name not in enabled:
            continue
        for tool in state(app, server).tools:
            found[tool.qualified] = tool
            definitions.append(tool.definition())
    allowed = {str(n) for n in (conversation.meta or {}).get("allowed_tools") or ()}
    return Toolset(definitions, found, allowed)


def call(app: Flask, tool: McpTool, arguments: dict[str, Any]) -> tools.Outcome:
    """Run ``tool`` with ``arguments`` on its server (``MCP_CALL_TIMEOUT_MS``); never raises.

    The result's text parts, joined, are the text the model reads (cut at ``MCP_RESULT_CHARS``
    with a note saying so); images and other parts are kept in ``parts``. A server that fails
    to start, dies, hangs or answers with a protocol error gives an error outcome; an
    ``isError`` result gives an error outcome with the server's text.
    """
    started = time.monotonic()
    answer = broker(app).request(
        {
            "op": "call",
            "server": tool.server.resolved(),
            "tool": tool.name,
            "arguments": arguments,
        },
        app.config["MCP_CALL_TIMEOUT_MS"] / 1000,
    )
    elapsed = round((time.monotonic() - started) * 1000)
    if not answer.get("ok"):
        metrics.tool_called(tool.qualified, "error")
        reason = tool.server.scrub(str(answer.get("error")))
        return tools.Outcome(
            error=f"the MCP server {tool.server.name!r} failed: {reason}", duration_ms=elapsed
        )
    result = answer.get("result") or {}
    text, parts = result_parts(result, app.config["MCP_RESULT_CHARS"])
    if result.get("is_error") or result.get("isError"):
        metrics.tool_called(tool.qualified, "error")
        return tools.Outcome(
            error=text or "the tool reported an error", duration_ms=elapsed, limit=len(text)
        )
    metrics.tool_called(tool.qualified, "ok")
    return tools.Outcome(result=text, parts=parts, duration_ms=elapsed, limit=len(text))


PART_BYTES = 2_000_000  # an image or other binary part larger than this is not kept


def result_parts(result: dict[str, Any], limit: int) -> tuple[str, list[dict[str, Any]]]:
    """The text of a ``CallToolResult`` (its text parts joined by blank lines, else its
    structured content as JSON), cut to ``limit`` characters with a note, and its other parts
    (``{"type": "image"|"audio", "mime_type", "data"}`` base64, or ``{"type": ..., "uri"...}``)."""
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for item in result.get("content") or []:
        kind = item.get("type")
        if kind == "text":
            texts.append(str(item.get("text") or ""))
        elif kind in ("image", "audio"):
            data = str(item.get("data") or "")
            mime = item.get("mime_type") or item.get("mimeType") or ""
            if len(data) * 3 // 4 > PART_BYTES:
                texts.append(f"[{kind} of {len(data) * 3 // 4} bytes left out: too large]")
                continue
            try:
                base64.b64decode(data, validate=True)
            except ValueError:
                texts.append(f"[{kind} left out: not base64]")
                continue
            parts.append({"type": kind, "mime_type": mime, "data": data})
            texts.append(f"[{kind} {mime}]")
        else:
            keep = {k: v for k, v in item.items() if k in ("type", "uri", "name", "mime_type")}
            resource = item.get("resource") or {}
            if isinstance(resource, dict) and resource.get("text"):
                texts.append(str(resource["text"]))
            keep.setdefault("uri", resource.get("uri") if isinstance(resource, dict) else None)
            parts.append(keep)
    text = "\n\n".join(texts)
    if not text and result.get("structured_content") is not None:
        text = json.dumps(result["structured_content"])
    if len(text) > limit:
        text = (
            text[:limit] + f"\n\n[The result was cut: it had {len(text)} characters, "
            f"only the first {limit} are shown.]"
        )
    return text, parts
