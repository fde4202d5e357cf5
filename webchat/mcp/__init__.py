"""MCP tool servers: the operator's (``instance/mcp.json``), their tools in one registry with the
built-in ones, calls through the official ``mcp`` SDK in a helper process, and durable approval.

- :mod:`.config`: the ``mcpServers`` file; secrets come from the environment.
- :mod:`.broker` / :mod:`.client`: the SDK's sessions (stdio and Streamable HTTP) in a helper
  process per worker, apart from gevent.
- :mod:`.registry`: namespaced tools (``server__tool``), a conversation's tool set, calls.
- :mod:`.approval`: a call that needs a person's approval stops its run as
  ``awaiting_approval``; the decision continues it from the stored history.
"""
