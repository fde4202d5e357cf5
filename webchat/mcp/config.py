"""The operator's MCP servers: ``instance/mcp.json`` in the ``mcpServers`` format of Claude
Desktop and VS Code.

.. code-block:: json

    {"mcpServers": {
        "time": {"command": "python", "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"}},
        "docs": {"url": "https://mcp.example.com/mcp",
                 "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"},
                 "approval": {"search": "allow"}}
    }}

A server is stdio (``command``, ``args``, ``env``) or Streamable HTTP (``url``, ``headers``).
``${NAME}`` in ``env``, ``headers`` and ``url`` is replaced by the environment variable
``NAME`` when a call is made, so secrets live in the environment, never in the database, the page
or the logs (:meth:`ServerConfig.public` leaves them out). webchat's own key ``approval`` maps
tool names to a policy (:data:`POLICIES`); a tool it does not name is ``"ask"``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

POLICIES = ("ask", "allow", "never")  # ask every time, always allow, never run
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")  # no "_": "__" splits names
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    """The mcp.json file (or one server in it) is not valid; the message says where."""


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server: ``name`` (letters, digits, ``-``), then either ``command``/``args``/
    ``env`` (stdio) or ``url``/``headers`` (Streamable HTTP); ``approval`` maps a tool's own
    name to a policy of :data:`POLICIES`; ``owner_id`` is None for the operator's servers."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    approval: dict[str, str] = field(default_factory=dict)
    owner_id: int | None = None

    @property
    def transport(self) -> str:
        """``"stdio"`` or ``"http"`` (Streamable HTTP)."""
        return "stdio" if self.command else "http"

    def policy(self, tool: str) -> str:
        """The approval policy of the server's tool ``tool`` (its own, un-namespaced name)."""
        return self.approval.get(tool, "ask")

    def public(self) -> dict[str, Any]:
        """What the page and ``flask mcp list`` may show: name, transport, command and args or
        the URL as written (``${…}`` unexpanded); never the values of ``env`` or ``headers``."""
        where = " ".join([self.command or "", *self.args]) if self.command else self.url
        return {
            "name": self.name,
            "transport": self.transport,
            "target": where,
            "env": sorted(self.env),
            "headers": sorted(self.headers),
        }

    def resolved(self) -> dict[str, Any]:
        """The server as the MCP helper process connects to it, ``${NAME}`` replaced from the
        environment (a missing variable becomes empty). Holds secrets: never log or store it."""
        if self.command:
            return {
                "name": self.name,
                "command": self.command,
                "args": list(self.args),
                "env": {k: _expand(v) for k, v in self.env.items()},
            }
        return {
            "name": self.name,
            "url": _expand(self.url or ""),
            "headers": {k: _expand(v) for k, v in self.headers.items()},
        }

    def secrets(self) -> list[str]:
        """The values the environment gives its ``${NAME}`` references (non-empty ones), so a
        failure's text can be cleaned of them (see :func:`scrub`)."""
        texts = [*self.env.values(), *self.headers.values(), self.url or ""]
        names = {m.group(1) for text in texts for m in _VARIABLE.finditer(text)}
        return [os.environ[n] for n in sorted(names) if os.environ.get(n)]

    def scrub(self, text: str) -> str:
        """``text`` with every secret of :meth:`secrets` replaced by ``***``."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


def _expand(value: str) -> str:
    return _VARIABLE.sub(lambda m: os.environ.get(m.group(1), ""), value)


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{what} must be an object of strings")
    return dict(value)


def parse_server(name: str, spec: Any, *, owner_id: int | None = None) -> ServerConfig:
    """One entry of ``mcpServers`` as a :class:`ServerConfig`; raises :class:`ConfigError`."""
    where = f"mcpServers.{name}"
    if not SERVER_NAME.match(name):
        raise ConfigError(f"{where}: a server name is 1-32 letters, digits or '-'")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be an object")
    approval = _strings(spec.get("approval"), f"{where}.approval")
    bad = [p for p in approval.values() if p not in POLICIES]
    if bad:
        raise ConfigError(f"{where}.approval: a policy is one of {', '.join(POLICIES)}")
    command, url = spec.get("command"), spec.get("url")
    if bool(command) == bool(url):
        raise ConfigError(f"{where}: give either 'command' (stdio) or 'url' (Streamable HTTP)")
    if command:
        args = spec.get("args") or []
        if not isinstance(command, str) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"{where}: 'command' is a string and 'args' a list of strings")
        return ServerConfig(
            name,
            command=command,
            args=tuple(args),
            env=_strings(spec.get("env"), f"{where}.env"),
            approval=approval,
            owner_id=owner_id,
        )
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "${")):
        raise ConfigError(f"{where}: 'url' is an http:// or https:// address")
    return ServerConfig(
        name,
        url=url,
        headers=_strings(spec.get("headers"), f"{where}.headers"),
        approval=approval,
        owner_id=owner_id,
    )


def config_path(app: Flask) -> Path:
    """Where the operator's file is: ``MCP_CONFIG``, else ``<instance>/mcp.json``."""
    return Path(app.config.get("MCP_CONFIG") or Path(app.instance_path) / "mcp.json")


def load(app: Flask) -> list[ServerConfig]:
    """The operator's servers, in the file's order; none when the file does not exist.

    Parsed again when the file's modification time changes, so an edit takes effect without a
    restart. Raises :class:`ConfigError` for a file that is not valid JSON or not in the
    ``mcpServers`` format.
    """
    path = config_path(app)
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return []
    cached = app.extensions.get("webchat.mcp.config")
    if cached is not None and cached[0] == stamp:
        return list(cached[1])
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not readable JSON ({exc})") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: expected an object with 'mcpServers'")
    parsed = [parse_server(name, spec) for name, spec in servers.items()]
    app.extensions["webchat.mcp.config"] = (stamp, parsed)
    return list(parsed)
