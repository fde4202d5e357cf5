"""The OpenAI-compatible and Anthropic providers against real recorded streams.

A loopback fake upstream (:mod:`tests.fakes.upstream`) replays the recorded SSE bytes of
``../shared/fixtures/openai`` and ``../shared/fixtures/anthropic``; the official SDKs read them,
and each test goes through webchat's whole path: a message sent from the page, the run in its
thread, the rows in the database, the page and its stream. Faults (HTTP errors, an ``error``
event, a malformed chunk, a cut connection, a stall) go through the same fake.
"""

from __future__ import annotations

import html
import json
import uuid

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Conversation, Message, Run
from webchat.providers import available_models
from webchat.tools import Tool, register

from .conftest import fixture_path, parse_sse, post, sign_up, steps_of, wait_for_runs
from .fakes.upstream import (
    FakeUpstream,
    Reply,
    cassette,
    cassette_replies,
    chunk_file_reply,
    json_reply,
)
from .test_conversations import messages_of

SECRET = "sk-test-webchat-DO-NOT-LEAK-0123456789abcdef"
TEXT_CHUNKS = ("openai", "openai-text.chunks.txt")
OPENAI_TOOLS = ("openai", "test_tool_use_basic.yaml")
ANTHROPIC_TOOLS = ("anthropic", "test_tools.yaml")
ANTHROPIC_THINKING = ("anthropic", "test_thinking_prompt.yaml")


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


def upstream_config(upstream: FakeUpstream, **extra) -> dict:
    """Both HTTP providers pointed at the fake (OpenAI under /v1, Anthropic without), no SDK
    retries, a provider time-out of 2 s."""
    return {
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "OPENAI_API_KEY": SECRET,
        "OPENAI_MODELS": ["gpt-4o-mini"],
        "OPENAI_LIST_MODELS": False,
        "ANTHROPIC_BASE_URL": upstream.url,
        "ANTHROPIC_API_KEY": SECRET,
        "ANTHROPIC_MODELS": ["claude-haiku-4-5"],
        "ANTHROPIC_LIST_MODELS": False,
        "PROVIDER_MAX_RETRIES": 0,
        "PROVIDER_TIMEOUT_MS": 2_000,
        "CLAUDE_CODE_COMMAND": None,
        "TITLE_GENERATION": False,  # the fake answers exactly the requests a test queues for
        **extra,
    }


@pytest.fixture
def app(make_app, upstream):
    """This module's app: the providers talk to the fake upstream."""
    return make_app(**upstream_config(upstream))


def send(client, content: str, model: str) -> str:
    """Start a conversation on ``model`` through the new-chat form; returns its id."""
    response = post(client, "/c", {"content": content, "model": model})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def chat(app, client, content: str, model: str) -> tuple[str, list[Message]]:
    """Send, wait for the run, return the conversation id and its messages."""
    cid = send(client, content, model)
    wait_for_runs(app)
    return cid, messages_of(app, cid)


def openai_text(chunks) -> str:
    """The text of ``chat.completion.chunk`` objects: their ``delta.content`` joined."""
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )


def sse_json(body: str) -> list[dict]:
    """The JSON ``data`` of each event of a recorded SSE body (``[DONE]`` left out)."""
    return [json.loads(e["data"]) for e in parse_sse(body) if e["data"] and e["data"] != "[DONE]"]


def anthropic_text(body: str) -> str:
    """The text of a recorded Messages stream: its ``text_delta`` pieces joined."""
    return "".join(
        e["delta"]["text"]
        for e in sse_json(body)
        if e.get("type") == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )


def recorded_body(parts: tuple[str, str], index: int) -> str:
    return cassette(fixture_path(*parts))[index]["response"]["body"]["string"]


def assert_no_secret(app, client, cid: str) -> None:
    """The API key is in no row of the conversation and not on its page."""
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        rows = [conversation.meta, conversation.system_prompt]
        for m in db.session.scalars(
            select(Message).where(Message.conversation_id == conversation.id)
        ):
            rows += [m.content, m.content_html, m.error, m.meta, m.tool_call, m.tool_result]
        rows += [r.error for r in db.session.scalars(select(Run))]
    assert SECRET not in json.dumps(rows, default=str)
    assert SECRET not in client.get(f"/c/{cid}").get_data(as_text=True)


# --- recordings ---------------------------------------------------------------------------------


def test_openai_text_stream_stored_byte_for_byte(app, user_client, upstream):
    path = fixture_path(*TEXT_CHUNKS)
    upstream.queue(chunk_file_reply(path))
    chunks = [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
    cid, (user, reply) = chat(app, user_client, "Name a holiday", "openai/gpt-4o-mini")
    assert reply.status == "complete", reply.error
    assert reply.content == openai_text(chunks)
    assert reply.meta == {
        "model": "openai/gpt-4o-mini",
        "finish_reason": "stop",
        "usage": {
            "input_tokens": 16,
            "output_tokens": 300,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": None,
        },
    }
    (request,) = upstream.posts()
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {SECRET}"
    assert request["json"]["model"] == "gpt-4o-mini"
    assert request["json"]["stream"] is True
    assert request["json"]["stream_options"] == {"include_usage": True}
    assert request["json"]["messages"] == [{"role": "user", "content": "Name a holiday"}]
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert "openai/gpt-4o-mini · 16 in / 300 out tokens · finish: stop" in page
    assert_no_secret(app, user_client, cid)


def multiply_tool(calls: list) -> Tool:
    """The ``multiply`` tool of the recorded OpenAI request, as a webchat tool."""
    recorded = json.loads(cassette(fixture_path(*OPENAI_TOOLS))[0]["request"]["body"])
    function = recorded["tools"][0]["function"]

    def multiply(arguments, context):
        calls.append(arguments)
        return arguments["a"] * arguments["b"]

    return Tool(function["name"], function["description"], function["parameters"], multiply)


def test_openai_tool_call_runs_and_is_stored(app, user_client, upstream):
    calls: list = []
    register(app, multiply_tool(calls))
    upstream.queue(*cassette_replies(fixture_path(*OPENAI_TOOLS)))
    recorded = cassette(fixture_path(*OPENAI_TOOLS))
    cid, messages = chat(app, user_client, "What is 1231 * 2331?", "openai/gpt-4o-mini")
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    user, call, result, answer = messages
    assert [m.status for m in messages] == ["complete"] * 4
    # the call, reassembled from its argument fragments
    assert call.tool_call == {
        "id": "call_1EYWDzueHEp8OsB8jJSEp7WB",
        "name": "multiply",
        "arguments": {"a": 1231, "b": 2331},
    }
    assert call.tool_name == "multiply" and call.content == ""
    assert call.meta["usage"] == {
        "input_tokens": 54,
        "output_tokens": 20,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": None,
    }
    assert call.meta["finish_reason"] == "tool_calls"
    assert calls == [{"a": 1231, "b": 2331}]
    # the result, as a tool message of the same run, after the call
    assert result.tool_name == "multiply" and result.content == "2869461"
    assert result.tool_result["tool_call_id"] == "call_1EYWDzueHEp8OsB8jJSEp7WB"
    assert result.tool_result["result"] == 2869461 and result.tool_result["error"] is None
    assert result.parent_id == call.id and answer.parent_id == result.id
    assert len({m.run_id for m in messages[1:]}) == 1
    # the model's next step
    final_chunks = sse_json(recorded[1]["response"]["body"]["string"])
    assert answer.content == openai_text(final_chunks)
    assert answer.meta["finish_reason"] == "stop" and answer.meta["model"] == "openai/gpt-4o-mini"
    usage = final_chunks[-1]["usage"]
    assert answer.meta["usage"] == {
        "input_tokens": usage["prompt_tokens"],
        "output_tokens": usage["completion_tokens"],
        "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
        "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"],
        "cost_usd": None,  # the fake's base URL names no provider genai-prices knows
    }
    # the second request carries the call and its result as the recorded one did
    first, second = upstream.posts()
    names = [t["function"]["name"] for t in first["json"]["tools"]]
    assert "multiply" in names and "calculate" in names
    sent = second["json"]["messages"]
    recorded_sent = json.loads(recorded[1]["request"]["body"])["messages"]
    assert sent[0] == recorded_sent[0]
    assert sent[1]["tool_calls"][0]["id"] == recorded_sent[2]["tool_calls"][0]["id"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"a": 1231, "b": 2331}
    assert sent[2] == recorded_sent[3]  # {"role": "tool", "tool_call_id": …, "content": "2869461"}
    # after a reload: the blocks, the answer, and the usage on hover
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert [(mark, name) for mark, name, _arg in steps_of(page)] == [("ok", "multiply")]
    assert "&#34;a&#34;: 1231" in page or '"a": 1231' in page
    assert "2869461" in page
    assert answer.content_html and answer.content_html in page
    # a further turn sends the whole exchange back
    upstream.queue(chunk_file_reply(fixture_path(*TEXT_CHUNKS)))
    response = post(user_client, f"/c/{cid}/messages", {"content": "Thanks"})
    assert response.status_code == 303
    wait_for_runs(app)
    third = upstream.posts()[2]["json"]["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "tool", "assistant", "user"]


def test_tool_blocks_stream_live(app, user_client, upstream):
    register(app, multiply_tool([]))
    replies = cassette_replies(fixture_path(*OPENAI_TOOLS))
    replies[0].pause = 0.05  # slow enough that the stream below starts before the call ends
    upstream.queue(*replies)
    cid = send(user_client, "What is 1231 * 2331?", "openai/gpt-4o-mini")
    first = messages_of(app, cid)[1]
    body = user_client.get(f"/m/{first.id}/stream").get_data(as_text=True)
    wait_for_runs(app)
    events = parse_sse(body)
    names = [e["event"] for e in events]
    assert "tool_call" in names and "tool_result" in names, names
    assert names.index("tool_call") < names.index("tool_result") < names.index("done")
    call = events[names.index("tool_call")]["data"]
    assert [(m, name) for m, name, _arg in steps_of(call)] == [("running", "multiply")]
    assert "2331" in call
    assert "2869461" in events[names.index("tool_result")]["data"]
    # the text after the tool result arrives as deltas, then `done` swaps in the final reply
    after = "".join(
        html.unescape(e["data"])
        for e in events[names.index("tool_result") :]
        if e["event"] == "delta"
    )
    answer = messages_of(app, cid)[-1]
    assert after == answer.content
    assert [(m, name) for m, name, _arg in steps_of(events[-1]["data"])] == [("ok", "multiply")]


def pelican_tool(names: list[str]) -> Tool:
    """The recorded ``pelican_name_generator`` tool: answers the recorded names in turn."""
    recorded = json.loads(cassette(fixture_path(*ANTHROPIC_TOOLS))[0]["request"]["body"])
    spec = recorded["tools"][0]
    return Tool(
        spec["name"], spec["description"], spec["input_schema"], lambda args, ctx: names.pop(0)
    )


def test_anthropic_parallel_tool_calls_stored_one_per_message(app, user_client, upstream):
    recorded = cassette(fixture_path(*ANTHROPIC_TOOLS))
    register(app, pelican_tool(["Charles", "Sammy"]))
    upstream.queue(*cassette_replies(fixture_path(*ANTHROPIC_TOOLS)))
    prompt = "Two names for a pet pelican"
    cid, messages = chat(app, user_client, prompt, "anthropic/claude-haiku-4-5")
    roles = [m.role for m in messages]
    assert roles == ["user", "assistant", "assistant", "tool", "tool", "assistant"], [
        (m.status, m.error) for m in messages
    ]
    _, first, second, result1, result2, answer = messages
    assert first.content == anthropic_text(recorded[0]["response"]["body"]["string"])
    assert first.tool_call == {
        "id": "toolu_017ngBid8gmdReTeroVSZf7r",
        "name": "pelican_name_generator",
        "arguments": {},
    }
    assert second.tool_call["id"] == "toolu_01FJrHJrmnfEqR6NxkQ3yhpu" and second.content == ""
    assert first.meta["usage"] == {
        "input_tokens": 310,
        "output_tokens": 82,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost_usd": None,
    }
    assert first.meta["finish_reason"] == "tool_use"
    assert (result1.content, result2.content) == ("Charles", "Sammy")
    assert result1.tool_result["tool_call_id"] == first.tool_call["id"]
    assert result2.tool_result["tool_call_id"] == second.tool_call["id"]
    assert answer.content == anthropic_text(recorded[1]["response"]["body"]["string"])
    assert answer.meta["usage"] == {
        "input_tokens": 465,
        "output_tokens": 95,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost_usd": None,
    }
    assert answer.meta["finish_reason"] == "end_turn"
    # requests: /v1/messages (base URL without /v1), the key header, one assistant turn with
    # both tool_use blocks, one user turn with both results — as the recorded request
    first_post, second_post = upstream.posts()
    assert first_post["path"] == "/v1/messages"
    assert first_post["headers"]["x-api-key"] == SECRET
    assert first_post["json"]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": prompt}]}
    ]
    sent = second_post["json"]["messages"]
    recorded_sent = json.loads(recorded[1]["request"]["body"])["messages"]
    assert [m["role"] for m in sent] == [m["role"] for m in recorded_sent]
    assert sent[1]["content"][1:] == recorded_sent[1]["content"][1:]  # the two tool_use blocks
    assert sent[1]["content"][0]["text"].strip() == recorded_sent[1]["content"][0]["text"].strip()
    assert sent[2] == recorded_sent[2]  # the two tool_result blocks
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert [name for _m, name, _arg in steps_of(page)] == ["pelican_name_generator"] * 2
    assert "Charles" in page and "Sammy" in page
    assert_no_secret(app, user_client, cid)


def test_anthropic_thinking_stream_stores_text_and_usage(app, user_client, upstream):
    upstream.queue(*cassette_replies(fixture_path(*ANTHROPIC_THINKING)))
    body = recorded_body(ANTHROPIC_THINKING, 0)
    _, (user, reply) = chat(
        app,
        user_client,
        "Two names for a pet pelican, be brief",
        "anthropic/claude-haiku-4-5",
    )
    assert reply.status == "complete", reply.error
    assert reply.content == anthropic_text(body) == "Scoop and Beaky"
    assert reply.meta["usage"] == {
        "input_tokens": 45,
        "output_tokens": 94,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "cost_usd": None,
    }
    assert reply.meta["finish_reason"] == "end_turn"


# --- faults -------------------------------------------------------------------------------------

OPENAI_401 = {  # the shape OpenAI answers with: it echoes (part of) the key
    "error": {
        "message": f"Incorrect API key provided: {SECRET}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}
ANTHROPIC_401 = {
    "type": "error",
    "error": {"type": "authentication_error", "message": f"invalid x-api-key {SECRET}"},
}
RATE_LIMITED = {"error": {"message": "Rate limit reached for requests", "type": "requests"}}
SERVER_ERROR = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
OVERLOADED = (  # an error event after the HTTP 200, as the Messages API sends one
    b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
    b'"message": "Overloaded"}}\n\n'
)


def text_of(provider: str, chunks: list[bytes]) -> str:
    """The reply text carried by recorded SSE ``chunks`` of ``provider``."""
    body = b"".join(chunks).decode()
    if provider == "openai":
        return openai_text(sse_json(body))
    return anthropic_text(body)


def fault_reply(fault: str) -> tuple[str, Reply, str, str]:
    """``(provider, reply, partial text expected, words the error must contain)``."""
    text_reply = chunk_file_reply(fixture_path(*TEXT_CHUNKS))
    anthropic_reply = cassette_replies(fixture_path(*ANTHROPIC_TOOLS))[1]
    if fault.endswith(("401", "429", "500")):
        provider, status = fault.split("-")
        body = {
            "401": OPENAI_401 if provider == "openai" else ANTHROPIC_401,
            "429": RATE_LIMITED,
            "500": SERVER_ERROR,
        }[status]
        return provider, json_reply(int(status), body), "", f"HTTP {status}"
    if fault == "anthropic-error-event":
        anthropic_reply.chunks = anthropic_reply.chunks[:12] + [OVERLOADED]
        return (
            "anthropic",
            anthropic_reply,
            text_of("anthropic", anthropic_reply.chunks),
            "Overloaded",
        )
    if fault == "openai-malformed-chunk":
        text_reply.chunks.insert(
            40, b'data: {"id": "chatcmpl-cut", "choices": [{"delta": {"con\n\n'
        )
        return "openai", text_reply, text_of("openai", text_reply.chunks[:40]), "malformed chunk"
    if fault in ("openai-cut", "anthropic-cut"):
        provider = fault.split("-")[0]
        reply = text_reply if provider == "openai" else anthropic_reply
        reply.cut_after = 120 if provider == "openai" else 14
        return provider, reply, text_of(provider, reply.chunks[: reply.cut_after]), "broke"
    assert fault == "openai-stall"
    text_reply.cut_after, text_reply.stall = 100, 30
    return "openai", text_reply, text_of("openai", text_reply.chunks[:100]), "sent nothing for 2 s"


FAULTS = [
    "openai-401",
    "openai-429",
    "openai-500",
    "anthropic-401",
    "anthropic-429",
    "anthropic-500",
    "anthropic-error-event",
    "openai-malformed-chunk",
    "openai-cut",
    "anthropic-cut",
    "openai-stall",
]
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_ends_in_error_keeps_partial_and_retry_works(
    app, user_client, upstream, fault, caplog
):
    provider, reply, partial, words = fault_reply(fault)
    upstream.queue(reply)
    cid, (user, failed) = chat(app, user_client, "Say something long", MODELS[provider])
    assert failed.status == "error"
    assert failed.content == partial  # every delta before the fault, byte for byte
    assert len(upstream.posts()) == 1  # PROVIDER_MAX_RETRIES=0: the SDK did not retry
    assert words in failed.error, failed.error
    with app.app_context():
        assert db.session.get(Run, failed.run_id).status == "error"
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert html.escape(failed.error, quote=True) in page and "Retry" in page
    assert_no_secret(app, user_client, cid)
    assert SECRET not in caplog.text
    # Retry answers the same message again, this time with a whole recorded reply
    good = (
        chunk_file_reply(fixture_path(*TEXT_CHUNKS))
        if provider == "openai"
        else cassette_replies(fixture_path(*ANTHROPIC_THINKING))[0]
    )
    upstream.queue(good)
    assert post(user_client, f"/m/{failed.id}/retry", htmx=True).status_code == 200
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.status for m in messages] == ["complete", "error", "complete"]
    assert messages[2].parent_id == user.id
    assert messages[2].content == text_of(provider, good.chunks)


# --- model choice and system prompt -------------------------------------------------------------


def test_model_picker_and_system_prompt(app, user_client, upstream):
    cid, _ = chat(app, user_client, "Hello", "demo/echo")
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert 'id="settings"' in page
    for model in ("demo/echo", "openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"):
        assert f'<option value="{model}"' in page
    url = f"/c/{cid}/settings"
    form = {"model": "openai/gpt-4o-mini", "system_prompt": "  Answer in French.  "}
    response = post(user_client, url, form, htmx=True)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "Saved" in fragment and '<option value="openai/gpt-4o-mini" selected>' in fragment
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        assert (conversation.model, conversation.system_prompt) == (
            "openai/gpt-4o-mini",
            "Answer in French.",
        )
    upstream.queue(chunk_file_reply(fixture_path(*TEXT_CHUNKS)))
    assert post(user_client, f"/c/{cid}/messages", {"content": "Again"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert sent["model"] == "gpt-4o-mini"
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "Answer in French."
    assert messages_of(app, cid)[-1].meta["model"] == "openai/gpt-4o-mini"
    # Anthropic takes the system prompt as its own parameter
    post(user_client, url, {"model": "anthropic/claude-haiku-4-5", "system_prompt": "Be brief."})
    upstream.queue(cassette_replies(fixture_path(*ANTHROPIC_THINKING))[0])
    assert post(user_client, f"/c/{cid}/messages", {"content": "Names?"}).status_code == 303
    wait_for_runs(app)
    sent = upstream.posts()[-1]["json"]
    assert sent["system"] == "Be brief." and sent["model"] == "claude-haiku-4-5"
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant"] * 2 + ["user"]
    # an unknown model is refused in the form; a blank prompt clears it
    bad = post(user_client, url, {"model": "openai/nope", "system_prompt": "x"}, htmx=True)
    assert bad.status_code == 400 and "Unknown model" in bad.get_data(as_text=True)
    post(user_client, url, {"model": "anthropic/claude-haiku-4-5", "system_prompt": " "})
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        assert (conversation.model, conversation.system_prompt) == (
            "anthropic/claude-haiku-4-5",
            None,
        )
    other = app.test_client()
    sign_up(other, "eve@example.com")
    assert post(other, url, {"model": "demo/echo"}).status_code == 404


def test_model_list_comes_from_the_server(make_app, upstream):
    upstream.serve_models("llama3.1:8b", "qwen2.5:7b")
    app = make_app(**upstream_config(upstream, OPENAI_MODELS=None, OPENAI_LIST_MODELS=None))
    with app.test_request_context():
        models = available_models()
        assert models[0] == "demo/echo"
        assert {"openai/llama3.1:8b", "openai/qwen2.5:7b"} <= set(models)
        assert "openai/gpt-4o-mini" not in models  # a base URL: the server's list, not OpenAI's
        available_models()
    gets = [r for r in upstream.requests if r["method"] == "GET"]
    assert [r["path"] for r in gets] == ["/v1/models"]  # listed once, then cached
    down = make_app(
        **upstream_config(
            upstream, OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_LIST_MODELS=True
        )
    )
    with down.test_request_context():
        assert "openai/gpt-4o-mini" in available_models()  # the configured ones still


def test_sdk_retries_as_configured(make_app, upstream):
    app = make_app(**upstream_config(upstream, PROVIDER_MAX_RETRIES=1))
    client = app.test_client()
    sign_up(client)
    busy = json_reply(500, SERVER_ERROR)
    busy.headers["retry-after-ms"] = "10"  # the SDKs honour it: no real back-off in the test
    upstream.queue(busy, chunk_file_reply(fixture_path(*TEXT_CHUNKS)))
    _, (user, reply) = chat(app, client, "Hello", "openai/gpt-4o-mini")
    assert reply.status == "complete" and len(upstream.posts()) == 2
