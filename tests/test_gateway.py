"""The recording gateway through the official ``openai`` and ``anthropic`` SDKs, pointed at a
webchat served on a loopback port: every exchange lands in the token's user's history, a resent
history continues its conversation, an edited one branches it, an ``Idempotency-Key`` replays,
and the client's tools pass through unexecuted. Upstream models are the demo, or the loopback
upstream replaying recorded streams (``../shared/fixtures``)."""

from __future__ import annotations

import json
import threading
import uuid

import anthropic
import httpx
import openai
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from webchat.api.tokens import create_token, revoke
from webchat.extensions import db
from webchat.models import Conversation, Message, Run, User

from .conftest import fixture_path, wait_for_runs
from .fakes.upstream import cassette, chunk_file_reply, request_json
from .fakes.upstream import cassette_replies as replies_of
from .test_providers import upstream_config

DEMO = "demo/echo"
GPT = "openai/gpt-4o-mini"
CLAUDE = "anthropic/claude-haiku-4-5"
TEXT = ("openai", "openai-text.chunks.txt")
OPENAI_TOOLS = ("openai", "test_tool_use_basic.yaml")
ANTHROPIC_TOOLS = ("anthropic", "test_tools.yaml")


@pytest.fixture
def app(make_app, upstream):
    """The providers on the loopback upstream (``upstream``, tests/conftest.py)."""
    return make_app(**upstream_config(upstream))


class Served:
    """The app on 127.0.0.1 (werkzeug, a thread per request) with a user and a token."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.token = self.new_token("ada@example.com", "notebook")

    def new_token(self, email: str, name: str) -> str:
        with self.app.app_context():
            user = db.session.scalars(select(User).where(User.email == email)).first()
            if user is None:
                user = User(email=email)
                user.set_password("correct horse")
                db.session.add(user)
                db.session.flush()
            _, token = create_token(user, name)
            db.session.commit()
            return token

    def openai(self, token: str | None = None, **kw) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1", api_key=token or self.token, max_retries=0, **kw
        )

    def anthropic(self, token: str | None = None, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.url, api_key=token or self.token, max_retries=0, **kw
        )

    def rows(self, model, *where):
        with self.app.app_context():
            return db.session.scalars(
                select(model).where(*where).order_by(model.created_at, model.id)
            ).all()

    def count(self, model) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def served(app):
    s = Served(app)
    yield s
    wait_for_runs(app)
    s.server.shutdown()


def path_of(served: Served, conversation_id) -> list[Message]:
    """The active path of a conversation, root first."""
    with served.app.app_context():
        from webchat import tree

        conversation = db.session.get(Conversation, uuid.UUID(str(conversation_id)))
        leaf = tree.active_leaf(conversation)
        return tree.ancestors(leaf, 10_000) if leaf else []


# --- OpenAI Chat Completions -----------------------------------------------------------------


def test_a_completion_is_stored_as_a_conversation_of_the_tokens_user(served):
    client = served.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=DEMO,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello gateway"},
        ],
    )
    completion = raw.parse()
    text = completion.choices[0].message.content
    assert text and "Hello gateway" in text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    cid = raw.headers["X-Webchat-Conversation"]
    [conversation] = served.rows(Conversation)
    assert str(conversation.id) == cid
    assert conversation.system_prompt == "Be brief."
    assert conversation.meta["source"] == "gateway"
    assert conversation.meta["source_name"] == "notebook"
    assert conversation.title == "Hello gateway"
    messages = served.rows(Message)
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert messages[1].content == text
    assert all(m.path_hash for m in messages)


def test_a_streamed_completion_is_what_is_stored(served):
    stream = served.openai().chat.completions.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Stream me a reply"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1
    reply = served.rows(Message, Message.role == "assistant")[0]
    assert reply.content == text and "Stream me a reply" in text


def test_three_turns_land_as_one_conversation_of_six_messages(served):
    client = served.openai()
    history: list[dict] = []
    for n, prompt in enumerate(["First question", "Second question", "Third question"]):
        history.append({"role": "user", "content": prompt})
        completion = client.chat.completions.create(model=DEMO, messages=history, stream=n == 1)
        if n == 1:
            reply = "".join(c.choices[0].delta.content or "" for c in completion if c.choices)
        else:
            reply = completion.choices[0].message.content
        history.append({"role": "assistant", "content": reply})
    [conversation] = served.rows(Conversation)
    path = path_of(served, conversation.id)
    assert [m.role for m in path] == ["user", "assistant"] * 3
    assert [m.content for m in path] == [m["content"] for m in history]
    assert served.count(Message) == 6


def test_an_edited_second_turn_becomes_a_branch(served):
    client = served.openai()
    first = (
        client.chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "One"}])
        .choices[0]
        .message.content
    )
    base = [{"role": "user", "content": "One"}, {"role": "assistant", "content": first}]
    client.chat.completions.create(model=DEMO, messages=[*base, {"role": "user", "content": "Two"}])
    raw = client.chat.completions.with_raw_response.create(
        model=DEMO, messages=[*base, {"role": "user", "content": "Two, edited"}]
    )
    [conversation] = served.rows(Conversation)
    assert raw.headers["X-Webchat-Conversation"] == str(conversation.id)
    assert served.count(Message) == 6
    answer = served.rows(Message, Message.content == first)[0]
    children = served.rows(Message, Message.parent_id == answer.id)
    assert [m.content for m in children] == ["Two", "Two, edited"]
    assert [m.content for m in path_of(served, conversation.id)][:3] == [
        "One",
        first,
        "Two, edited",
    ]


def test_an_idempotency_key_replays_the_stored_reply(served):
    client = served.openai()
    body = {"model": DEMO, "messages": [{"role": "user", "content": "Only once"}]}
    key = {"Idempotency-Key": "job-42"}
    first = client.chat.completions.create(**body, extra_headers=key)
    wait_for_runs(served.app)
    again = client.chat.completions.create(**body, extra_headers=key)
    streamed = client.chat.completions.create(**body, extra_headers=key, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert again.choices[0].message.content == first.choices[0].message.content == text
    assert again.id == first.id
    assert (served.count(Conversation), served.count(Message), served.count(Run)) == (1, 2, 1)


def test_the_clients_tools_pass_through_and_their_round_trip_is_stored(served, upstream):
    """A recorded OpenAI tool call: the client gets the call (webchat runs nothing), sends the
    result, and the conversation holds user, call, result and answer."""
    upstream.queue(*replies_of(fixture_path(*OPENAI_TOOLS)))
    recorded = request_json(cassette(fixture_path(*OPENAI_TOOLS))[0]["request"])
    tools = recorded["tools"]
    client = served.openai()
    history = [{"role": "user", "content": recorded["messages"][-1]["content"]}]
    first = client.chat.completions.create(model=GPT, messages=history, tools=tools)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert upstream.posts()[0]["json"]["tools"] == tools  # offered as the client gave them
    history.append(choice.message.model_dump(exclude_none=True))
    history.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 °C"})
    second = client.chat.completions.create(model=GPT, messages=history, tools=tools)
    answer = second.choices[0].message.content
    [conversation] = served.rows(Conversation)
    path = path_of(served, conversation.id)
    assert [m.role for m in path] == ["user", "assistant", "tool", "assistant"]
    assert path[1].tool_call["id"] == call.id and path[1].tool_call["name"] == call.function.name
    assert path[2].tool_result["tool_call_id"] == call.id and path[2].content == "sunny, 24 °C"
    assert path[3].content == answer
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 °C"}


def test_the_upstreams_text_reaches_the_client_and_the_store_exactly(served, upstream):
    reply = chunk_file_reply(fixture_path(*TEXT))
    expected = "".join(
        (json.loads(c.decode()[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for c in reply.chunks
        if c.startswith(b"data: {")
    )
    upstream.queue(reply)
    stream = served.openai().chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "Say something"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == expected and expected
    assert served.rows(Message, Message.role == "assistant")[0].content == expected


# --- Bad input --------------------------------------------------------------------------------


def test_bad_requests_get_openais_errors_and_store_nothing(served):
    client = served.openai()
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(
            model="nope/none", messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=DEMO, messages=[])
    assert bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": [{"type": "image_url"}]}]
        )
    with pytest.raises(openai.AuthenticationError):
        served.openai(token="wc_not-a-token").models.list()
    response = httpx.post(served.url + "/v1/chat/completions", content=b"{not json")
    assert response.status_code == 401
    response = httpx.post(
        served.url + "/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {served.token}"},
    )
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert (served.count(Conversation), served.count(Message)) == (0, 0)


def test_a_revoked_token_is_a_401(served):
    with served.app.app_context():
        from webchat.models import ApiToken

        row = db.session.scalars(select(ApiToken)).one()
        revoke(row)
        db.session.commit()
    with pytest.raises(openai.AuthenticationError):
        served.openai().chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.AuthenticationError):
        served.anthropic().messages.create(
            model=DEMO, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )


def test_another_users_pinned_conversation_is_a_404(served):
    raw = served.openai().chat.completions.with_raw_response.create(
        model=DEMO, messages=[{"role": "user", "content": "Mine"}]
    )
    cid = raw.headers["X-Webchat-Conversation"]
    other = served.new_token("bob@example.com", "bob's script")
    pinned = {"X-Webchat-Conversation": cid}
    with pytest.raises(openai.NotFoundError):
        served.openai(other).chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": "x"}], extra_headers=pinned
        )
    with pytest.raises(anthropic.NotFoundError):
        served.anthropic(other).messages.create(
            model=DEMO,
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers=pinned,
        )
    assert served.count(Message) == 2


def test_a_pinned_conversation_is_continued(served):
    client = served.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=DEMO, messages=[{"role": "user", "content": "Start"}]
    )
    cid = raw.headers["X-Webchat-Conversation"]
    again = client.chat.completions.with_raw_response.create(
        model=DEMO,
        messages=[{"role": "user", "content": "Unrelated start"}],
        extra_headers={"X-Webchat-Conversation": cid},
    )
    assert again.headers["X-Webchat-Conversation"] == cid
    assert [m.content for m in path_of(served, cid)][::2] == ["Start", "Unrelated start"]


# --- Anthropic Messages -----------------------------------------------------------------------


def test_anthropic_messages_streamed_and_not_continue_one_conversation(served):
    client = served.anthropic()
    first = client.messages.create(
        model=DEMO,
        max_tokens=100,
        system="Answer plainly.",
        messages=[{"role": "user", "content": "Hi from anthropic"}],
    )
    assert first.stop_reason == "end_turn" and first.usage.output_tokens > 0
    text = first.content[0].text
    history = [
        {"role": "user", "content": "Hi from anthropic"},
        {"role": "assistant", "content": [{"type": "text", "text": text}]},
        {"role": "user", "content": [{"type": "text", "text": "Think: /think twice"}]},
    ]
    with client.messages.stream(
        model=DEMO, max_tokens=100, system="Answer plainly.", messages=history
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert "".join(b.text for b in final.content if b.type == "text") == streamed
    [conversation] = served.rows(Conversation)
    assert (
        conversation.meta["api"] == "anthropic" and conversation.system_prompt == "Answer plainly."
    )
    path = path_of(served, conversation.id)
    assert [m.content for m in path] == ["Hi from anthropic", text, "Think: /think twice", streamed]


def test_an_openai_client_talks_to_an_anthropic_model_with_tools(served, upstream):
    """A recorded Anthropic tool_use stream, read by the openai SDK as a tool call; the
    result goes back to Anthropic as a tool_result block."""
    upstream.queue(*replies_of(fixture_path(*ANTHROPIC_TOOLS)))
    recorded = request_json(cassette(fixture_path(*ANTHROPIC_TOOLS))[0]["request"])
    tools = [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description", ""),
                "parameters": t["input_schema"],
            },
        }
        for t in recorded["tools"]
    ]
    prompt = recorded["messages"][0]["content"]
    prompt = prompt if isinstance(prompt, str) else prompt[0]["text"]
    history = [{"role": "user", "content": prompt}]
    client = served.openai()
    chunks = list(
        client.chat.completions.create(model=CLAUDE, messages=history, tools=tools, stream=True)
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert upstream.posts()[0]["json"]["tools"][0]["name"] == recorded["tools"][0]["name"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    history.append(
        {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        }
    )
    for c in calls:
        history.append({"role": "tool", "tool_call_id": c.id, "content": "42"})
    client.chat.completions.create(model=CLAUDE, messages=history, tools=tools)
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[-1]["role"] == "user" and sent[-1]["content"][0]["type"] == "tool_result"
    assert served.count(Conversation) == 1


def test_anthropic_errors_are_in_anthropics_shape(served):
    client = served.anthropic()
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(
            model="nope/x", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model=DEMO, max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    assert bad.value.body["type"] == "error"
    assert served.count(Message) == 0


# --- Models ---------------------------------------------------------------------------------


def test_both_sdks_list_webchats_models(served):
    ids = [m.id for m in served.openai().models.list()]
    assert ids == [DEMO, GPT, CLAUDE]
    assert [m.id for m in served.anthropic().models.list()] == ids


# --- A third-party client: Simon Willison's llm CLI ------------------------------------------


def test_the_llm_cli_continues_one_conversation_through_the_gateway(served, tmp_path):
    """``llm`` (PyPI) with webchat as an extra OpenAI-compatible model: a prompt, then ``llm -c``
    (which resends the logged history) lands as one conversation of four messages."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: webchat-demo\n  model_name: {DEMO}\n"
        f"  api_base: {served.url}/v1\n  api_key_name: webchat\n"
    )
    llm = str(Path(sys.executable).parent / "llm")
    env = {"LLM_USER_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> str:
        done = subprocess.run(
            [llm, *args, "--key", served.token], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    first = run("-m", "webchat-demo", "Hello from llm")
    second = run("-c", "And a follow-up")
    assert "Hello from llm" in first and "And a follow-up" in second
    [conversation] = served.rows(Conversation)
    assert [m.content for m in path_of(served, conversation.id)] == [
        "Hello from llm",
        first,
        "And a follow-up",
        second,
    ]


# --- Live: thinking, a client gone, Stop ------------------------------------------------------


def test_anthropic_stream_carries_thinking_then_text(served):
    with served.anthropic().messages.stream(
        model=DEMO, max_tokens=100, messages=[{"role": "user", "content": "/think about cats"}]
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    reply = served.rows(Message, Message.role == "assistant")[0]
    assert final.content[0].thinking == reply.reasoning and reply.reasoning
    assert final.content[1].text == reply.content
    assert events[0] == "message_start" and events[-1] == "message_stop"


def test_an_anthropic_client_round_trips_a_tool_call_of_an_openai_model(served, upstream):
    upstream.queue(*replies_of(fixture_path(*OPENAI_TOOLS)))
    recorded = request_json(cassette(fixture_path(*OPENAI_TOOLS))[0]["request"])
    tools = [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "input_schema": t["function"]["parameters"],
        }
        for t in recorded["tools"]
    ]
    client = served.anthropic()
    history: list[dict] = [{"role": "user", "content": recorded["messages"][-1]["content"]}]
    with client.messages.stream(model=GPT, max_tokens=200, messages=history, tools=tools) as s:
        first = s.get_final_message()
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert upstream.posts()[0]["json"]["tools"][0]["function"]["name"] == use.name
    history.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    history.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        }
    )
    second = client.messages.create(model=GPT, max_tokens=200, messages=history, tools=tools)
    [conversation] = served.rows(Conversation)
    path = path_of(served, conversation.id)
    assert [m.role for m in path] == ["user", "assistant", "tool", "assistant"]
    assert path[1].tool_call["arguments"] == use.input
    assert path[2].tool_result["tool_call_id"] == use.id and path[2].tool_name == use.name
    assert path[3].content == second.content[0].text
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": use.id, "content": "sunny"}


def _long_stream(served: Served):
    return served.openai().chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": "/long 3000"}], stream=True
    )


def test_a_client_that_goes_away_mid_stream_leaves_a_cancelled_reply(served):
    stream = _long_stream(served)
    received = ""
    for chunk in stream:
        received += chunk.choices[0].delta.content or ""
        if len(received) > 50:
            break
    stream.close()
    wait_for_runs(served.app)
    [run] = served.rows(Run)
    reply = served.rows(Message, Message.role == "assistant")[0]
    assert (run.status, reply.status) == ("cancelled", "cancelled")
    assert reply.content.startswith(received) and len(reply.content) < 3000 * 3


def test_stop_in_the_browser_ends_the_clients_stream_cleanly(served):
    from .conftest import post, sign_in

    browser = served.app.test_client()
    assert sign_in(browser).status_code == 302
    stream = _long_stream(served)
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == 3:
            reply = served.rows(Message, Message.role == "assistant")[0]
            assert post(browser, f"/m/{reply.id}/cancel").status_code == 303
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    wait_for_runs(served.app)
    reply = served.rows(Message, Message.role == "assistant")[0]
    assert reply.status == "cancelled" and reply.content == text


# --- Migration 0012 ---------------------------------------------------------------------------


def test_migration_0012_round_trips_with_data(served):
    """From 0011 with a gateway conversation stored: the upgrade adds the columns (NULL for old
    rows), a resent history then starts afresh, its continuation is found; down and up again
    keep every message."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import inspect, text

    from .conftest import ROOT

    folder = str(ROOT / "migrations")
    client = served.openai()
    first = (
        client.chat.completions.create(model=DEMO, messages=[{"role": "user", "content": "Before"}])
        .choices[0]
        .message.content
    )
    wait_for_runs(served.app)
    with served.app.app_context():
        downgrade(directory=folder, revision="0011")
        columns = {c["name"] for c in inspect(db.engine).get_columns("messages")}
        assert "path_hash" not in columns
        assert db.session.execute(text("SELECT count(*) FROM messages")).scalar() == 2
        db.session.remove()
        upgrade(directory=folder)
        assert (
            db.session.execute(
                text("SELECT count(*) FROM messages WHERE path_hash IS NULL")
            ).scalar()
            == 2
        )
        db.session.remove()
    history = [{"role": "user", "content": "Before"}, {"role": "assistant", "content": first}]
    client.chat.completions.create(
        model=DEMO, messages=[*history, {"role": "user", "content": "After"}]
    )
    wait_for_runs(served.app)
    assert served.count(Conversation) == 2  # the old rows have no hash: a new conversation
    later = served.rows(Message, Message.content == "After")[0]
    client.chat.completions.create(
        model=DEMO,
        messages=[
            *history,
            {"role": "user", "content": "After"},
            {
                "role": "assistant",
                "content": served.rows(Message, Message.parent_id == later.id)[0].content,
            },
            {"role": "user", "content": "Again"},
        ],
    )
    wait_for_runs(served.app)
    assert served.count(Conversation) == 2 and served.count(Message) == 8
    with served.app.app_context():
        downgrade(directory=folder, revision="0011")
        assert db.session.execute(text("SELECT count(*) FROM messages")).scalar() == 8
        db.session.remove()
        upgrade(directory=folder)
        db.session.remove()


def test_a_gateway_conversation_is_marked_searched_exported_and_shown(served):
    """The sidebar marks it with the token's name; search finds it, the JSON export and the page
    hold its messages, like any other conversation."""
    from .conftest import sign_in

    raw = served.openai().chat.completions.with_raw_response.create(
        model=DEMO, messages=[{"role": "user", "content": "Tell me about aardvarks"}]
    )
    cid = raw.headers["X-Webchat-Conversation"]
    reply = raw.parse().choices[0].message.content
    wait_for_runs(served.app)
    browser = served.app.test_client()
    assert sign_in(browser).status_code == 302
    page = browser.get(f"/c/{cid}").get_data(as_text=True)
    assert 'class="source-badge"' in page and ">notebook</span>" in page
    assert "Tell me about aardvarks" in page
    hits = browser.get("/search", query_string={"q": "aardvarks"}).get_data(as_text=True)
    assert f"/c/{cid}" in hits
    exported = browser.get(f"/c/{cid}/export", query_string={"format": "json"})
    assert exported.status_code == 200
    body = json.loads(exported.get_data(as_text=True))
    text = json.dumps(body)
    assert "Tell me about aardvarks" in text and json.dumps(reply)[1:-1] in text
    assert '"source": "gateway"' in text


# --- The README -----------------------------------------------------------------------------


def _readme_snippets() -> list[str]:
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The recording gateway", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def test_the_readme_names_every_gateway_route(app):
    from .conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    routes = [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("gateway.")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    assert len(routes) == 3
    for method, path in routes:
        assert f"`{method} {path}`" in readme


def test_the_readmes_snippets_run_and_a_second_call_continues(served, capsys):
    """The README's three lines, for each SDK, as printed there (the URL and token swapped):
    the OpenAI one, a second call continuing it, then the Anthropic one (a new conversation:
    a first message starts one)."""

    def run(snippet: str) -> None:
        code = snippet.replace("http://127.0.0.1:5000", served.url)
        exec(compile(code.replace("wc_…your token…", served.token), "README.md", "exec"), {})

    openai_snippet, anthropic_snippet = _readme_snippets()
    run(openai_snippet)
    first = served.rows(Message, Message.role == "assistant")[0].content
    assert capsys.readouterr().out == first + "\n"
    served.openai().chat.completions.create(
        model=DEMO,
        messages=[
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": first},
            {"role": "user", "content": "And then?"},
        ],
    )
    [conversation] = served.rows(Conversation)
    assert [m.content for m in path_of(served, conversation.id)][::2] == ["Hello", "And then?"]
    run(anthropic_snippet)
    assert "Hello" in capsys.readouterr().out
    assert served.count(Conversation) == 2


def test_a_new_user_creates_a_token_in_settings_and_runs_the_snippet_shown(served, capsys):
    """As a person would: sign in, create a token on the Settings page, run the Python snippet
    the page shows; the conversation is in the sidebar."""
    import html
    import re

    from .conftest import csrf_token, sign_in

    browser = served.app.test_client()
    assert sign_in(browser).status_code == 302
    page = browser.post(
        "/settings/tokens",
        data={"name": "my laptop", "csrf_token": csrf_token(browser, "/")},
        follow_redirects=True,
    ).get_data(as_text=True)
    [snippet] = [
        html.unescape(code)
        for code in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)
        if "from openai import OpenAI" in code
    ]
    base = "http://localhost/v1"  # the test client's host; the served app is elsewhere
    assert f'base_url="{base}"' in snippet
    exec(compile(snippet.replace(base, served.url + "/v1"), "settings", "exec"), {})
    assert "Hello" in capsys.readouterr().out
    sidebar = browser.get("/").get_data(as_text=True)
    assert ">my laptop</span>" in sidebar and ">Hello</span>" in sidebar


def test_an_upstream_failure_is_openais_error_streamed_or_not(served, upstream):
    from .fakes.upstream import json_reply

    failure = {"error": {"message": "overloaded", "type": "server_error"}}
    upstream.queue(json_reply(500, failure), json_reply(500, failure))
    client = served.openai()
    with pytest.raises(openai.InternalServerError) as whole:
        client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "a"}])
    assert whole.value.status_code == 502 and whole.value.body["type"] == "server_error"
    with pytest.raises(openai.APIError):
        for _chunk in client.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "b"}], stream=True
        ):
            pass
    wait_for_runs(served.app)
    assert [r.status for r in served.rows(Run)] == ["error", "error"]


def test_a_second_request_while_a_reply_runs_is_a_409_that_stores_nothing(served):
    client = served.openai()
    with client.chat.completions.with_streaming_response.create(
        model=DEMO, messages=[{"role": "user", "content": "/long 3000"}], stream=True
    ) as running:
        cid = running.headers["X-Webchat-Conversation"]
        before = served.count(Message)
        with pytest.raises(openai.ConflictError) as conflict:
            client.chat.completions.create(
                model=DEMO,
                messages=[{"role": "user", "content": "meanwhile"}],
                extra_headers={"X-Webchat-Conversation": cid},
            )
        assert conflict.value.status_code == 409 and served.count(Message) == before
        with served.app.app_context():
            from webchat.streaming import runs

            runs.cancel(served.rows(Run)[0].id)
        for _chunk in running.parse():
            pass
