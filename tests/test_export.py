"""Export as JSON and Markdown, the streamed bulk download, and the exact JSON round trip."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile

from sqlalchemy import delete, select

from webchat.extensions import db
from webchat.models import Conversation, Message, User
from webchat.porting import chatgpt, claude_code, export, native
from webchat.porting.report import ImportReport
from webchat.search import search

from .conftest import fixture_path, sign_up, wait_for_runs
from .test_conversations import start_conversation
from .test_porting import CHATGPT, CLAUDE, count, make_user


def without_time(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "exported_at"}


def fixtures_for(user: User) -> list[Conversation]:
    """Every real fixture imported for ``user``: ChatGPT browsing, code Q&A, Claude Code tools,
    rewinds, compaction, sidechains."""
    chatgpt.import_bytes(user, fixture_path(*CHATGPT).read_bytes())
    report = ImportReport(format="claude-code")
    for name in (
        "coverage-test-fix.jsonl",
        "dag_compact_after_rewind.jsonl",
        "sidechain_integrated.jsonl",
    ):
        claude_code.import_path(user, fixture_path(CLAUDE, name), report, {})
    query = select(Conversation).where(Conversation.user_id == user.id)
    return list(db.session.scalars(query.order_by(Conversation.created_at)))


def test_json_round_trip_is_exact(ctx):
    ada = make_user()
    documents = [export.to_json(c) for c in fixtures_for(ada)]
    assert len(documents) == 5
    for doc in documents:
        assert doc["format"] == "webchat.conversation" and doc["version"] == 1
        assert set(doc["messages"][0]) == {name for _, name in export.fields(Message)}
    total = count(Message)
    db.session.execute(delete(Conversation))  # purged: the ids are free again
    db.session.commit()
    for doc in documents:
        report = native.import_bytes(ada, json.dumps(doc).encode())
        assert (report.conversations_created, report.failed) == (1, [])
    assert count(Message) == total
    for doc in documents:
        again = export.to_json(db.session.get(Conversation, uuid.UUID(doc["conversation"]["id"])))
        assert without_time(again) == without_time(doc)
    # importing it once more into the same account changes nothing
    report = native.import_bytes(ada, json.dumps(documents[0]).encode())
    assert report.conversations_unchanged == 1 and count(Message) == total


def test_round_trip_of_a_conversation_made_here(app, user_client):
    cid = start_conversation(user_client, "Tell me about `code` and **bold**")
    wait_for_runs(app)
    body = user_client.get(f"/c/{cid}/export?format=json")
    assert body.status_code == 200 and body.mimetype == "application/json"
    assert "attachment" in body.headers["Content-Disposition"]
    doc = body.get_json()
    with app.app_context():
        assert len(doc["messages"]) == 2 and len(doc["runs"]) == 1
        assert doc["runs"][0]["message_id"] == doc["messages"][1]["id"]
        db.session.execute(delete(Conversation))
        db.session.commit()
        ada = db.session.scalars(select(User)).one()
        native.import_bytes(ada, json.dumps(doc).encode())
        assert without_time(
            export.to_json(db.session.get(Conversation, uuid.UUID(cid)))
        ) == without_time(doc)
    assert user_client.get(f"/c/{cid}").status_code == 200


def test_import_into_another_account_takes_new_ids(ctx):
    ada, bob = make_user(), make_user("bob@example.com")
    [*_, conversation] = fixtures_for(ada)
    doc = export.to_json(conversation)
    report = native.import_bytes(bob, json.dumps(doc).encode())
    assert report.notes == {"ids taken on this server (imported with new ids)": 1}
    copy = db.session.scalars(select(Conversation).where(Conversation.user_id == bob.id)).one()
    assert copy.id != conversation.id
    mine = export.to_json(copy)
    ids = {}

    def same(a, b):  # a and b equal once each original id is mapped to its copy's
        for key in ("id", "parent_id", "run_id", "message_id", "user_message_id"):
            if a.get(key) is not None:
                assert ids.setdefault(a[key], b[key]) == b[key]
                a, b = {**a, key: None}, {**b, key: None}
            else:
                assert b.get(key) is None
        assert a == b

    for a, b in zip(doc["runs"], mine["runs"], strict=True):
        same(a, b)
    for a, b in zip(doc["messages"], mine["messages"], strict=True):
        same(a, b)
    assert set(ids) & set(ids.values()) == set()  # every id is new
    assert search(bob, "Task").items  # and searchable in the new account


def test_imported_html_is_rendered_here_never_taken_from_the_file(ctx):
    ada = make_user()
    [conversation, *_] = fixtures_for(ada)
    doc = export.to_json(conversation)
    db.session.execute(delete(Conversation))
    db.session.commit()
    doc["messages"][0]["content_html"] = "<script>alert(1)</script>"
    native.import_bytes(ada, json.dumps(doc).encode())
    message = db.session.get(Message, uuid.UUID(doc["messages"][0]["id"]))
    assert "<script" not in message.content_html and message.content_html.startswith("<p>")


def test_malformed_documents_are_reported_not_fatal(ctx):
    ada = make_user()
    [conversation, *_] = fixtures_for(ada)
    good = export.to_json(conversation)
    db.session.execute(delete(Conversation))
    db.session.commit()
    bad_time = json.loads(json.dumps(good))
    bad_time["conversation"]["id"] = str(uuid.uuid4())
    bad_time["messages"][0]["created_at"] = "yesterday"
    lines = [
        json.dumps({"format": "something else"}),
        "{not json",
        json.dumps({**good, "version": 99}),
        json.dumps(bad_time),
        json.dumps(good),
    ]
    report = native.import_bytes(ada, "\n".join(lines).encode())
    assert report.conversations_created == 1
    reasons = [reason for _, reason in report.failed]
    assert reasons[0] == "not a webchat conversation document"
    assert reasons[1].startswith("not JSON") and reasons[2] == "version 99 is not supported"
    assert reasons[3].startswith("malformed: created_at: 'yesterday'")


def test_markdown_reads_as_a_transcript(ctx):
    ada = make_user()
    conversations = {c.title: c for c in fixtures_for(ada)}
    coverage = next(c for t, c in conversations.items() if t.startswith("Add a function"))
    text = "".join(export.markdown_chunks(coverage))
    assert text.startswith(f"# {coverage.title}\n")
    assert text.count("\n## You · ") == 3
    assert "\n## Assistant · claude-opus-4-5-20251101 · " in text
    assert "**Called `Edit`**\n\n```json\n{" in text
    assert "**Error from `" in text  # the failed tool result
    calls = db.session.scalars(
        select(Message).where(
            Message.conversation_id == coverage.id, Message.tool_call.is_not(None)
        )
    ).all()
    assert len(re.findall(r"\n`{3,}json\n", text)) == len(calls) == 13  # a block per tool call
    # a fence is longer than any run of backticks inside it
    assert export._fence("a ```` b") == "`````\na ```` b\n`````\n"


def test_bulk_zip_streams_every_conversation(ctx, monkeypatch):
    ada = make_user()
    conversations = fixtures_for(ada)
    conversations[0].deleted_at = conversations[0].updated_at  # Trash is not exported
    db.session.commit()
    monkeypatch.setattr(export, "BATCH", 7)  # several keyset batches per conversation
    monkeypatch.setattr(export, "ZIP_FLUSH_BYTES", 512)
    stream = export.zip_chunks(ada)
    first = next(stream)  # sent before the rest is even read
    assert first.startswith(b"PK\x03\x04")
    chunks = [first, *stream]
    assert len(chunks) >= 5  # at least one piece per conversation, then the directory
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        names = archive.namelist()
        docs = [json.loads(archive.read(n)) for n in names]
    assert len(names) == 4 and all(n.endswith(".json") for n in names)
    assert str(conversations[0].id) not in " ".join(names)
    exported = {d["conversation"]["id"]: d for d in docs}
    for c in conversations[1:]:
        assert without_time(exported[str(c.id)]) == without_time(export.to_json(c))
    ndjson = b"".join(export.ndjson_chunks(ada)).decode().splitlines()
    assert [json.loads(line)["conversation"]["id"] for line in ndjson] == [
        str(c.id) for c in conversations[1:]
    ]
    # the ZIP imports into a fresh account
    bob = make_user("bob@example.com")
    report = native.import_bytes(bob, b"".join(chunks))
    assert report.conversations_created == 4 and report.failed == []


def test_download_routes_and_ownership(app, client):
    sign_up(client)
    cid = start_conversation(client, "export me")
    wait_for_runs(app)
    markdown = client.get(f"/c/{cid}/export?format=markdown")
    assert markdown.status_code == 200 and markdown.mimetype == "text/markdown"
    assert markdown.get_data(as_text=True).startswith("# export me\n")
    assert client.get(f"/c/{cid}/export?format=pdf").status_code == 400
    archive = client.get("/export?format=zip")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(archive.data)).namelist()) == 1
    assert client.get("/export?format=ndjson").mimetype == "application/x-ndjson"
    page = client.get(f"/c/{cid}").get_data(as_text=True)
    assert f"/c/{cid}/export?format=markdown" in page and f"/c/{cid}/export?format=json" in page
    other = app.test_client()
    sign_up(other, "bob@example.com")
    assert other.get(f"/c/{cid}/export?format=json").status_code == 404
    assert zipfile.ZipFile(io.BytesIO(other.get("/export").data)).namelist() == []


def test_search_finds_imported_tool_results(ctx):
    ada = make_user()
    path = fixture_path(CLAUDE, "coverage-test-fix.jsonl")
    claude_code.import_path(ada, path, ImportReport(format="claude-code"), {})
    hits = search(ada, "test_multiply_numbers", limit=50).items
    assert any(h.role == "tool" for h in hits) and any(h.role == "assistant" for h in hits)
