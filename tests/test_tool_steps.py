"""Tool work that reads like steps: a tool call and its result are one block whose summary names
the tool and its key argument, marks ok / error and gives the duration; more than five steps in
a row fold under "N steps" — in replies, in their stream, and in imported sessions."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape
from types import SimpleNamespace

from sqlalchemy import select

from webchat.conversations.formats import HtmlStreamFormat
from webchat.extensions import db
from webchat.models import Conversation, Message
from webchat.streaming.sse import StoredMessage
from webchat.templating import RESULT_CUT, cut_text, reply_items, tool_summary

from .conftest import post, sign_up, steps_of, wait_for_runs
from .test_import_chatgpt import import_data, load
from .test_import_claude_code import import_file
from .test_porting import CHATGPT, CLAUDE, jsonl


def test_the_summary_is_the_key_argument_on_one_line():
    assert tool_summary({"command": "git status\ngit diff", "timeout": 5}) == "git status …"
    assert tool_summary({"file_path": "/src/app.py", "old_string": "x"}) == "/src/app.py"
    assert tool_summary({"url": "https://example.com", "prompt": "read it"}) == (
        "https://example.com"
    )
    assert tool_summary({"query": "sse flask"}) == "sse flask"
    assert tool_summary({"a": 1231, "b": 2331}) == "1231"  # else the first argument
    long = tool_summary({"command": "echo " + "x" * 200})
    assert len(long) == 80 and long.endswith("…")
    assert tool_summary({}) == "" and tool_summary(None) == ""
    assert tool_summary('{"half": ') == '{"half":'  # raw text a model sent, as text


def message(role: str, **fields):
    base = {"id": fields.pop("id", object()), "content": "", "reasoning": "", "tool_name": None}
    base.update(tool_call=None, tool_result=None, run_id=1, is_active=False)
    return SimpleNamespace(role=role, **{**base, **fields})


def call(call_id: str | None, name: str = "Bash", **arguments):
    return message(
        "assistant",
        tool_name=name,
        tool_call={"id": call_id, "name": name, "arguments": arguments},
    )


def result(call_id: str | None, text: str = "ok", error: str | None = None, ms: int | None = 12):
    outcome = {"tool_call_id": call_id, "result": None if error else text, "error": error}
    return message("tool", content=text, tool_result={**outcome, "duration_ms": ms})


def test_a_call_and_its_result_are_one_step_and_long_runs_fold():
    text = message("assistant", content="Let me look.")
    # parallel calls answered out of order pair by id
    a, b = call("a", command="ls"), call("b", file_path="x.py")
    rb, ra = result("b", error="no such file"), result("a", "x.py")
    items = reply_items([text, a, b, rb, ra])
    assert [i.kind for i in items] == ["message", "step", "step"]
    first, second = items[1].steps[0], items[2].steps[0]
    assert (first.call, first.result, first.failed, first.output) == (a, ra, False, "x.py")
    assert (second.result, second.failed, second.output) == (rb, True, "no such file")
    assert first.duration_ms == 12 and first.summary == "ls"

    many = []
    for n in range(6):
        many += [call(f"c{n}", command=f"echo {n}"), result(f"c{n}")]
    items = reply_items([text, *many, message("assistant", content="Done."), *many[:4]])
    assert [(i.kind, len(i.steps)) for i in items] == [
        ("message", 0), ("steps", 6), ("message", 0), ("step", 1), ("step", 1)
    ]  # fmt: skip
    assert [s.summary for s in items[1].steps] == [f"echo {n}" for n in range(6)]
    # a result whose call is elsewhere still shows, alone; a call without an answer is running
    lone = reply_items([result("gone"), call("open", query="q")])
    assert [(s.call is None, s.result is None) for i in lone for s in i.steps] == [
        (True, False), (False, True)
    ]  # fmt: skip


def test_long_results_are_cut_at_a_line():
    text = "\n".join(f"line {n}" for n in range(1000))
    shown, rest = cut_text(text)
    assert shown + rest == text and len(shown) <= RESULT_CUT and shown.endswith("\n")
    assert cut_text("short") == ("short", "")


def test_an_imported_claude_code_session_reads_as_steps(app, client):
    sign_up(client)
    with app.app_context():
        from webchat.models import User

        user = db.session.scalars(select(User)).one()
        import_file(user, "coverage-test-fix.jsonl")
        conversation_id = db.session.scalars(select(Conversation.id)).one()
        calls = db.session.scalars(
            select(Message).where(Message.tool_call.is_not(None))  # type: ignore[union-attr]
        ).all()
        expected = [(m.tool_name, m.tool_call["arguments"]) for m in calls]
    lines = jsonl(CLAUDE, "coverage-test-fix.jsonl")
    uses = [
        b
        for line in lines
        for b in (line.get("message") or {}).get("content") or []
        if isinstance(b, dict) and b.get("type") == "tool_use"
    ]
    html = client.get(f"/c/{conversation_id}").get_data(as_text=True)
    steps = steps_of(html)
    assert len(steps) == len(uses) == len(expected)  # one block per call, its result inside
    assert "Called " not in html and "Result of " not in html
    wanted = Counter((u["name"], tool_summary(u["input"])) for u in uses)
    assert Counter((name, arg) for _, name, arg in steps) == wanted  # tool and key argument
    # every call shows its result, parallel ones too (stored on side branches of the tree)
    assert {mark for mark, _, _ in steps} <= {"ok", "error"}, steps
    commands = [u["input"]["command"].splitlines()[0] for u in uses if u["name"] == "Bash"]
    shown = [arg for _, name, arg in steps if name == "Bash"]
    assert len(commands) == 5 and all(c[:40] in " ".join(shown) for c in commands)
    assert "tool-steps-count" not in html  # its turns have at most five steps in a row


def test_an_imported_chatgpt_tool_message_is_a_step(app, client):
    sign_up(client)
    with app.app_context():
        from webchat.models import User

        user = db.session.scalars(select(User)).one()
        import_data(user, load(CHATGPT))
        with_tools = db.session.scalars(
            select(Message.conversation_id).where(Message.role == "tool")
        ).first()
        results = Counter(
            db.session.scalars(
                select(Message.role).where(Message.conversation_id == with_tools)
            ).all()
        )["tool"]
    assert with_tools is not None  # the real export holds browsing tool calls
    html = client.get(f"/c/{with_tools}").get_data(as_text=True)
    assert "Result of " not in html and 0 < len(steps_of(html)) <= results


def stored(m: Message) -> StoredMessage:
    """``m`` as the stream reads it."""
    return StoredMessage(
        m.id, m.role, m.status, m.content, 0, m.tool_name, m.tool_call, m.tool_result, m.error
    )


def test_the_stream_sends_a_step_then_replaces_it_with_its_result(app, client):
    sign_up(client)
    created = post(client, "/c", {"content": "/tool 6 * 7", "model": "demo/echo"})
    assert created.status_code in (302, 303)
    wait_for_runs(app)
    with app.test_request_context():
        call_message = db.session.scalars(
            select(Message).where(Message.tool_call.is_not(None))  # type: ignore[union-attr]
        ).one()
        result_message = db.session.scalars(select(Message).where(Message.role == "tool")).one()
        fmt = HtmlStreamFormat()
        called = fmt.tool_call(stored(call_message))
        answered = fmt.tool_result(stored(result_message))
    assert f'id="step-{call_message.id}">' in called  # appended, running
    assert 'aria-label="running"' in called and "Running…" in called
    # the result's step replaces that block in place (htmx out-of-band swap)
    assert f'id="step-{call_message.id}" hx-swap-oob="outerHTML"' in answered
    assert 'aria-label="ok"' in answered and '<span class="tool-arg">6 * 7</span>' in answered
    assert "&#34;result&#34;: 42" in answered  # the result, as indented JSON


def test_a_long_result_is_cut_with_show_all(app):
    output = "\n".join(f"line {n}" for n in range(1000))
    step_call = call("x", command="seq 1000")
    step_result = result("x", output)
    with app.test_request_context():
        from flask import render_template

        html = render_template(
            "conversations/_reply_items.html",
            messages=[step_call, step_result],
            streaming=False,
        )
    shown, rest = cut_text(output)
    assert html.count('<pre class="tool-output">') == 2
    assert f"Show all ({len(rest):,} more characters)" in html
    assert unescape(re.sub(r"<[^>]+>", "", html)).count("line 999") == 1  # nothing twice
    assert '<span class="tool-arg">seq 1000</span>' in html and "12 ms" in html
