"""A real MCP server for the tests, built with the mcp SDK's MCPServer (FastMCP before mcp 2).

``python mcp_server.py stdio`` serves over stdin/stdout; ``python mcp_server.py http PORT`` serves
Streamable HTTP on ``127.0.0.1:PORT/mcp``. Its tools, some of them faulty on purpose:

- ``echo(text)``: the text back; ``big(chars)``: that many characters of text;
- ``pixel()``: a 1×1 PNG image and a line of text;
- ``crash()``: the process exits mid-call; ``hang(seconds)``: answers only after that long;
- ``broken()``: answers with a JSON-RPC error (a protocol-level error, not a tool result).
"""

from __future__ import annotations

import base64
import os
import sys
import time

from mcp.server.mcpserver import Image, MCPServer
from mcp.shared.exceptions import MCPError

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

server = MCPServer("webchat-test")


@server.tool()
def echo(text: str) -> str:
    """Return the text as it was given."""
    return text


@server.tool()
def big(chars: int) -> str:
    """Return a text of that many characters."""
    return ("0123456789" * (chars // 10 + 1))[:chars]


@server.tool()
def pixel() -> list:
    """Return a one-pixel PNG image."""
    return ["one red pixel", Image(data=PNG, format="png")]


@server.tool()
def crash() -> str:
    """End the server's process in the middle of the call."""
    os._exit(3)


@server.tool()
def hang(seconds: float) -> str:
    """Answer after that many seconds."""
    time.sleep(seconds)
    return "late"


@server.tool()
def broken() -> str:
    """Answer with a JSON-RPC error."""
    raise MCPError(-32603, "the server broke on purpose")


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        import uvicorn

        uvicorn.run(
            server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="error"
        )
