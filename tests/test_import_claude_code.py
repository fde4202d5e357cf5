"""Claude Code sessions: each real fixture imported and checked against what its lines hold."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Conversation, Message, Run
from webchat.porting import claude_code
from webchat.porting.report import ImportReport
from webchat.search import search

from .conftest import fixture_path
from .test_porting import CLAUDE, by_source, count, jsonl, make_user, messages_of


def import_file(user, name: str, report: ImportReport | None = None) -> ImportReport:
    report = report or ImportReport(format="claude-code")
    claude_code.import_path(
        user, fixture_path(CLAUDE, name), report, claude_code.drafts.sources_of(user, "claude-code")
    )
    return report


def imported(name: str):
    """A new user with the fixture session ``name`` imported: (user, report, lines, messages),
    the messages already checked against the file."""
    user = make_user()
    report = import_file(user, name)
    lines = jsonl(CLAUDE, name)
    messages = messages_of(db.session.scalars(select(Conversation.id)).one())
    check_against_file(lines, messages)
    return user, report, lines, messages


def blocks(lines: list[dict], kind: str) -> list[dict]:
    """Every content block of ``kind`` in the lines' messages."""
    out = []
    for line in lines:
        content = (line.get("message") or {}).get("content")
        out += [b for b in content if b.get("type") == kind] if isinstance(content, list) else []
    return out


def check_against_file(lines: list[dict], messages: list[Message]) -> None:
    """What every session must satisfy, computed from the file itself."""
    rows = by_source(messages)
    conversation_lines = [
        line for line in lines if line.get("type") in ("user", "assistant", "system")
    ]
    # every conversation line went into a message, and no message is there twice
    assert {line["uuid"] for line in conversation_lines} <= set(rows)
    keys = [k for m in messages for k in m.meta["source_ids"]]
    assert len(keys) == len(set(keys))
    # tool calls and tool results, one message each, paired by id
    calls = {b["id"]: b for b in blocks(lines, "tool_use")}
    results = blocks(lines, "tool_result")
    with_calls = [m for m in messages if m.tool_call]
    tool_rows = [m for m in messages if m.role == "tool"]
    assert sorted(m.tool_call["id"] for m in with_calls) == sorted(calls)
    assert all(m.role == "assistant" for m in with_calls)
    for m in with_calls:
        assert m.tool_call["name"] == calls[m.tool_call["id"]]["name"] == m.tool_name
        assert m.tool_call["arguments"] == calls[m.tool_call["id"]]["input"]
    assert len(tool_rows) == len(results)
    by_id = {m.id: m for m in messages}
    for row in tool_rows:
        call = row.tool_result["tool_call_id"]
        assert call in {b["tool_use_id"] for b in results}
        if call in calls:  # a result whose call is in the file hangs under that call
            parent = by_id[row.parent_id]
            assert parent.tool_call["id"] == call and row.tool_name == calls[call]["name"]
    for block in results:
        row = next(m for m in tool_rows if m.tool_result["tool_call_id"] == block["tool_use_id"])
        failed = bool(block.get("is_error"))
        assert (row.tool_result["error"] is not None) == failed
    # one API response (message.id) → its text on one message; usage counted once, the last line's
    responses: dict[str, list[dict]] = {}
    for line in lines:
        if line.get("type") == "assistant":
            responses.setdefault(line["message"]["id"], []).append(line)
    with_usage = [m for m in messages if "usage" in m.meta]
    assert sorted(m.meta["response_id"] for m in with_usage) == sorted(responses)
    for m in with_usage:
        assert m.meta["usage"] == responses[m.meta["response_id"]][-1]["message"]["usage"]
    for group in responses.values():
        texts = [
            b["text"] for line in group for b in line["message"]["content"] if b["type"] == "text"
        ]
        if texts:
            assert "\n\n".join(texts) in {m.content for m in messages}
    # parent links follow parentUuid wherever both ends are in the file
    for line in conversation_lines:
        parent = line.get("parentUuid") or line.get("logicalParentUuid")
        child = rows[line["uuid"]]
        if parent in rows and rows[parent].id != child.id and child.role != "tool":
            assert child.parent_id == rows[parent].id, line["uuid"]
    # order: oldest first by the source's own timestamps (a child never before its parent)
    for m in messages:
        if m.parent_id in by_id:
            assert m.created_at > by_id[m.parent_id].created_at
    # each turn of the assistant is one finished run answering the user's message
    for m in messages:
        if m.role in ("assistant", "tool"):
            assert m.run_id is not None
    # rendered once, on import
    assert all(m.content_html is not None for m in messages if m.role != "tool")


def test_hello_world_session(ctx):
    user = make_user()
    report = import_file(user, "hello-world-script.jsonl")
    assert (report.conversations_created, report.messages, dict(report.skipped)) == (
        1,
        8,
        {"queue operation": 1},
    )
    conversation = db.session.scalars(select(Conversation)).one()
    lines = jsonl(CLAUDE, "hello-world-script.jsonl")
    assert conversation.meta["session_id"] == lines[1]["sessionId"]
    assert conversation.meta["project_path"] == "/tmp/tmp74wiyiny"
    assert (
        conversation.meta["git_branch"] == ""
        and conversation.meta["claude_code_version"] == "2.1.14"
    )
    assert conversation.title.startswith("Write a shell script called hello.sh")
    messages = messages_of(conversation.id)
    check_against_file(lines, messages)
    assert [m.role for m in messages] == [
        "user", "assistant", "tool", "assistant", "tool", "assistant", "user", "assistant"
    ]  # fmt: skip
    assert messages[6].meta.get("is_meta") and messages[6].content.startswith("Stop hook feedback")
    assert messages[4].content == "Hello world" and messages[2].tool_name == "Write"
    assert messages[1].meta["model"] == "claude-opus-4-5-20251101"
    assert count(Run) == 2  # the reply to the prompt (tools included), the reply to the hook
    assert messages[0].created_at.isoformat() == "2026-01-21T06:20:30.861000+00:00"


def test_coverage_session_with_parallel_calls_and_an_error(ctx):
    user, report, _lines, messages = imported("coverage-test-fix.jsonl")
    assert report.messages == len(messages) == 32
    # 14 responses (two with a second tool call) → 16; 13 tool_result lines; prompt + 2 hooks
    assert Counter(m.role for m in messages) == {"assistant": 16, "tool": 13, "user": 3}
    errors = [m for m in messages if m.role == "tool" and m.tool_result["error"]]
    assert len(errors) == 1
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.meta["git_branch"] == "master"
    # searchable: words of the prompt, of a tool call's arguments and of a tool result
    assert {h.role for h in search(user, "multiply_numbers").items} >= {"user", "assistant"}
    failed = errors[0].tool_result["error"]
    word = max(failed.replace("/", " ").split(), key=len).strip(".,:;'\"()[]")
    assert errors[0].id in {h.message_id for h in search(user, f'"{word}"', limit=100).items}


def test_rewind_and_compaction_keep_the_tree(ctx):
    _user, _report, _lines, messages = imported("dag_compact_after_rewind.jsonl")
    rows = by_source(messages)
    children_of_a1 = [m for m in messages if m.parent_id == rows["a1"].id]
    assert {m.content for m in children_of_a1} == {"First attempt", "Second attempt"}  # the rewind
    boundary = rows["cb"]
    assert boundary.role == "system" and boundary.meta["subtype"] == "compact_boundary"
    assert boundary.parent_id == rows["b2a2"].id  # across the boundary: logicalParentUuid
    assert rows["cs"].parent_id == boundary.id and rows["cs"].meta["compact_summary"]
    assert rows["p1a"].content == "Final answer" and rows["p1a"].parent_id == rows["p1u"].id
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.title == "Start" and conversation.meta["session_id"] == "s1"


def test_sidechains_hang_under_their_task_call(ctx):
    _user, report, _lines, messages = imported("sidechain_integrated.jsonl")
    rows = by_source(messages)
    task = rows["83a7cabd-3642-45d6-ba73-9b9f843b9ab1"]
    assert (
        task.tool_call["name"] == "Task" and task.parent_id is None
    )  # its parent isn't in the file
    side = [m for m in messages if m.meta.get("sidechain")]
    assert len(side) == 2 and all(m.meta.get("sidechain") for m in side)
    root = rows["b674eedd-0d9d-49e7-8116-1f092cd750ed"]
    assert root.parent_id == task.id and root.meta["parent_inferred"]
    assert rows["3c78114e-3de3-471e-b80f-0c86adb361c4"].id == root.id  # same response, one message
    assert report.notes["parent not in the source (kept as a root)"] == 2
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.meta["project_path"].endswith("claude-code-log")
    assert "â†’" in rows["4899826e-499f-4f24-ae6e-f2ac31cddfd4"].content  # kept as written


def test_a_corrupt_line_is_skipped_and_a_grown_session_adds_only_new_lines(ctx):
    user = make_user()
    first = import_file(user, "corrupt-last-line.jsonl")
    assert first.skipped["corrupt line (not JSON)"] == 1 and first.messages == 7
    grown = import_file(user, "hello-world-script.jsonl")  # the same session, complete
    # the 7 lines the cut file held are known; its cut 9th line comes whole now
    assert (grown.conversations_updated, grown.messages, grown.already_imported) == (1, 1, 7)
    again = import_file(user, "hello-world-script.jsonl")
    assert (again.conversations_unchanged, again.messages) == (1, 0)
    conversation = db.session.scalars(select(Conversation)).one()
    messages = messages_of(conversation.id)
    check_against_file(jsonl(CLAUDE, "hello-world-script.jsonl"), messages)
    assert messages[-1].parent_id == messages[-2].id and messages[-1].role == "assistant"


def test_growth_cut_inside_a_response_counts_usage_once(ctx, tmp_path):
    """The session written up to the middle of a response (two tool calls of one message.id),
    imported, then imported whole: the same messages as one import, usage once and final."""
    source = fixture_path(CLAUDE, "coverage-test-fix.jsonl").read_text(encoding="utf-8")
    path = tmp_path / "c64cc478.jsonl"
    path.write_text("".join(source.splitlines(keepends=True)[:11]), encoding="utf-8")
    user = make_user()
    report = ImportReport(format="claude-code")
    claude_code.import_path(user, path, report, claude_code.drafts.sources_of(user, "claude-code"))
    path.write_text(source, encoding="utf-8")
    claude_code.import_path(user, path, report, claude_code.drafts.sources_of(user, "claude-code"))
    assert report.conversations_created == 1 and report.conversations_updated == 1
    messages = messages_of(db.session.scalars(select(Conversation.id)).one())
    assert len(messages) == 32
    check_against_file(jsonl(CLAUDE, "coverage-test-fix.jsonl"), messages)


def test_discovers_sessions_in_a_projects_folder(tmp_path, monkeypatch):
    project = tmp_path / ".claude" / "projects" / "-home-ada-code"
    project.mkdir(parents=True)
    (project / "a.jsonl").write_text("{}\n")
    (project / "b.jsonl").write_text("{}\n")
    (project / "notes.txt").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert [p.name for p in claude_code.discover()] == ["a.jsonl", "b.jsonl"]
    assert [p.name for p in claude_code.discover(project / "a.jsonl")] == ["a.jsonl"]
    assert len(claude_code.discover(tmp_path / ".claude" / "projects")) == 2
    assert claude_code.discover(tmp_path / "missing") == []
