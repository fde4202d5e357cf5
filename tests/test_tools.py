"""The built-in tools, the tool runner (time limit, errors as results) and the tool loop's limit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Conversation, Message, Run, User
from webchat.providers.base import ToolCall
from webchat.streaming import runs
from webchat.tools import Tool, ToolContext, definitions, register, run

from .conftest import fixture_path, post, sign_up, wait_for_runs
from .fakes.upstream import FakeUpstream, cassette_replies
from .test_conversations import messages_of
from .test_providers import OPENAI_TOOLS, chat, multiply_tool, upstream_config


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(id=f"call_{uuid.uuid4().hex[:8]}", name=name, arguments=arguments)


@pytest.fixture
def context(app):
    return ToolContext(app, user_id=1, conversation_id=uuid.uuid4())


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("1231 * 2331", 2869461),
        ("(1 + 2) * 3 / 4", 2.25),
        ("2 ** 10 - 1", 1023),
        ("2^8", 256),
        ("-7 // 2", -4),
        ("17 % 5", 2),
        ("sqrt(16) + abs(-2)", 6),
        ("round(pi, 3)", 3.142),
        ("max(3, 9, 4)", 9),
        ("10 / 4", 2.5),
    ],
)
def test_calculate(context, expression, result):
    outcome = run(call("calculate", expression=expression), context, 2_000)
    assert outcome.error is None, outcome.error
    assert outcome.result == {"expression": expression, "result": result}


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("1 / 0", "division by zero"),
        ("__import__('os').system('true')", "not allowed"),
        ("().__class__", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("9 ** 9 ** 9", "too large"),
        ("10.0 ** 400", "cannot compute"),
        ("sqrt(-1)", "cannot compute"),
        ("1 +", "cannot parse"),
        ("x = 1", "cannot parse"),
        ("1" * 600, "longer than 500"),
        ("True + 1", "not allowed"),
    ],
)
def test_calculate_refuses(context, expression, words):
    outcome = run(call("calculate", expression=expression), context, 2_000)
    assert outcome.result is None and words in outcome.error
    assert outcome.text.startswith("Error: ")


def test_current_datetime(context):
    before = int(datetime.now(UTC).timestamp())
    outcome = run(call("current_datetime", timezone="Asia/Tokyo"), context, 2_000)
    assert outcome.error is None
    assert before <= outcome.result["unix"] <= before + 5
    assert outcome.result["datetime"].endswith("+09:00")
    assert outcome.result["timezone"] == "Asia/Tokyo"
    assert run(call("current_datetime"), context, 2_000).result["datetime"].endswith("+00:00")
    bad = run(call("current_datetime", timezone="Mars/Olympus"), context, 2_000)
    assert "unknown time zone" in bad.error


def test_runner_turns_every_failure_into_a_result(app, context):
    def slow(arguments, ctx):
        time.sleep(2)
        return "late"

    def broken(arguments, ctx):
        raise RuntimeError("kaput")

    params = {"type": "object", "properties": {}}
    register(app, Tool("slow", "sleeps", params, slow))
    register(app, Tool("broken", "raises", params, broken))
    started = time.monotonic()
    timed_out = run(call("slow"), context, 100)
    assert time.monotonic() - started < 1.5
    assert "longer than 0.1 s" in timed_out.error
    assert "RuntimeError: kaput" in run(call("broken"), context, 1_000).error
    assert "no tool named 'nope'" in run(call("nope"), context, 1_000).error
    assert "missing argument(s): expression" in run(call("calculate"), context, 1_000).error
    unknown = run(call("calculate", expression="1", extra=2), context, 1_000)
    assert "unknown argument(s): extra" in unknown.error
    invalid = run(ToolCall("c1", "calculate", {"_invalid_json": "{'a'"}), context, 1_000)
    assert "not a JSON object" in invalid.error
    names = [d["name"] for d in definitions(app)]
    assert {"current_datetime", "calculate", "search_conversations"} <= set(names)
    assert all(d["parameters"]["type"] == "object" for d in definitions(app))


def make_conversation(user_id: int, title: str, *texts: str, deleted: bool = False) -> uuid.UUID:
    conversation = Conversation(user_id=user_id, title=title)
    if deleted:
        conversation.deleted_at = datetime.now(UTC)
    db.session.add(conversation)
    db.session.flush()
    for i, text in enumerate(texts):
        db.session.add(
            Message(
                conversation_id=conversation.id,
                role="user" if i % 2 == 0 else "assistant",
                content=text,
                created_at=datetime.now(UTC),
            )
        )
    db.session.commit()
    return conversation.id


def test_search_conversations_finds_only_the_users_own(app):
    with app.app_context():
        ada, bob = User(email="ada@example.com"), User(email="bob@example.com")
        for user in (ada, bob):
            user.set_password("correct horse")
            db.session.add(user)
        db.session.commit()
        ada_id, bob_id = ada.id, bob.id
        pelicans = make_conversation(ada_id, "Birds", "Tell me about PELICANS", "Pelicans fish.")
        make_conversation(ada_id, "Other", "Nothing here 100%")
        make_conversation(ada_id, "Binned", "pelican in the trash", deleted=True)
        make_conversation(bob_id, "Bob's", "my pelican")
        current = make_conversation(ada_id, "Now", "search for pelican please")
    outcome = run(
        call("search_conversations", query="pelican"), ToolContext(app, ada_id, current), 2_000
    )
    assert outcome.error is None
    matches = outcome.result["matches"]
    assert [m["snippet"] for m in matches] == ["Pelicans fish.", "Tell me about PELICANS"]
    assert {m["conversation_id"] for m in matches} == {str(pelicans)}
    assert matches[0]["conversation_title"] == "Birds"
    # LIKE wildcards in the query are taken literally
    percent = run(
        call("search_conversations", query="100%"), ToolContext(app, ada_id, current), 2_000
    )
    assert [m["snippet"] for m in percent.result["matches"]] == ["Nothing here 100%"]
    wild = run(call("search_conversations", query="%"), ToolContext(app, bob_id, current), 2_000)
    assert wild.result["matches"] == []
    assert (
        "empty"
        in run(
            call("search_conversations", query=" "), ToolContext(app, ada_id, current), 2_000
        ).error
    )


# --- the tool loop, driven by the recorded OpenAI tool call -------------------------------------


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


def test_tool_loop_limit_stops_a_runaway_chain(make_app, upstream):
    app = make_app(**upstream_config(upstream, TOOL_LOOP_LIMIT=2))
    client = app.test_client()
    sign_up(client)
    register(app, multiply_tool([]))
    for i in range(3):  # the model asks for the tool again and again (a new call id each time)
        ask = cassette_replies(fixture_path(*OPENAI_TOOLS))[0]
        ask.chunks = [
            c.replace(b"call_1EYWDzueHEp8OsB8jJSEp7WB", b"call_%d" % i) for c in ask.chunks
        ]
        upstream.queue(ask)
    cid, messages = chat(app, client, "What is 1231 * 2331?", "openai/gpt-4o-mini")
    assert len(upstream.posts()) == 3
    roles = [m.role for m in messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "assistant"]
    last = messages[-1]
    assert last.status == "error" and "3 times in a row" in last.error
    assert messages[-2].tool_call is not None and messages[-2].status == "complete"
    # the unanswered call of the stopped round is not sent again: a new turn pairs every call
    upstream.queue(cassette_replies(fixture_path(*OPENAI_TOOLS))[1])
    assert post(client, f"/c/{cid}/messages", {"content": "And now?"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]["messages"]
    ids = [c["id"] for m in sent if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    answered = [m["tool_call_id"] for m in sent if m["role"] == "tool"]
    assert ids == answered == ["call_0", "call_1"]
    assert messages_of(app, cid)[-1].status == "complete"


def test_cancel_between_tool_calls(make_app, upstream):
    app = make_app(**upstream_config(upstream))
    client = app.test_client()
    sign_up(client)
    started = []

    def slow_multiply(arguments, ctx):
        started.append(time.monotonic())
        time.sleep(0.5)
        return arguments["a"] * arguments["b"]

    tool = multiply_tool([])
    register(app, Tool(tool.name, tool.description, tool.parameters, slow_multiply))
    upstream.queue(*cassette_replies(fixture_path(*OPENAI_TOOLS)))
    cid = post(client, "/c", {"content": "What is 1231 * 2331?", "model": "openai/gpt-4o-mini"})
    cid = cid.headers["Location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 10
    while not started and time.monotonic() < deadline:
        time.sleep(0.02)
    first = messages_of(app, cid)[1]
    with app.app_context():
        runs.cancel(first.run_id)
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert len(upstream.posts()) == 1  # the model was not called again
    assert messages[-1].status == "cancelled"
    with app.app_context():
        assert db.session.scalars(select(Run)).one().status == "cancelled"
