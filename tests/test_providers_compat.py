"""OpenAI-compatible servers in the wild: one replay test per recorded server, named after the
quirk it shows (see docs/providers.md).

Each stream of ``../shared/fixtures`` (DeepSeek, Groq, llama.cpp, Mistral, OpenRouter, xAI, Azure,
Claude behind an OpenAI-compatible endpoint) is replayed byte for byte by the loopback upstream,
read by the real ``openai`` SDK, and goes through webchat's whole path: a message sent from the
page, the run in its thread, the rows in the database, the page after reload. Where a quirk has no
recording of its own (a stream without any ``finish_reason``, a plain JSON body, arguments as an
object or as broken JSON), the test derives it from a recording by the one change named in it.
"""

from __future__ import annotations

import json

import pytest

from webchat.tools import Tool, register

from .conftest import fixture_path, post, steps_of, wait_for_runs
from .fakes.upstream import (
    FakeUpstream,
    Reply,
    cassette,
    chunk_file_reply,
    request_json,
    response_body,
)
from .fakes.upstream import cassette_replies as replies_of
from .test_conversations import messages_of
from .test_providers import chat, openai_text, sse_json, upstream_config

MODEL = "openai/gpt-4o-mini"
TEXT = ("openai", "openai-text.chunks.txt")
CLAUDE_COMPAT = ("anthropic-openai-compat", "claude-haiku-tool-index-starts-at-1.sse")
DEEPSEEK = ("deepseek", "deepseek-v4-reasoning-tool-call.chunks.txt")
GROQ_KIMI = ("groq", "groq-kimi-k2-parallel-tools-usage-twice.yaml")
GROQ_WHOLE = ("groq", "groq-tool-call-whole-args.chunks.txt")
LLAMACPP = ("llamacpp", "llamacpp-gptoss-reasoning-tool-call-timings.yaml")
MISTRAL = ("mistral", "mistral-tool-call-no-index.chunks.txt")
OPENROUTER_REASONING = ("openrouter", "openrouter-claude-reasoning-details-signature.yaml")
OPENROUTER_ERROR = ("openrouter", "openrouter-minimax-error-chunk-after-200.yaml")
XAI = ("xai", "grok3mini-reasoning-tool-call.chunks.txt")
WEATHER_SF = {"name": "weather", "arguments": {"location": "San Francisco"}}
AZURE = ("azure", "azure-model-router-prompt-filter-first.chunks.txt")


@pytest.fixture
def upstream():
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def app(make_app, upstream):
    """The providers talk to the loopback upstream."""
    return make_app(**upstream_config(upstream))


def lines(parts: tuple[str, str]) -> list[dict]:
    """The chunks of a ``*.chunks.txt`` recording, parsed."""
    text = fixture_path(*parts).read_text()
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def reasoning_of(chunks) -> str:
    """The thinking of chat chunks: ``reasoning_content`` or ``reasoning`` deltas joined."""
    return "".join(
        choice["delta"].get("reasoning_content") or choice["delta"].get("reasoning") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
    )


def chunks_reply(chunks: list[dict], done: bool = True) -> Reply:
    """A stream of these chunks as ``data:`` events, ``[DONE]`` last when ``done``."""
    events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
    return Reply(chunks=events + ([b"data: [DONE]\n\n"] if done else []))


def sse_reply(parts: tuple[str, str]) -> Reply:
    """A raw ``*.sse`` recording, one event per network chunk."""
    from .fakes.upstream import sse_events

    return Reply(chunks=sse_events(fixture_path(*parts).read_text()))


def recorded_chunks(parts: tuple[str, str], index: int) -> list[dict]:
    """The JSON chunks of response ``index`` of a cassette."""
    return sse_json(response_body(cassette(fixture_path(*parts))[index]["response"]))


def text_reply() -> Reply:
    return chunk_file_reply(fixture_path(*TEXT))


def recorded_tool(parts: tuple[str, str], name: str, function) -> Tool:
    """The tool ``name`` as the cassette's first request defined it, run by ``function``."""
    body = request_json(cassette(fixture_path(*parts))[0]["request"])
    spec = next(t["function"] for t in body["tools"] if t["function"]["name"] == name)
    return Tool(spec["name"], spec.get("description", ""), spec["parameters"], function)


# --- the end of a stream ----------------------------------------------------------------------


def test_tool_call_without_finish_reason_makes_a_tool_turn(app, user_client, upstream):
    # Claude behind an OpenAI-compatible router, its finish chunk left out: the stream ends with
    # [DONE] and no chunk carries a finish_reason. Its tool index starts at 1; `read_file` is no
    # webchat tool, so the result is an error and the model goes on.
    reply = sse_reply(CLAUDE_COMPAT)
    finish = [c for c in reply.chunks if b'"finish_reason":"tool_calls"' in c]
    assert len(finish) == 1
    reply.chunks.remove(finish[0])
    upstream.queue(reply, text_reply())
    cid, messages = chat(app, user_client, "Read a.txt", MODEL)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    _, call, result, answer = messages
    assert [m.status for m in messages] == ["complete"] * 4, messages[-1].error
    assert call.content == "Reading it."
    assert call.tool_call == {
        "id": "toolu_sanitized",
        "name": "read_file",
        "arguments": {"path": "a.txt"},
    }
    assert call.meta["finish_reason"] == "tool_calls" and call.meta["finish_inferred"] is True
    assert result.tool_result["tool_call_id"] == "toolu_sanitized"
    assert result.tool_result["error"] == "no such tool: there is no tool named 'read_file'"
    assert answer.content == openai_text(lines(TEXT))
    # the model was told: the call and its error result went back with the next request
    sent = upstream.posts()[1]["json"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "toolu_sanitized"
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "toolu_sanitized",
        "content": result.content,
    }
    assert "no such tool" in result.content
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert [(m, name) for m, name, _arg in steps_of(page)] == [("error", "read_file")]
    assert "no such tool" in page


def test_text_ending_at_eof_without_finish_reason_is_a_complete_reply(app, user_client, upstream):
    # OpenAI's recorded text stream with every finish_reason nulled and no [DONE]: the body just
    # ends (cleanly, with the chunked terminator) after complete data.
    chunks = lines(TEXT)
    for chunk in chunks:
        for choice in chunk["choices"]:
            choice["finish_reason"] = None
    upstream.queue(chunks_reply(chunks, done=False))
    _, (_, reply) = chat(app, user_client, "Name a holiday", MODEL)
    assert reply.status == "complete", reply.error
    assert reply.content == openai_text(chunks)
    assert reply.meta["finish_reason"] == "stop" and reply.meta["finish_inferred"] is True


def test_a_stream_that_carried_nothing_is_an_error(app, user_client, upstream):
    # Azure's first chunk (choices [], prompt filter results) alone, then [DONE]: nothing arrived.
    upstream.queue(chunks_reply(lines(AZURE)[:1]))
    _, (_, reply) = chat(app, user_client, "Hello", MODEL)
    assert reply.status == "error" and "without finishing" in reply.error


# --- usage and chunk shapes -------------------------------------------------------------------


def test_azure_prompt_filter_first_chunk_and_usage_after_finish(app, user_client, upstream):
    chunks = lines(AZURE)
    upstream.queue(chunk_file_reply(fixture_path(*AZURE)))
    _, (_, reply) = chat(app, user_client, "Capital of France?", MODEL)
    assert reply.status == "complete", reply.error
    assert reply.content == openai_text(chunks)
    recorded = chunks[-1]["usage"]
    assert reply.meta["finish_reason"] == "stop" and "finish_inferred" not in reply.meta
    assert reply.meta["usage"]["input_tokens"] == recorded["prompt_tokens"]
    assert reply.meta["usage"]["output_tokens"] == recorded["completion_tokens"]


def test_mistral_tool_call_without_index_finish_and_usage_in_one_chunk(app, user_client, upstream):
    seen: list = []
    register(app, Tool("weather", "Weather", {"type": "object"}, lambda a, c: seen.append(a) or 21))
    upstream.queue(chunk_file_reply(fixture_path(*MISTRAL)), text_reply())
    _, (_, call, result, answer) = chat(app, user_client, "Weather in SF?", MODEL)
    assert call.tool_call == {"id": "gSIMJiOkT", **WEATHER_SF}
    assert call.content == ""  # content "" then null beside the call
    assert call.meta["finish_reason"] == "tool_calls"
    assert (call.meta["usage"]["input_tokens"], call.meta["usage"]["output_tokens"]) == (124, 22)
    assert seen == [{"location": "San Francisco"}] and result.content == "21"
    assert answer.status == "complete"


@pytest.mark.parametrize("arguments", ["object", "broken"])
def test_arguments_as_json_object_or_invalid_json(app, user_client, upstream, arguments):
    # Mistral's recording, its whole-arguments text replaced by the same JSON as an object, or
    # cut so that it is not JSON: the object is taken as is; broken text is kept verbatim and
    # reported to the model as an error result.
    chunks = lines(MISTRAL)
    function = chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]
    text = function["arguments"]
    function["arguments"] = json.loads(text) if arguments == "object" else text[:-3]
    register(app, Tool("weather", "Weather", {"type": "object"}, lambda a, c: "sunny"))
    upstream.queue(chunks_reply(chunks), text_reply())
    _, (_, call, result, answer) = chat(app, user_client, "Weather in SF?", MODEL)
    if arguments == "object":
        assert call.tool_call["arguments"] == {"location": "San Francisco"}
        assert result.tool_result["result"] == "sunny"
    else:
        assert call.tool_call["arguments"] == {"_invalid_json": text[:-3]}
        assert "not a JSON object" in result.tool_result["error"]
    assert answer.status == "complete"


def test_groq_whole_call_in_one_chunk_usage_in_finish_chunk(app, user_client, upstream):
    upstream.queue(chunk_file_reply(fixture_path(*GROQ_WHOLE)), text_reply())
    _, (_, call, result, answer) = chat(app, user_client, "Weather?", MODEL)
    assert call.tool_call == {"id": "tk85n1k4m", "name": "weather", "arguments": {}}
    assert (call.meta["usage"]["input_tokens"], call.meta["usage"]["output_tokens"]) == (210, 15)
    assert "no such tool" in result.tool_result["error"]
    assert answer.status == "complete"


def test_several_choices_only_the_first_is_read(app, user_client, upstream):
    # OpenAI's recorded text stream, each chunk also carrying a choice 1 with other text.
    chunks = lines(TEXT)
    for chunk in chunks:
        if chunk["choices"]:
            chunk["choices"].append({"index": 1, "delta": {"content": "NOT THIS"}})
    upstream.queue(chunks_reply(chunks))
    _, (_, reply) = chat(app, user_client, "Name a holiday", MODEL)
    assert "NOT THIS" not in reply.content
    assert reply.content == openai_text(lines(TEXT))


def test_plain_json_body_instead_of_a_stream(app, user_client, upstream):
    # A server that ignores "stream": true and answers with one chat.completion — the one the
    # recorded OpenAI text stream adds up to.
    chunks = lines(TEXT)
    body = {
        "id": chunks[0]["id"],
        "object": "chat.completion",
        "created": chunks[0]["created"],
        "model": chunks[0]["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": openai_text(chunks)},
                "finish_reason": "stop",
            }
        ],
        "usage": chunks[-1]["usage"],
    }
    upstream.queue(
        Reply(headers={"Content-Type": "application/json"}, chunks=[json.dumps(body).encode()])
    )
    _, (_, reply) = chat(app, user_client, "Name a holiday", MODEL)
    assert reply.status == "complete", reply.error
    assert reply.content == openai_text(chunks)
    assert reply.meta["usage"]["output_tokens"] == chunks[-1]["usage"]["completion_tokens"]


def test_deepseek_fragmented_call_after_reasoning_usage_null_until_last(app, user_client, upstream):
    chunks = lines(DEEPSEEK)
    arguments = "".join(
        piece["function"].get("arguments") or ""
        for c in chunks
        for piece in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    name = next(
        piece["function"]["name"]
        for c in chunks
        for piece in c["choices"][0]["delta"].get("tool_calls") or ()
        if piece.get("function", {}).get("name")
    )
    upstream.queue(chunk_file_reply(fixture_path(*DEEPSEEK)), text_reply())
    _, (_, call, result, answer) = chat(app, user_client, "Weather?", MODEL)
    assert call.content == ""  # content null, then "" on the last chunk
    assert call.reasoning == reasoning_of(chunks) and call.reasoning.startswith("The user asks")
    assert call.tool_call["name"] == name
    assert call.tool_call["arguments"] == json.loads(arguments)
    assert call.tool_call["id"].startswith("call_00_")
    assert call.meta["finish_reason"] == "tool_calls"
    assert (call.meta["usage"]["input_tokens"], call.meta["usage"]["output_tokens"]) == (374, 61)
    assert "no such tool" in result.content and answer.status == "complete"


def test_xai_no_finish_reason_key_until_the_end(app, user_client, upstream):
    upstream.queue(chunk_file_reply(fixture_path(*XAI)), text_reply())
    _, (_, call, result, answer) = chat(app, user_client, "Weather in SF?", MODEL)
    assert call.tool_call == {"id": "call_55117580", **WEATHER_SF}
    assert call.reasoning == reasoning_of(lines(XAI)) == "First, the user is"
    assert call.content == "" and answer.reasoning is None
    assert call.meta["finish_reason"] == "tool_calls" and "finish_inferred" not in call.meta
    assert answer.status == "complete"


def test_llamacpp_finish_in_empty_delta_and_usage_with_timings(app, user_client, upstream):
    register(app, recorded_tool(LLAMACPP, "weather", lambda a, c: "40 C"))
    upstream.queue(*replies_of(fixture_path(*LLAMACPP)))
    prompt = "What's the weather in Florence,Italy?"
    _, (_, call, result, answer) = chat(app, user_client, prompt, MODEL)
    assert call.tool_call == {
        "id": "tNkZIM2wWGCzRoFvK6X0TdhHhAYj6fVY",
        "name": "weather",
        "arguments": {"location": "Florence"},
    }
    assert result.content == "40 C"
    assert call.reasoning == reasoning_of(recorded_chunks(LLAMACPP, 0))
    assert answer.reasoning == reasoning_of(recorded_chunks(LLAMACPP, 1))
    assert answer.content == openai_text(recorded_chunks(LLAMACPP, 1))
    assert "°C" in answer.content
    assert (answer.meta["usage"]["input_tokens"], answer.meta["usage"]["output_tokens"]) == (
        173,
        70,
    )
    sent = upstream.posts()[1]["json"]["messages"]
    recorded_sent = request_json(cassette(fixture_path(*LLAMACPP))[1]["request"])["messages"]
    assert sent[1]["tool_calls"][0]["id"] == recorded_sent[2]["tool_calls"][0]["id"]
    assert sent[2] == {k: recorded_sent[3][k] for k in ("role", "tool_call_id", "content")}


# --- tool-call ids ----------------------------------------------------------------------------


def test_groq_kimi_ids_repeated_across_turns_stay_unique(app, user_client, upstream):
    # Kimi numbers its calls `functions.add:0`, `functions.multiply:1` on every turn. The same
    # recorded exchange twice in one conversation: the second turn's calls are stored under new
    # ids (the upstream's kept as upstream_id) and each result pairs with its call.
    register(app, recorded_tool(GROQ_KIMI, "add", lambda a, c: a["a"] + a["b"]))
    register(app, recorded_tool(GROQ_KIMI, "multiply", lambda a, c: a["a"] * a["b"]))
    upstream.queue(*replies_of(fixture_path(*GROQ_KIMI)))
    cid, first_turn = chat(app, user_client, "Add and multiply the number 2 and 3", MODEL)
    roles = ["user", "assistant", "assistant", "tool", "tool", "assistant"]
    assert [m.role for m in first_turn] == roles
    _, add, multiply, five, six, answer = first_turn
    assert add.tool_call["id"] == "functions.add:0" and add.tool_call["arguments"] == {
        "a": 2,
        "b": 3,
    }
    assert multiply.tool_call["id"] == "functions.multiply:1"
    assert (five.content, six.content) == ("5", "6")
    assert answer.content == openai_text(recorded_chunks(GROQ_KIMI, 1))
    recorded_usage = recorded_chunks(GROQ_KIMI, 0)[-1]["usage"]
    assert add.meta["usage"]["input_tokens"] == recorded_usage["prompt_tokens"]
    # the second request carries both calls and results as the recorded one did
    sent = upstream.posts()[1]["json"]["messages"]
    recorded_sent = request_json(cassette(fixture_path(*GROQ_KIMI))[1]["request"])["messages"]
    assert [m["role"] for m in sent] == [m["role"] for m in recorded_sent[1:]]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["functions.add:0", "functions.multiply:1"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:4]] == [
        (m["tool_call_id"], m["content"]) for m in recorded_sent[3:5]
    ]
    # the same stream again, in the same conversation
    upstream.queue(*replies_of(fixture_path(*GROQ_KIMI)))
    assert post(user_client, f"/c/{cid}/messages", {"content": "Again"}).status_code == 303
    wait_for_runs(app)
    second_turn = messages_of(app, cid)[6:]
    assert [m.role for m in second_turn] == roles
    _, add2, multiply2, five2, six2, _ = second_turn
    ids = [m.tool_call["id"] for m in (add, multiply, add2, multiply2)]
    assert len(set(ids)) == 4
    assert add2.tool_call["upstream_id"] == "functions.add:0"
    assert multiply2.tool_call["upstream_id"] == "functions.multiply:1"
    assert five2.tool_result["tool_call_id"] == add2.tool_call["id"] and five2.content == "5"
    assert six2.tool_result["tool_call_id"] == multiply2.tool_call["id"] and six2.content == "6"
    # the model sees the stored ids, each result after its own call
    sent = upstream.posts()[3]["json"]["messages"]
    calls = [c["id"] for m in sent if m.get("tool_calls") for c in m["tool_calls"]]
    results = [m["tool_call_id"] for m in sent if m["role"] == "tool"]
    assert calls == results == ids


# --- errors mid-stream and keep-alives ---------------------------------------------------------


def test_openrouter_error_chunk_after_200_ends_in_error(app, user_client, upstream):
    # `: OPENROUTER PROCESSING` comments, reasoning, finish_reason "length" twice, then a chunk
    # whose top-level `error` says "Token limit reached".
    upstream.queue(*replies_of(fixture_path(*OPENROUTER_ERROR)))
    cid, (_, reply) = chat(app, user_client, "Hello", MODEL)
    chunks = recorded_chunks(OPENROUTER_ERROR, 0)
    assert reply.status == "error"
    assert "Token limit reached" in reply.error
    assert reply.content == openai_text(c for c in chunks if "error" not in c)
    assert reply.reasoning == reasoning_of(chunks) and reply.reasoning
    assert "Token limit reached" in user_client.get(f"/c/{cid}").get_data(as_text=True)


def test_openrouter_keepalive_comments_are_skipped(app, user_client, upstream):
    upstream.queue(*replies_of(fixture_path(*OPENROUTER_REASONING)))
    body = response_body(cassette(fixture_path(*OPENROUTER_REASONING))[0]["response"])
    assert ": OPENROUTER PROCESSING" in body
    _, (_, reply) = chat(app, user_client, "What is 2+2?", MODEL)
    assert reply.status == "complete", reply.error
    chunks = recorded_chunks(OPENROUTER_REASONING, 0)
    assert reply.content == openai_text(chunks) and "4" in reply.content
    assert reply.meta["finish_reason"] == "stop"


def test_openrouter_reasoning_and_reasoning_details_stored_once(app, user_client, upstream):
    # Each delta carries the same thinking twice: `reasoning` and `reasoning_details[].text`.
    chunks = recorded_chunks(OPENROUTER_REASONING, 0)
    details = "".join(
        d.get("text") or ""
        for c in chunks
        for ch in c["choices"]
        for d in ch["delta"].get("reasoning_details") or ()
    )
    assert details == reasoning_of(chunks) != ""
    upstream.queue(*replies_of(fixture_path(*OPENROUTER_REASONING)))
    _, (_, reply) = chat(app, user_client, "What is 2+2?", MODEL)
    assert reply.reasoning == details
    assert reply.content == openai_text(chunks)


def test_think_tags_inside_content_become_reasoning(app, user_client, upstream):
    # llama.cpp's recorded answer with its thinking sent inside `content` between <think> and
    # </think>, as Ollama serves such models, re-cut into 5-character deltas so the tags arrive
    # in pieces.
    chunks = recorded_chunks(LLAMACPP, 1)
    thought, answer_text = reasoning_of(chunks), openai_text(chunks)
    text = "<think>" + thought + "</think>\n\n" + answer_text
    pieces = [
        {**chunks[1], "choices": [{"index": 0, "delta": {"content": text[i : i + 5]}}]}
        for i in range(0, len(text), 5)
    ]
    ends = [c for c in chunks if not c["choices"] or c["choices"][0].get("finish_reason")]
    upstream.queue(chunks_reply([chunks[0], *pieces, *ends]))
    cid, (_, reply) = chat(app, user_client, "Weather?", MODEL)
    assert reply.status == "complete", reply.error
    assert reply.reasoning == thought
    assert reply.content == answer_text.lstrip() and "<think>" not in reply.content
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert '<details class="thinking"><summary>Thinking</summary>' in page


# --- chunked as a network would ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 64])
def test_recordings_cut_anywhere_by_the_network_store_the_same(app, user_client, upstream, size):
    # Groq's Kimi exchange (its answer has "×") and llama.cpp's ("°C"), each body cut into
    # `size`-byte pieces: across events, lines and multi-byte characters.
    register(app, recorded_tool(GROQ_KIMI, "add", lambda a, c: a["a"] + a["b"]))
    register(app, recorded_tool(GROQ_KIMI, "multiply", lambda a, c: a["a"] * a["b"]))
    upstream.queue(*(r.rechunked(size) for r in replies_of(fixture_path(*GROQ_KIMI))))
    _, messages = chat(app, user_client, "Add and multiply the number 2 and 3", MODEL)
    assert [m.status for m in messages] == ["complete"] * 6
    assert messages[-1].content == openai_text(recorded_chunks(GROQ_KIMI, 1))
    assert "×" in messages[-1].content
    register(app, recorded_tool(LLAMACPP, "weather", lambda a, c: "40 C"))
    upstream.queue(*(r.rechunked(size) for r in replies_of(fixture_path(*LLAMACPP))))
    _, (_, call, _, answer) = chat(app, user_client, "What's the weather in Florence,Italy?", MODEL)
    assert call.reasoning == reasoning_of(recorded_chunks(LLAMACPP, 0))
    assert answer.content == openai_text(recorded_chunks(LLAMACPP, 1)) and "°C" in answer.content
