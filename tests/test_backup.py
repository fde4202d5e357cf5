"""``flask backup create`` while replies stream, ``flask backup restore`` into a fresh database
(every completed message there byte for byte, and checked against the manifest), refusals, and
``flask maintenance``; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from webchat import create_app
from webchat.extensions import db
from webchat.models import Message, Status

from .conftest import BASE_CONFIG, post, sign_in, sign_up, wait_for_runs


@pytest.fixture
def fresh_database(database, tmp_path):
    """The URL of a new, empty database of the same kind (no tables at all)."""
    from bench.stream_server import fresh_database as fresh

    folder = tmp_path / "fresh"
    folder.mkdir()
    with fresh("sqlite" if database.startswith("sqlite") else "postgres", folder, False) as url:
        yield url


def messages(app) -> dict[str, tuple[str, str]]:
    """``{id: (status, content)}`` of every message."""
    with app.app_context():
        rows = db.session.execute(select(Message.id, Message.status, Message.content)).all()
        db.session.rollback()
        return {str(i): (s, c) for i, s, c in rows}


def app_on(url: str, folder) -> object:
    return create_app({**BASE_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": str(folder)})


def test_backup_while_replies_stream_restores_every_completed_message(
    make_app, fresh_database, tmp_path
):
    app = make_app(DEMO_DELAY_MS=5)
    client = app.test_client()
    sign_up(client)
    for i in range(3):
        post(client, "/c", {"content": f"finished ünïcødé {i} 🙂"})
    wait_for_runs(app)
    for _ in range(3):
        post(client, "/c", {"content": "/long 500"})
    deadline = time.monotonic() + 10
    while not any(s == Status.STREAMING and c for s, c in messages(app).values()):
        assert time.monotonic() < deadline, "no reply started streaming"
        time.sleep(0.05)
    complete_before = {k: v for k, v in messages(app).items() if v[0] == Status.COMPLETE}

    path = tmp_path / "backups" / "webchat.bak"
    created = app.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert created.exit_code == 0, created.output
    manifest = json.loads((tmp_path / "backups" / "webchat.bak.manifest.json").read_text())
    assert manifest["messages"] >= len(complete_before)
    wait_for_runs(app)
    final = messages(app)

    restored_app = app_on(fresh_database, tmp_path / "restored")
    try:
        restored = restored_app.test_cli_runner().invoke(args=["backup", "restore", str(path)])
        assert restored.exit_code == 0, restored.output
        assert "restored and checked" in restored.output
        got = messages(restored_app)
        for message_id, (status, content) in complete_before.items():
            assert got[message_id] == (status, content)  # byte for byte
        caught_streaming = 0
        for message_id, (status, content) in got.items():
            assert final[message_id][1].startswith(content)  # one snapshot: a prefix at most
            caught_streaming += status in Status.ACTIVE
        assert caught_streaming >= 1, "the backup was not taken while a reply streamed"
        # the restored instance serves the same account and conversations
        other = restored_app.test_client()
        signed = sign_in(other)
        assert signed.status_code == 302
        page = other.get("/").get_data(as_text=True)
        assert page.count("finished ünïcødé") >= 3 or "/long 500" in page

        again = restored_app.test_cli_runner().invoke(args=["backup", "restore", str(path)])
        assert again.exit_code != 0 and "not empty" in again.output
    finally:
        with restored_app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_restore_that_differs_from_its_manifest_fails(make_app, tmp_path):
    app = make_app()
    client = app.test_client()
    sign_up(client)
    post(client, "/c", {"content": "hello"})
    wait_for_runs(app)
    path = tmp_path / "b.sqlite3"
    assert app.test_cli_runner().invoke(args=["backup", "create", str(path)]).exit_code == 0
    manifest_file = tmp_path / "b.sqlite3.manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["messages_sha256"] = "0" * 64
    manifest["tables"]["users"] += 1
    manifest_file.write_text(json.dumps(manifest))
    target = app_on(f"sqlite:///{tmp_path}/t.sqlite3", tmp_path / "t")
    result = target.test_cli_runner().invoke(args=["backup", "restore", str(path)])
    assert result.exit_code == 1
    assert "users: 1 rows, expected 2" in result.output and "checksum differs" in result.output
    exists = app.test_cli_runner().invoke(args=["backup", "create", str(path)])
    assert exists.exit_code != 0 and "exists already" in exists.output
    with target.app_context():
        db.engine.dispose()


def test_maintenance_vacuums_and_prints_sizes(app, client, runner):
    sign_up(client)
    post(client, "/c", {"content": "size me"})
    wait_for_runs(app)
    result = runner.invoke(args=["maintenance"])
    assert result.exit_code == 0, result.output
    assert "vacuumed and analyzed" in result.output
    assert "messages\t" in result.output or "(all tables)" in result.output
    assert "ada@example.com\t1\t2\t" in result.output
