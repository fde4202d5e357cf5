"""Reasoning is kept apart from the answer: Anthropic's signed thinking blocks (stored, passed
back), the ``messages.reasoning`` column (migration 0007), the page, the API and the export.

Anthropic streams are the recorded ones of ``../shared/fixtures/anthropic``, replayed by the
loopback upstream and read by the real ``anthropic`` SDK.
"""

from __future__ import annotations

import io
import json
import uuid

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select

from webchat.extensions import db
from webchat.models import Conversation, Message, User

from . import test_providers_compat as compat
from .conftest import ROOT, fixture_path, post, sign_up, wait_for_runs
from .fakes.upstream import cassette, cassette_replies, response_body
from .test_conversations import messages_of
from .test_providers import chat, sse_json

app = compat.app  # the providers talk to the loopback upstream
upstream = compat.upstream
CLAUDE = "anthropic/claude-haiku-4-5"
SIGNED = ("anthropic", "anthropic-thinking-signature-delta-stream.yaml")
REDACTED = ("anthropic", "anthropic-redacted-thinking-stream.yaml")
BRIEF = ("anthropic", "test_thinking_prompt.yaml")


def events_of(parts: tuple[str, str], index: int = 0) -> list[dict]:
    return sse_json(response_body(cassette(fixture_path(*parts))[index]["response"]))


def thinking_of(events: list[dict]) -> tuple[str, str]:
    """The thinking text and the signature a recorded Messages stream carries."""
    deltas = [e["delta"] for e in events if e.get("type") == "content_block_delta"]
    text = "".join(d.get("thinking", "") for d in deltas if d["type"] == "thinking_delta")
    signature = "".join(d["signature"] for d in deltas if d["type"] == "signature_delta")
    return text, signature


def text_of(events: list[dict]) -> str:
    deltas = [e["delta"] for e in events if e.get("type") == "content_block_delta"]
    return "".join(d["text"] for d in deltas if d["type"] == "text_delta")


def test_anthropic_thinking_block_stored_signed_and_passed_back(app, user_client, upstream):
    events = events_of(SIGNED)
    thought, signature = thinking_of(events)
    assert thought and signature
    upstream.queue(*cassette_replies(fixture_path(*SIGNED)))
    cid, (_, reply) = chat(app, user_client, "How do I cross the street?", CLAUDE)
    assert reply.status == "complete", reply.error
    assert reply.reasoning == thought
    assert reply.content == text_of(events)  # the answer alone
    block = {"type": "thinking", "thinking": thought, "signature": signature}
    assert reply.meta["reasoning_blocks"] == [block]
    # the next turn sends the signed block back, first in the assistant's turn
    upstream.queue(cassette_replies(fixture_path(*BRIEF))[0])
    assert post(user_client, f"/c/{cid}/messages", {"content": "Thanks"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[1]["json"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"][0] == block
    assert sent[1]["content"][1] == {"type": "text", "text": reply.content}
    # the page: a collapsed Thinking block above the answer, after reload
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert '<details class="thinking"><summary>Thinking</summary>' in page
    assert page.index("Thinking</summary>") < page.index(reply.content_html)


def test_anthropic_redacted_thinking_kept_opaque_and_passed_back(app, user_client, upstream):
    events = events_of(REDACTED)
    redacted = [
        e["content_block"]
        for e in events
        if e.get("type") == "content_block_start"
        and e["content_block"]["type"] == "redacted_thinking"
    ]
    assert len(redacted) == 2
    upstream.queue(*cassette_replies(fixture_path(*REDACTED)))
    cid, (_, reply) = chat(app, user_client, "ANTHROPIC_MAGIC_STRING", CLAUDE)
    assert reply.status == "complete", reply.error
    assert reply.reasoning is None  # nothing readable
    assert reply.content == text_of(events)
    assert reply.meta["reasoning_blocks"] == redacted
    upstream.queue(cassette_replies(fixture_path(*BRIEF))[0])
    post(user_client, f"/c/{cid}/messages", {"content": "And?"})
    wait_for_runs(app)
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[1]["content"][:2] == redacted


def test_anthropic_duplicate_message_start_and_unknown_block_tolerated(app, user_client, upstream):
    reply = cassette_replies(fixture_path(*BRIEF))[0]
    starts = [c for c in reply.chunks if c.startswith(b"event: message_start")]
    assert len(starts) == 1
    position = reply.chunks.index(starts[0])
    reply.chunks.insert(position + 1, starts[0])  # message_start again
    unknown = [
        b'event: content_block_start\ndata: {"type": "content_block_start", "index": 7, '
        b'"content_block": {"type": "fancy_new_block", "payload": 1}}\n\n',
        b'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 7}\n\n',
    ]
    reply.chunks[position + 2 : position + 2] = unknown
    upstream.queue(reply)
    _, (_, message) = chat(app, user_client, "Two names for a pet pelican", CLAUDE)
    assert message.status == "complete", message.error
    events = events_of(BRIEF)
    assert message.content == text_of(events) == "Scoop and Beaky"
    assert message.reasoning == thinking_of(events)[0]
    assert message.meta["usage"]["input_tokens"] == 45


def test_reasoning_in_the_api_and_the_export_and_back(app, user_client, upstream):
    from webchat.api import tokens

    upstream.queue(*cassette_replies(fixture_path(*compat.OPENROUTER_REASONING)))
    cid, (_, reply) = chat(app, user_client, "What is 2+2?", compat.MODEL)
    assert reply.reasoning
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        _row, token = tokens.create_token(ada, "tests")
        db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    listed = user_client.get(f"/api/v1/conversations/{cid}/messages", headers=headers)
    by_id = {m["id"]: m for m in listed.get_json()["items"]}
    assert by_id[str(reply.id)]["reasoning"] == reply.reasoning
    assert by_id[str(reply.id)]["content"] == reply.content
    exported = user_client.get(f"/c/{cid}/export?format=json").get_data()
    doc = json.loads(exported)
    [row] = [m for m in doc["messages"] if m["id"] == str(reply.id)]
    assert row["reasoning"] == reply.reasoning
    markdown = user_client.get(f"/c/{cid}/export?format=markdown").get_data(as_text=True)
    assert "**Thinking**" in markdown
    # another account imports the file: the reasoning comes back as it was
    other = app.test_client()
    sign_up(other, "eve@example.com")
    data = {"file": (io.BytesIO(exported), "conversation.json")}
    response = post(other, "/import", data, content_type="multipart/form-data")
    assert response.status_code in (200, 303), response.get_data(as_text=True)
    with app.app_context():
        eve = db.session.scalars(select(User).where(User.email == "eve@example.com")).one()
        copy = db.session.scalars(select(Conversation).where(Conversation.user_id == eve.id)).one()
        thoughts = [m.reasoning for m in messages_of(app, copy.id) if m.reasoning]
        original = db.session.get(Conversation, uuid.UUID(cid))
        assert copy.usage == original.usage and copy.usage["cost_usd"] > 0  # the sums come too
    assert thoughts == [reply.reasoning]


def test_migration_0007_adds_and_drops_the_reasoning_column(ctx):
    """From the schema before (0006) with rows in it: the upgrade adds a NULL reasoning to every
    message and keeps the rest; the downgrade drops it and keeps the rows."""
    from .test_search import add_conversation, make_user

    folder = str(ROOT / "migrations")
    ada = make_user()
    conversation = add_conversation(ada, "Kept", [{"role": "user", "content": "ocelot"}])
    conversation_id = conversation.id
    db.session.commit()
    db.session.remove()
    downgrade(directory=folder, revision="0006")
    columns = {c["name"] for c in inspect(db.engine).get_columns("messages")}
    assert "reasoning" not in columns and "content" in columns
    upgrade(directory=folder)
    [message] = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation_id)
    ).all()
    assert (message.content, message.reasoning) == ("ocelot", None)
    message.reasoning = "thought"
    db.session.commit()
    db.session.remove()
    downgrade(directory=folder, revision="0006")
    upgrade(directory=folder)
    [message] = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation_id)
    ).all()
    assert (message.content, message.reasoning) == ("ocelot", None)
    assert uuid.UUID(str(message.id))


def test_reasoning_streams_live_then_resumes_from_its_cursor(app, user_client, upstream):
    import html
    import re

    from webchat.api import tokens

    from .conftest import parse_sse
    from .test_providers import send

    reply = compat.chunks_reply(compat.lines(compat.DEEPSEEK))
    reply.pause = 0.02  # slow enough that the stream below starts before the thinking ends
    upstream.queue(reply, compat.text_reply())
    cid = send(user_client, "Weather?", compat.MODEL)
    first = messages_of(app, cid)[1]
    body = user_client.get(f"/m/{first.id}/stream").get_data(as_text=True)
    wait_for_runs(app)
    call = messages_of(app, cid)[1]
    assert call.reasoning and call.content == ""
    events = parse_sse(body)
    live = [e for e in events if e["event"] == "reasoning"]
    assert live, [e["event"] for e in events]
    spans = re.compile(r'<span class="thinking-live">(.*?)</span>', re.S)
    shown = "".join(spans.findall(events[0]["data"])) if events[0]["event"] == "snapshot" else ""
    shown += "".join(m for e in live for m in spans.findall(e["data"]))
    assert html.unescape(shown) == call.reasoning
    offsets = [int(e["id"].rsplit(":r", 1)[1]) for e in live]
    assert offsets == sorted(offsets) and offsets[-1] == len(call.reasoning)
    assert all(e["id"].startswith(f"{call.id}:r") for e in live)
    # a program resuming from a thinking cursor gets the rest of the thinking, then the call
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        _row, token = tokens.create_token(ada, "tests")
        db.session.commit()
    resumed = user_client.get(
        f"/api/v1/messages/{first.id}/stream",
        headers={"Authorization": f"Bearer {token}", "Last-Event-ID": f"{call.id}:r5"},
    )
    events = parse_sse(resumed.get_data(as_text=True))
    assert events[0]["event"] == "reasoning"
    assert json.loads(events[0]["data"])["reasoning"] == call.reasoning[5:]
    assert events[0]["id"] == f"{call.id}:r{len(call.reasoning)}"
    assert [e["event"] for e in events[1:3]] == ["tool_call", "tool_result"]


def test_anthropic_thinking_passed_back_within_the_tool_loop(app, user_client, upstream):
    # The recorded parallel tool-use exchange, its first response opened by the signed thinking
    # block of the thinking recording (derived: those events put before its first block, under
    # an index of their own), as a model with extended thinking calls tools.
    from webchat.tools import Tool, register

    thought, signature = thinking_of(events_of(SIGNED))
    block = {"type": "thinking", "thinking": thought, "signature": signature}

    def event(kind: str, data: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    thinking_events = [
        event(
            "content_block_start",
            {"index": 9, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        ),
        event(
            "content_block_delta",
            {"index": 9, "delta": {"type": "thinking_delta", "thinking": thought}},
        ),
        event(
            "content_block_delta",
            {"index": 9, "delta": {"type": "signature_delta", "signature": signature}},
        ),
        event("content_block_stop", {"index": 9}),
    ]
    tools_cassette = ("anthropic", "test_tools.yaml")
    first, second = cassette_replies(fixture_path(*tools_cassette))
    start = next(i for i, c in enumerate(first.chunks) if c.startswith(b"event: message_start"))
    first.chunks[start + 1 : start + 1] = thinking_events
    recorded = json.loads(cassette(fixture_path(*tools_cassette))[0]["request"]["body"])
    spec = recorded["tools"][0]
    names = ["Charles", "Sammy"]
    register(
        app,
        Tool(spec["name"], spec["description"], spec["input_schema"], lambda a, c: names.pop(0)),
    )
    upstream.queue(first, second)
    _, messages = chat(app, user_client, "Two names for a pet pelican", CLAUDE)
    assert [m.role for m in messages] == [
        "user",
        "assistant",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    call = messages[1]
    assert call.reasoning == thought and call.meta["reasoning_blocks"] == [block]
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"][0] == block  # first in the turn, signed, as received
    assert [b["type"] for b in sent[1]["content"][1:]] == ["text", "tool_use", "tool_use"]
