"""A tool call awaiting approval survives a restart: real gunicorn (gevent worker) processes, the
real mcp-server-time over stdio, the demo model asking for it (``/mcp``)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid

import pytest
from sqlalchemy import select

from bench.stream_server import Client, Gunicorn
from webchat.extensions import db
from webchat.models import Message, Role, Run, Status

from .test_streaming_processes import server_env

pytestmark = pytest.mark.slow

ASK = '/mcp time__get_current_time {"timezone": "Asia/Tokyo"}'


def run_state(app, conversation_id: str) -> tuple[str | None, list[Message]]:
    """The status of the conversation's newest run and its messages, read from the database."""
    with app.app_context():
        cid = uuid.UUID(conversation_id)
        status = db.session.scalar(
            select(Run.status).where(Run.conversation_id == cid).order_by(Run.created_at.desc())
        )
        messages = db.session.scalars(
            select(Message).where(Message.conversation_id == cid).order_by(Message.created_at)
        ).all()
        for message in messages:
            db.session.expunge(message)
        db.session.remove()
        return status, list(messages)


def wait_for_status(app, conversation_id: str, wanted: str) -> list[Message]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, messages = run_state(app, conversation_id)
        if status == wanted:
            return messages
        assert status in (*Status.ACTIVE, Status.AWAITING, wanted), status
        time.sleep(0.1)
    raise AssertionError(f"the run never became {wanted}")


def test_a_call_awaiting_approval_survives_a_restart(make_app, tmp_path):
    app = make_app()
    path = tmp_path / "mcp.json"
    command = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    path.write_text(json.dumps({"mcpServers": {"time": command}}))
    env = server_env(app.config["DATABASE_URL"], tmp_path, MCP_CONFIG=path, DEMO_DELAY_MS=0)
    first = Gunicorn(tmp_path, env).start()
    try:
        client = Client(first.url).sign_up()
        cid, _reply = client.start_conversation(ASK)
        messages = wait_for_status(app, cid, Status.AWAITING)
        waiting = messages[-1]
        assert waiting.role == Role.TOOL and waiting.status == Status.AWAITING
        assert waiting.tool_name == "time__get_current_time"
        # the whole server dies: the worker and its arbiter, at once
        for pid in [*first.worker_pids(), first.process.pid]:
            os.kill(pid, signal.SIGKILL)
        first.process.wait()
    finally:
        first.stop()
    assert run_state(app, cid)[0] == Status.AWAITING  # nothing waited in memory

    with Gunicorn(tmp_path, env) as second:
        again = Client(second.url).use_session_of(client, second.url)
        page = again.http.get(f"{second.url}/c/{cid}", timeout=10).text
        assert "Allow this tool call?" in page and "Asia/Tokyo" in page
        answer = again.post(f"/m/{waiting.id}/approval", {"decision": "allow"})
        assert answer.status_code == 200 and "sse-connect" in answer.text
        messages = wait_for_status(app, cid, Status.COMPLETE)
    result, final = messages[-2], messages[-1]
    assert result.role == Role.TOOL and result.status == Status.COMPLETE
    assert "+09:00" in result.content and result.tool_result["error"] is None
    assert final.content.startswith("The tool `time__get_current_time` answered:")
    assert "+09:00" in final.content and final.status == Status.COMPLETE
