"""The Claude Code provider, with a stand-in ``claude`` (tests/fakes/claude) that prints real
recorded Claude Code sessions (../shared/fixtures/claude-code/) as stream-json.

Each test sends messages in the app and checks the rows: the text blocks, every ``tool_use`` as an
assistant tool call and every ``tool_result`` as a tool message (Claude Code ran the tools, webchat
ran none), the usage, and the session id that the next turn resumes.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from webchat.extensions import db
from webchat.models import Conversation
from webchat.providers import available_models
from webchat.providers.claude_code import SESSION_KEY

from .conftest import fixture_path, post, steps_of, wait_for_runs
from .test_conversations import messages_of
from .test_providers import chat

FAKE_CLAUDE = Path(__file__).parent / "fakes" / "claude"
MODEL = "claude-code/default"


@pytest.fixture
def claude_log(tmp_path, monkeypatch):
    """The stand-in's log of calls (argv, stdin); it replays hello-world-script by default."""
    log = tmp_path / "claude-calls.jsonl"
    monkeypatch.setenv("FAKE_CLAUDE_LOG", str(log))
    use_transcript(monkeypatch, "hello-world-script.jsonl")
    return log


def use_transcript(monkeypatch, name: str) -> Path:
    path = fixture_path("claude-code", name)
    monkeypatch.setenv("FAKE_CLAUDE_TRANSCRIPT", str(path))
    return path


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def app(make_app, tmp_path, claude_log):
    return make_app(
        CLAUDE_CODE_COMMAND=str(FAKE_CLAUDE),
        CLAUDE_CODE_CWD=str(tmp_path / "work"),
        TITLE_GENERATION=False,
    )


def recorded(path: Path) -> list[dict]:
    """The assistant and tool-result lines of a session file that parse, in order."""
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            break
    return [line for line in lines if line.get("type") in ("assistant", "user")]


def blocks(lines: list[dict], kind: str) -> list[dict]:
    return [
        block
        for line in lines
        for block in (
            line["message"]["content"] if isinstance(line["message"]["content"], list) else []
        )
        if block.get("type") == kind
    ]


def test_session_is_stored_with_its_tool_calls_and_resumed(app, user_client, claude_log):
    path = fixture_path("claude-code", "hello-world-script.jsonl")
    lines = recorded(path)
    cid, messages = chat(app, user_client, "Write hello.sh and run it.", MODEL)
    assert [m.role for m in messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert all(m.status == "complete" for m in messages), [(m.status, m.error) for m in messages]
    tool_uses, results = blocks(lines, "tool_use"), blocks(lines, "tool_result")
    calls_stored = [m.tool_call for m in messages if m.tool_call]
    assert calls_stored == [
        {"id": b["id"], "name": b["name"], "arguments": b["input"]} for b in tool_uses
    ]
    tool_messages = [m for m in messages if m.role == "tool"]
    assert [m.tool_result["tool_call_id"] for m in tool_messages] == [
        b["tool_use_id"] for b in results
    ]
    assert [m.content for m in tool_messages] == [b["content"] for b in results]
    assert [m.tool_name for m in tool_messages] == ["Write", "Bash"]
    texts = [b["text"] for b in blocks(lines, "text")]
    assert messages[-1].content == "\n\n".join(texts)  # the last two text blocks, one turn
    usage = {
        "input_tokens": sum(
            (line["message"]["usage"].get(k) or 0)
            for line in lines
            if line["type"] == "assistant"
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ),
        "output_tokens": sum(
            line["message"]["usage"]["output_tokens"]
            for line in lines
            if line["type"] == "assistant"
        ),
        "cached_tokens": sum(
            line["message"]["usage"].get("cache_read_input_tokens") or 0
            for line in lines
            if line["type"] == "assistant"
        ),
        "reasoning_tokens": None,
        "cost_usd": 0.0,  # as the CLI's result line reports it (the stand-in says 0.0)
    }
    assert messages[-1].meta["usage"] == usage
    session_id = lines[0]["sessionId"]
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        assert conversation.meta[SESSION_KEY] == session_id
    (first,) = calls(claude_log)
    assert first["stdin"] == "Write hello.sh and run it."
    assert first["argv"][:4] == ["-p", "--output-format", "stream-json", "--verbose"]
    assert "--resume" not in first["argv"]
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    steps = {name: mark for mark, name, _arg in steps_of(page)}
    assert steps["Write"] == "ok" and steps["Bash"] == "ok"
    # the next turn resumes the session and sends only the new message
    response = post(user_client, f"/c/{cid}/messages", {"content": "Now delete it."})
    assert response.status_code == 303
    wait_for_runs(app)
    second = calls(claude_log)[1]
    assert second["stdin"] == "Now delete it."
    assert second["argv"][second["argv"].index("--resume") + 1] == session_id


def test_failed_tool_result_and_many_calls(app, user_client, monkeypatch):
    path = use_transcript(monkeypatch, "coverage-test-fix.jsonl")
    lines = recorded(path)
    cid, messages = chat(app, user_client, "Fix the coverage test.", MODEL)
    assert messages[-1].status == "complete", messages[-1].error
    tool_uses, results = blocks(lines, "tool_use"), blocks(lines, "tool_result")
    assert [m.tool_call["id"] for m in messages if m.tool_call] == [b["id"] for b in tool_uses]
    stored = [m for m in messages if m.role == "tool"]
    assert len(stored) == len(results)
    failed = [m for m in stored if m.tool_result["error"]]
    assert [m.tool_result["tool_call_id"] for m in failed] == [
        b["tool_use_id"] for b in results if b.get("is_error")
    ]
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    marks = [mark for mark, _name, _arg in steps_of(page)]
    assert failed and marks.count("error") == len(failed) and marks.count("ok") > 0


def test_session_cut_mid_write_fails_keeping_what_was_stored(app, user_client, monkeypatch):
    use_transcript(monkeypatch, "corrupt-last-line.jsonl")
    cid, messages = chat(app, user_client, "Write hello.sh and run it.", MODEL)
    last = messages[-1]
    assert last.role == "assistant" and last.status == "error"
    assert "not JSON" in last.error
    assert [m.tool_name for m in messages if m.role == "tool"] == ["Write", "Bash"]
    assert messages[-2].status == "complete"  # the tool results before the cut stay
    assert "not JSON" in user_client.get(f"/c/{cid}").get_data(as_text=True)
    use_transcript(monkeypatch, "hello-world-script.jsonl")
    assert post(user_client, f"/m/{messages[1].id}/retry", htmx=True).status_code == 200
    wait_for_runs(app)
    assert messages_of(app, cid)[-1].status == "complete"


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("exit", "(status 3) before finishing the reply: Error: the fake claude was told to fail"),
        ("result", "error_max_turns"),
    ],
)
def test_cli_failure_is_readable(app, user_client, monkeypatch, mode, words):
    monkeypatch.setenv("FAKE_CLAUDE_FAIL", mode)
    _, messages = chat(app, user_client, "Do it.", MODEL)
    assert messages[-1].status == "error" and words in messages[-1].error


def test_claude_on_path_is_found(make_app, monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKE_CLAUDE.parent}:/usr/bin:/bin")
    found = make_app()
    with found.test_request_context():
        assert MODEL in available_models()
    missing = make_app(CLAUDE_CODE_COMMAND="no-such-claude-here")
    with missing.test_request_context():
        assert not [m for m in available_models() if m.startswith("claude-code/")]


def test_text_streams_token_by_token_without_doubling(app, claude_log):
    from webchat.providers import get_provider
    from webchat.providers.base import TextDelta
    from webchat.providers.claude_code import StreamJsonParser

    path = fixture_path("claude-code", "hello-world-script.jsonl")
    whole = StreamJsonParser()  # the text as the whole assistant lines alone give it
    expected = "".join(
        e.text
        for line in recorded(path)
        for e in whole.events({"type": line["type"], "message": line["message"]})
        if isinstance(e, TextDelta)
    )
    with app.app_context():
        events = list(get_provider("claude-code").stream("default", []))
    (call,) = calls(claude_log)
    assert "--include-partial-messages" in call["argv"]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    words = sum(len(b["text"].split(" ")) for b in blocks(recorded(path), "text"))
    assert len(deltas) >= words  # a delta per word, not one per block
    assert "".join(deltas) == expected  # the assistant lines after the stream events add nothing


def test_imported_session_resumes_in_its_recorded_folder(app, user_client, claude_log, tmp_path):
    from sqlalchemy import select

    from webchat.models import User
    from webchat.porting import claude_code
    from webchat.porting.report import ImportReport

    path = fixture_path("claude-code", "hello-world-script.jsonl")
    session_id = recorded(path)[0]["sessionId"]
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        claude_code.import_path(ada, path, ImportReport(format="claude-code"), {})
        conversation = db.session.scalars(select(Conversation)).one()
        cid, folder = str(conversation.id), conversation.meta["project_path"]
    assert conversation.meta["session_id"] == session_id
    if Path(folder).exists():
        pytest.skip(f"the recorded project folder {folder} exists on this machine")
    form = {"model": MODEL, "system_prompt": ""}
    assert post(user_client, f"/c/{cid}/settings", form, htmx=True).status_code == 200
    # the recorded folder is not on this machine: the page says so, Claude Code is not run
    post(user_client, f"/c/{cid}/messages", {"content": "Run it again."})
    wait_for_runs(app)
    failed = messages_of(app, cid)[-1]
    assert failed.status == "error" and folder in failed.error
    assert "does not exist on this machine" in failed.error
    assert not claude_log.exists()
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert "does not exist on this machine" in page
    # the folder exists (here: the project moved to tmp_path): that very session resumes there
    project = tmp_path / "project"
    project.mkdir()
    with app.app_context():
        conversation = db.session.get(Conversation, uuid.UUID(cid))
        conversation.meta = {**conversation.meta, "project_path": str(project)}
        db.session.commit()
    post(user_client, f"/c/{cid}/messages", {"content": "Now delete it."})
    wait_for_runs(app)
    (call,) = calls(claude_log)
    assert call["argv"][call["argv"].index("--resume") + 1] == session_id
    assert call["cwd"] == str(project)
    assert call["stdin"] == "Now delete it."
    assert messages_of(app, cid)[-1].status == "complete"
