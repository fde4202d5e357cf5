"""Import and export across formats: detection, the import page, the CLI, downloads, ownership.

Helpers here are shared by tests/test_import_*.py and tests/test_export.py.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Conversation, Message, User
from webchat.porting import detect

from . import test_search
from .conftest import csrf_token, fixture_path, sign_up

CHATGPT = ("chatgpt", "chatgpt-export.json")
CHATGPT_MODERN = ("chatgpt", "chatgpt-modern-export.json")
CLAUDE = "claude-code"


def make_user(email: str = "ada@example.com") -> User:
    """A user in the database of the current app context (committed)."""
    user = test_search.make_user(email)
    db.session.commit()
    return user


def messages_of(conversation_id) -> list[Message]:
    """The conversation's messages, oldest first."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.conversation_id == uuid.UUID(str(conversation_id)))
            .order_by(Message.created_at, Message.id)
        )
    )


def by_source(messages: list[Message]) -> dict[str, Message]:
    """Source id (a Claude Code line uuid, a ChatGPT node id) → the message built from it."""
    return {key: m for m in messages for key in (m.meta or {}).get("source_ids", [])}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def jsonl(*parts: str) -> list[dict]:
    """The parseable lines of a fixture JSON Lines file."""
    out = []
    for line in fixture_path(*parts).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_detects_each_format():
    cases = {
        CHATGPT: "chatgpt",
        CHATGPT_MODERN: "chatgpt",
        (CLAUDE, "hello-world-script.jsonl"): "claude-code",
        (CLAUDE, "sidechain_integrated.jsonl"): "claude-code",
        (CLAUDE, "dag_compact_after_rewind.jsonl"): "claude-code",
    }
    for parts, kind in cases.items():
        with open(fixture_path(*parts), "rb") as f:
            assert detect(f, parts[-1]) == kind, parts
            assert f.tell() == 0
    assert detect(io.BytesIO(b"hello, world"), "notes.txt") is None
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("export/conversations.json", fixture_path(*CHATGPT).read_bytes())
    assert detect(archive, "export.zip") == "chatgpt"


def _upload(client, files: list[tuple[Path | bytes, str]], **form):
    data = {"csrf_token": csrf_token(client, "/import"), **form}
    data["file"] = [
        (io.BytesIO(p if isinstance(p, bytes) else p.read_bytes()), name) for p, name in files
    ]
    return client.post("/import", data=data, content_type="multipart/form-data")


def test_import_page_detects_and_reports(app, client):
    sign_up(client)
    assert "Import and export" in client.get("/import").get_data(as_text=True)
    response = _upload(
        client,
        [
            (fixture_path(*CHATGPT_MODERN), "conversations.json"),
            (fixture_path(CLAUDE, "corrupt-last-line.jsonl"), "de3b8b19.jsonl"),
        ],
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "2 new, 0 grown, 0 unchanged" in page  # ChatGPT: two readable conversations
    assert "“Corrupted entry”: no mapping of messages" in page
    assert "1 × corrupt line (not JSON)" in page
    assert "1 new, 0 grown, 0 unchanged" in page  # the Claude Code session
    with app.app_context():
        assert count(Conversation) == 3
    # the grown session, uploaded later, adds only its new line
    page = _upload(client, [(fixture_path(CLAUDE, "hello-world-script.jsonl"), "s.jsonl")])
    assert "0 new, 1 grown, 0 unchanged" in page.get_data(as_text=True)
    assert "1 (7 already imported)" in page.get_data(as_text=True)
    # a file of no known format
    bad = _upload(client, [(b"just some text", "notes.txt")])
    assert bad.status_code == 400 and "not a webchat export" in bad.get_data(as_text=True)
    forced = _upload(client, [(b"[1, 2]", "x.json")], format="chatgpt")
    assert forced.status_code == 200 and "#1: not an object" in forced.get_data(as_text=True)
    broken = _upload(client, [(b"{not json", "x.json")], format="chatgpt")
    assert broken.status_code == 400 and "could not be read as chatgpt" in broken.get_data(
        as_text=True
    )
    assert _upload(client, []).status_code == 400


def test_import_page_takes_large_files_only_up_to_its_limit(make_app):
    app = make_app(IMPORT_MAX_BYTES=2_000, MAX_CONTENT_LENGTH=1_000)
    client = app.test_client()
    sign_up(client)
    small = fixture_path(CLAUDE, "dag_compact_after_rewind.jsonl").read_bytes()[:1500]
    assert _upload(client, [(small, "s.jsonl")]).status_code == 200  # over the app-wide limit
    big = fixture_path(CLAUDE, "hello-world-script.jsonl")
    assert _upload(client, [(big, "s.jsonl")]).status_code == 413


def test_cli_imports_each_format(app, runner, tmp_path):
    with app.app_context():
        make_user()
    result = runner.invoke(
        args=["import", "chatgpt", str(fixture_path(*CHATGPT)), "--user", "ADA@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "2 conversation(s) created" in result.output and "19 message(s) added" in result.output
    folder = tmp_path / "projects" / "-tmp-proj"
    folder.mkdir(parents=True)
    for name in ("coverage-test-fix.jsonl", "dag_compact_after_rewind.jsonl"):
        (folder / name).write_bytes(fixture_path(CLAUDE, name).read_bytes())
    result = runner.invoke(
        args=["import", "claude-code", str(tmp_path / "projects"), "--user", "ada@example.com"]
    )
    assert result.exit_code == 0, result.output
    assert "Importing 2 session(s)" in result.output
    assert "2 files read; 2 conversation(s) created" in result.output
    again = runner.invoke(args=["import", "claude-code", str(folder), "--user", "ada@example.com"])
    assert "0 message(s) added" in again.output and "2 unchanged" in again.output
    assert (
        runner.invoke(
            args=["import", "chatgpt", str(fixture_path(*CHATGPT)), "--user", "x@y.z"]
        ).exit_code
        == 1
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = runner.invoke(args=["import", "claude-code", str(empty), "--user", "ada@example.com"])
    assert nothing.exit_code == 1 and "no Claude Code sessions" in nothing.output
    not_json = tmp_path / "c.json"
    not_json.write_text("{")
    broken = runner.invoke(args=["import", "chatgpt", str(not_json), "--user", "ada@example.com"])
    assert broken.exit_code == 1 and "not JSON" in broken.output
