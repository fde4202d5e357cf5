"""The demo model shows every feature offline, deterministically: thinking, tool calls through
the built-in tools, Markdown with code and a table, an error on request."""

from __future__ import annotations

from webchat.providers.demo import DemoProvider

from .conftest import wait_for_runs
from .test_conversations import messages_of
from .test_providers import send


def test_think_streams_thinking_then_the_answer(app, user_client):
    prompt = "/think why is the sky blue?"
    cid = send(user_client, prompt, "demo/echo")
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    assert reply.status == "complete"
    assert reply.reasoning == DemoProvider().thinking_text(prompt)
    assert reply.content == DemoProvider().reply_text(prompt)
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert '<details class="thinking"><summary>Thinking</summary>' in page


def test_tool_calls_a_builtin_tool_and_answers_with_its_result(app, user_client):
    cid = send(user_client, "/tool 1231 * 2331", "demo/echo")
    wait_for_runs(app)
    roles = [(m.role, m.status) for m in messages_of(app, cid)]
    assert roles == [
        ("user", "complete"),
        ("assistant", "complete"),
        ("tool", "complete"),
        ("assistant", "complete"),
    ]
    _, call, result, answer = messages_of(app, cid)
    assert call.tool_call["name"] == "calculate"
    assert call.tool_call["arguments"] == {"expression": "1231 * 2331"}
    assert call.content == "Let me work that out with a tool."
    assert result.tool_result["tool_call_id"] == call.tool_call["id"]
    assert result.tool_result["result"] == {"expression": "1231 * 2331", "result": 2869461}
    assert answer.content == f"The tool `calculate` answered: {result.content}"
    # the same command again: the call id the demo derives is taken, so it is stored anew
    from .conftest import post

    post(user_client, f"/c/{cid}/messages", {"content": "/tool 1231 * 2331"})
    wait_for_runs(app)
    again = messages_of(app, cid)[5]
    assert again.tool_call["id"] != call.tool_call["id"]
    assert again.tool_call["upstream_id"] == call.tool_call["id"]


def test_markdown_has_code_and_a_table(app, user_client):
    cid = send(user_client, "/markdown", "demo/echo")
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    assert "<table>" in reply.content_html and "<pre" in reply.content_html
    assert "fibonacci" in reply.content_html


def test_fail_is_an_error_on_request(app, user_client):
    cid = send(user_client, "/fail please", "demo/echo")
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    assert reply.status == "error" and "failed on purpose" in reply.error
