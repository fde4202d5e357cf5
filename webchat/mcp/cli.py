"""``flask mcp list``: each tool server's state (connected, or failed and why) and its tools."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from . import registry

mcp = AppGroup("mcp", help="MCP tool servers (instance/mcp.json).")


@mcp.command("list")
def list_command() -> None:
    """Connect to every configured server now and list its tools with their approval policy."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        rows = registry.overview(app, fresh=True)
    finally:
        client = app.extensions.get("webchat.mcp.broker")
        if client is not None:
            client.close()
    for row in rows:
        state = "connected" if row["connected"] else f"failed: {row['error']}"
        click.echo(f"{row['name']} ({row['transport']}: {row['target']}) - {state}")
        for tool in row["tools"]:
            click.echo(f"  {tool['qualified']}  [{tool['policy']}]  {tool['description']}")
