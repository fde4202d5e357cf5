"""The MCP helper process: holds the client sessions of MCP servers, with the official ``mcp``
SDK on a plain asyncio loop, apart from the web worker.

The SDK is asyncio (anyio); gunicorn's gevent worker patches the standard library, under which an
asyncio loop can block the worker or deadlock. So each worker process runs one of these
(``python -m webchat.mcp.broker``, started by :mod:`webchat.mcp.client`) and talks to it in JSON
lines over its stdin and stdout:

- request ``{"id": int, "op": "tools" | "call", "server": ServerConfig.resolved(),
  "timeout_s": float, "tool": str, "arguments": dict}`` (``tool`` and ``arguments`` for a call);
- answer ``{"id", "ok": true, "tools": [{"name", "description", "input_schema"}]}``,
  ``{"id", "ok": true, "result": CallToolResult as JSON}`` or ``{"id", "ok": false,
  "error": text}``.

A session is opened on first use (a stdio server is started) and kept for the next requests. Any
failure (the server did not start, died, hung past ``timeout_s``, broke the protocol) closes it,
so the next request starts the server again. Requests run concurrently.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from contextlib import suppress
from typing import Any

import anyio
from anyio.abc import TaskGroup


class _Session:
    """One open MCP client session, held by a task of its own (an SDK client must be left by
    the task that entered it)."""

    def __init__(self, server: dict[str, Any]) -> None:
        self.server = server
        self.ready = anyio.Event()
        self.closing = anyio.Event()
        self.client: Any = None
        self.error: str | None = None

    async def hold(self) -> None:
        from mcp import Client, StdioServerParameters

        try:
            if self.server.get("command"):
                target: Any = StdioServerParameters(
                    command=self.server["command"],
                    args=self.server.get("args") or [],
                    env=self.server.get("env") or None,
                )
                async with Client(target) as client:
                    await self._serve(client)
            else:
                import httpx2
                from mcp.client.streamable_http import streamable_http_client

                headers = self.server.get("headers") or {}
                async with (
                    httpx2.AsyncClient(headers=headers, timeout=30) as http,
                    Client(streamable_http_client(self.server["url"], http_client=http)) as client,
                ):
                    await self._serve(client)
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting requests
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            self.error = _describe(exc)
        finally:
            self.client = None
            self.ready.set()

    async def _serve(self, client: Any) -> None:
        self.client = client
        self.ready.set()
        await self.closing.wait()


def _describe(exc: BaseException) -> str:
    """A readable one-line cause, unwrapping anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Broker:
    """The sessions of this helper process by server (name and settings)."""

    def __init__(self, group: TaskGroup) -> None:
        self.group = group
        self.sessions: dict[str, _Session] = {}
        self.lock = anyio.Lock()
        self.out_lock = anyio.Lock()

    @staticmethod
    def key(server: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(server, sort_keys=True).encode()).hexdigest()

    async def session(self, server: dict[str, Any]) -> Any:
        """The open client for ``server``, opening it first; raises ``RuntimeError``."""
        key = self.key(server)
        async with self.lock:
            session = self.sessions.get(key)
            if session is None or (session.ready.is_set() and session.client is None):
                session = self.sessions[key] = _Session(server)
                self.group.start_soon(session.hold)
        await session.ready.wait()
        if session.client is None:
            self.sessions.pop(key, None)
            raise RuntimeError(f"the server did not start ({session.error})")
        return session.client

    def drop(self, server: dict[str, Any]) -> None:
        """Close the session of ``server`` (a stdio server's process ends); the next request
        opens a new one."""
        session = self.sessions.pop(self.key(server), None)
        if session is not None:
            session.closing.set()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        server = request["server"]
        try:
            with anyio.fail_after(float(request.get("timeout_s") or 30)):
                client = await self.session(server)
                if request["op"] == "tools":
                    listing = await client.list_tools()
                    tools = [
                        {
                            "name": t.name,
                            "description": t.description or "",
                            "input_schema": t.input_schema,
                        }
                        for t in listing.tools
                    ]
                    return {"ok": True, "tools": tools}
                result = await client.call_tool(request["tool"], request.get("arguments") or {})
                return {"ok": True, "result": result.model_dump(mode="json", exclude_none=True)}
        except TimeoutError:
            self.drop(server)
            limit = float(request.get("timeout_s") or 30)
            return {"ok": False, "error": f"the server did not answer within {limit:g} s"}
        except BaseException as exc:  # noqa: BLE001 - every failure is an answer
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            self.drop(server)
            return {"ok": False, "error": _describe(exc)}

    async def answer(self, request: dict[str, Any]) -> None:
        try:
            reply = await self.handle(request)
        except Exception as exc:  # noqa: BLE001
            reply = {"ok": False, "error": _describe(exc)}
        reply["id"] = request.get("id")
        line = json.dumps(reply) + "\n"
        async with self.out_lock:
            await anyio.to_thread.run_sync(_write, line)


def _write(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


async def main() -> None:
    """Serve requests from stdin until it closes, then close every session."""
    async with anyio.create_task_group() as group:
        broker = Broker(group)
        stdin = anyio.wrap_file(sys.stdin)
        async for line in stdin:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError:
                continue
            group.start_soon(broker.answer, request)
        for key in list(broker.sessions):
            broker.sessions.pop(key).closing.set()
        group.cancel_scope.cancel()


if __name__ == "__main__":
    with suppress(KeyboardInterrupt, BrokenPipeError):
        anyio.run(main)
    os._exit(0)  # without waiting for stray server processes' pipes
