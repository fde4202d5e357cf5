"""Files in messages (issue 14): upload, sniffing and re-encoding, dedupe, limits, serving
rules, ownership, the hostile corpus, garbage collection and the migration — on SQLite and
PostgreSQL, with both storage backends (the instance folder and the database)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, inspect, select

from webchat.extensions import db
from webchat.models import Blob, Conversation, File, Message, MessageFile

from . import files_corpus as corpus
from .conftest import ROOT, post, sign_up, wait_for_runs
from .test_api import Api, api_token, assert_error


@pytest.fixture(params=["folder", "database"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(make_app, backend):
    return make_app(FILES_BACKEND=backend)


@pytest.fixture
def api(app):
    return Api(app, api_token(app))


def upload(api: Api, name: str, data: bytes, content_type: str = "application/octet-stream"):
    """POST /api/v1/files with ``data`` as multipart field ``file``."""
    return api.post(
        "/files",
        data={"file": (io.BytesIO(data), name, content_type)},
        content_type="multipart/form-data",
    )


def uploaded(api: Api, name: str, data: bytes, **kw) -> dict:
    response = upload(api, name, data, **kw)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def fetch(api: Api, url: str, **kw):
    return api.client.get(url, headers={"Authorization": f"Bearer {api.token}"}, **kw)


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(File)),
            db.session.scalar(select(func.count()).select_from(Blob)),
            db.session.scalar(select(func.count()).select_from(MessageFile)),
        )


def stored_files(app) -> list:
    folder = Path(app.instance_path) / "files"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_an_image_is_re_encoded_without_metadata_and_served_inline(app, api, backend):
    original = corpus.jpeg_with_gps()
    assert b"SpyCam" in original
    body = uploaded(api, "holiday.jpg", original, content_type="text/html")
    assert body["media_type"] == "image/jpeg"  # sniffed, the client's type ignored
    assert body["name"] == "holiday.jpg" and len(body["sha256"]) == 64
    response = fetch(api, body["url"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    served = response.get_data()
    assert b"SpyCam" not in served and len(served) == body["size"]
    image = Image.open(io.BytesIO(served))
    assert image.size == (80, 60) and not image.getexif().get_ifd(corpus.GPS_IFD)
    thumbnail = fetch(api, body["thumbnail_url"])
    assert thumbnail.headers["Content-Type"] == "image/webp"
    assert Image.open(io.BytesIO(thumbnail.get_data())).format == "WEBP"
    png = uploaded(api, "chart.png", corpus.png())
    assert b"secret-metadata" not in fetch(api, png["url"]).get_data()
    assert uploaded(api, "loop.gif", corpus.gif())["media_type"] == "image/gif"
    with app.app_context():
        blob = db.session.get(Blob, body["sha256"])
        assert blob.backend == backend
    assert bool(stored_files(app)) == (backend == "folder")


def test_the_same_bytes_are_stored_once(app, api):
    data = corpus.png()
    first = uploaded(api, "a.png", data)
    again = uploaded(api, "a.png", data)
    assert again["id"] == first["id"]  # the same file, same name: the file already stored
    renamed = uploaded(api, "b.png", data)
    other = Api(app, api_token(app, "bob@example.com"))
    theirs = uploaded(other, "c.png", data)
    assert len({first["id"], renamed["id"], theirs["id"]}) == 3
    assert first["sha256"] == renamed["sha256"] == theirs["sha256"]
    files, blobs, _ = counts(app)
    assert (files, blobs) == (3, 2)  # one blob of content, one of its thumbnail


def test_size_limit_and_quota_are_413_naming_the_limit(make_app, backend):
    app = make_app(FILES_BACKEND=backend, FILES_MAX_BYTES=5000, FILES_QUOTA_BYTES=12_000)
    api = Api(app, api_token(app))
    error = assert_error(upload(api, "big.txt", b"x" * 5001), 413, "too_large")
    assert "5,000 bytes" in error["message"]
    error = assert_error(upload(api, "huge.txt", b"x" * 200_000), 413, "too_large")
    assert "5,000 bytes" in error["message"]  # refused from its Content-Length, unread
    uploaded(api, "one.txt", b"a" * 4000)
    uploaded(api, "two.txt", b"b" * 4000)
    uploaded(api, "three.txt", b"c" * 3000)
    error = assert_error(upload(api, "four.txt", b"d" * 2000), 413, "too_large")
    assert "quota is 12,000 bytes" in error["message"]
    assert counts(app)[0] == 3


def test_text_and_pdf_are_taken_by_content_and_the_rest_refused(app, api):
    code = uploaded(api, "notes.bin", "def f():\n    return 'héllo'\n".encode())
    assert code["media_type"] == "text/plain; charset=utf-8"
    document = uploaded(api, "report.txt", corpus.text_pdf())
    assert document["media_type"] == "application/pdf"
    with app.app_context():
        assert db.session.get(File, uuid.UUID(document["id"])).text.strip() == (
            "Quarterly ocelot report"
        )
    response = fetch(api, document["url"])
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.get_data() == corpus.text_pdf()  # the original kept
    for name, data in [
        ("a.exe", b"MZ\x90\x00\x03\x00\x00\x00"),
        ("e.png", b""),
        ("z.zip", b"PK\x03\x04\x00\x00"),
    ]:
        error = assert_error(upload(api, name, data), 400, "invalid_input")
        assert "can't be attached" in error["message"] or "empty" in error["message"]
    assert_error(api.post("/files", data={}), 400, "invalid_input", "file")


HOSTILE_REFUSED = {
    "bomb.png": (corpus.decompression_bomb, "too large"),
    "bomb.pdf": (corpus.pdf_bomb, "damaged or too large"),
    "cut.png": (corpus.truncated_png, "damaged or incomplete"),
}


def test_the_hostile_corpus_is_refused_or_served_only_as_a_download(app, api):
    for name, (make, problem) in HOSTILE_REFUSED.items():
        error = assert_error(upload(api, name, make()), 400, "invalid_input")
        assert problem in error["message"], (name, error)
    assert counts(app) == (0, 0, 0)  # nothing stored half-written
    for name, data in [("x.svg", corpus.SVG_WITH_SCRIPT), ("x.html", corpus.HTML_PAGE)]:
        body = uploaded(api, name, data, content_type="image/svg+xml")
        assert body["media_type"] == "text/plain; charset=utf-8" and body["thumbnail_url"] is None
        response = fetch(api, body["url"])
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
    polyglot = uploaded(api, "cat.jpg.html", corpus.polyglot_jpeg_html())
    assert polyglot["media_type"] == "image/jpeg"
    served = fetch(api, polyglot["url"]).get_data()
    assert b"<script" not in served and b"<html" not in served
    assert Image.open(io.BytesIO(served)).format == "JPEG"


def test_another_users_file_is_a_404_in_every_route(app, api):
    mine = uploaded(api, "mine.png", corpus.png())
    other = Api(app, api_token(app, "bob@example.com"))
    conversation = other.post("/conversations", json={}).get_json()["id"]
    for response in [
        fetch(other, mine["url"]),
        fetch(other, mine["thumbnail_url"]),
        other.get(f"/files/{mine['id']}"),
        other.post(
            f"/conversations/{conversation}/messages", json={"content": "hi", "files": [mine["id"]]}
        ),
    ]:
        assert response.status_code == 404, response.get_data(as_text=True)
    assert app.test_client().get(mine["url"]).status_code == 404  # nobody signed in
    assert fetch(other, f"/files/{uuid.uuid4()}").status_code == 404
    assert fetch(other, "/files/not-an-id").status_code == 404
    # the page's form too, for a signed-in browser
    browser = app.test_client()
    sign_up(browser, "eve@example.com")
    response = post(browser, "/c", {"content": "hi", "model": "demo/echo", "files": mine["id"]})
    assert response.status_code == 404 and "No such file" in response.get_data(as_text=True)
    assert counts(app)[2] == 0
    assert api.get(f"/files/{mine['id']}").status_code == 200
    assert fetch(api, mine["url"]).status_code == 200


def test_a_message_carries_its_files_and_the_page_shows_thumbnails(app, api):
    image = uploaded(api, "shot.png", corpus.png())
    notes = uploaded(api, "notes.md", b"# Plan\n")
    cid = api.post("/conversations", json={}).get_json()["id"]
    response = api.post(
        f"/conversations/{cid}/messages",
        json={"content": "look", "files": [image["id"], notes["id"]]},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    wait_for_runs(app)
    message = response.get_json()["message"]
    assert [f["name"] for f in message["files"]] == ["shot.png", "notes.md"]
    assert set(message["files"][0]) == {"id", "name", "media_type", "size", "url", "thumbnail_url"}
    listed = api.get(f"/conversations/{cid}/messages").get_json()["items"]
    assert [f["id"] for f in listed[0]["files"]] == [image["id"], notes["id"]]
    assert listed[1]["files"] == []
    size = image["size"]  # the demo model says what it was sent
    assert listed[1]["content"].startswith(
        f"I received 2 files: shot.png (image/png, {size:,} bytes), notes.md (text/plain, 7 bytes)."
    )


def test_images_to_a_model_that_cant_read_them_are_refused_before_anything_is_stored(make_app):
    app = make_app(VISION_MODELS=[])
    api = Api(app, api_token(app))
    image = uploaded(api, "shot.png", corpus.png())
    cid = api.post("/conversations", json={}).get_json()["id"]
    response = api.post(
        f"/conversations/{cid}/messages", json={"content": "x", "files": [image["id"]]}
    )
    error = assert_error(response, 400, "invalid_input", "files")
    assert "can't read images" in error["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
    assert [m["images"] for m in api.get("/models").get_json()["items"]] == [False]
    text = uploaded(api, "a.txt", b"plain")
    ok = api.post(f"/conversations/{cid}/messages", json={"content": "x", "files": [text["id"]]})
    assert ok.status_code == 202
    wait_for_runs(app)


def test_gc_and_the_trash_purge_free_files_nobody_refers_to(app, api, backend):
    kept = uploaded(api, "kept.png", corpus.png(color=(1, 1, 1)))
    gone = uploaded(api, "gone.png", corpus.png(color=(2, 2, 2)))
    fresh = uploaded(api, "fresh.txt", b"not sent yet")
    keep_cid = api.post("/conversations", json={}).get_json()["id"]
    drop_cid = api.post("/conversations", json={}).get_json()["id"]
    api.post(f"/conversations/{keep_cid}/messages", json={"content": "a", "files": [kept["id"]]})
    wait_for_runs(app)
    api.post(f"/conversations/{drop_cid}/messages", json={"content": "b", "files": [gone["id"]]})
    wait_for_runs(app)
    assert api.delete(f"/conversations/{drop_cid}").status_code in (200, 204)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["files", "gc"])
    assert result.exit_code == 0 and "deleted 1 files and 2 stored blobs" in result.output
    assert fetch(api, gone["url"]).status_code == 404
    assert fetch(api, kept["url"]).status_code == 200
    assert fetch(api, fresh["url"]).status_code == 200  # an upload not yet sent is kept a while
    if backend == "folder":
        assert len(stored_files(app)) == 3  # kept + its thumbnail + fresh
    result = runner.invoke(args=["files", "gc", "--unattached-hours", "0"])
    assert "deleted 1 files and 1 stored blobs" in result.output
    assert counts(app) == (1, 2, 1)


def test_trash_purge_collects_the_files(make_app):
    app = make_app(TRASH_RETENTION_DAYS=1)
    api = Api(app, api_token(app))
    image = uploaded(api, "x.png", corpus.png())
    cid = api.post("/conversations", json={}).get_json()["id"]
    api.post(f"/conversations/{cid}/messages", json={"content": "a", "files": [image["id"]]})
    wait_for_runs(app)
    with app.app_context():
        from datetime import timedelta

        from webchat.models import utcnow

        db.session.get(Conversation, uuid.UUID(cid)).deleted_at = utcnow() - timedelta(days=2)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["trash", "purge"])
    assert "purged 1 conversation" in result.output and "deleted 1 files" in result.output
    assert counts(app) == (0, 0, 0)


def test_migration_0015_from_0014_with_data(app, api):
    from flask_migrate import downgrade, upgrade

    folder = str(ROOT / "migrations")
    cid = api.post("/conversations", json={"title": "Kept"}).get_json()["id"]
    api.post(f"/conversations/{cid}/messages", json={"content": "ocelot"})
    wait_for_runs(app)
    with app.app_context():
        db.session.remove()
        downgrade(directory=folder, revision="0014")
        tables = set(inspect(db.engine).get_table_names())
        assert not {"files", "blobs", "message_files"} & tables
        upgrade(directory=folder)
        tables = set(inspect(db.engine).get_table_names())
        assert {"files", "blobs", "message_files"} <= tables
        db.session.remove()
    image = uploaded(api, "after.png", corpus.png())
    response = api.post(
        f"/conversations/{cid}/messages", json={"content": "more", "files": [image["id"]]}
    )
    assert response.status_code == 202
    wait_for_runs(app)
    items = api.get(f"/conversations/{cid}/messages").get_json()["items"]
    assert [m["content"] for m in items if m["role"] == "user"] == ["ocelot", "more"]
    assert items[-2]["files"][0]["id"] == image["id"]


def test_an_edit_and_a_fork_keep_the_files(app, api):
    image = uploaded(api, "shot.png", corpus.png())
    cid = api.post("/conversations", json={}).get_json()["id"]
    sent = api.post(
        f"/conversations/{cid}/messages", json={"content": "see", "files": [image["id"]]}
    ).get_json()
    wait_for_runs(app)
    edited = api.post(f"/messages/{sent['message']['id']}/edit", json={"content": "look"})
    assert edited.status_code == 202, edited.get_data(as_text=True)
    wait_for_runs(app)
    assert [f["id"] for f in edited.get_json()["message"]["files"]] == [image["id"]]
    forked = api.post(f"/messages/{sent['reply']['id']}/fork")
    assert forked.status_code == 201, forked.get_data(as_text=True)
    copy = forked.get_json()["id"]
    items = api.get(f"/conversations/{copy}/messages").get_json()["items"]
    assert [f["id"] for f in items[0]["files"]] == [image["id"]]
    assert counts(app)[2] == 3  # the original, the edit, the fork's copy: one file


def test_search_finds_the_text_of_attached_files_and_pdfs(app, api):
    notes = uploaded(api, "notes.md", b"Remember the wombat migration on Tuesday")
    report = uploaded(api, "q3.pdf", corpus.text_pdf("Quarterly ocelot report"))
    unsent = uploaded(api, "draft.txt", b"wombat draft never sent")
    cid = api.post("/conversations", json={"title": "Planning"}).get_json()["id"]
    sent = api.post(
        f"/conversations/{cid}/messages",
        json={"content": "see attached", "files": [notes["id"], report["id"]]},
    ).get_json()
    wait_for_runs(app)
    found = api.get("/search", query_string={"q": "wombat"}).get_json()
    assert [h["name"] for h in found["attachments"]] == ["notes.md"]
    hit = found["attachments"][0]
    assert hit["message_id"] == sent["message"]["id"] and hit["conversation_title"] == "Planning"
    assert "<mark>wombat</mark>" in hit["snippet"]
    assert (
        api.get("/search", query_string={"q": "ocelots"}).get_json()["attachments"][0]["name"]
        == "q3.pdf"
    )  # stemmed, in the PDF's text
    assert (
        api.get("/search", query_string={"q": "wombat", "role": "assistant"}).get_json()[
            "attachments"
        ]
        == []
    )
    other = Api(app, api_token(app, "bob@example.com"))
    assert other.get("/search", query_string={"q": "wombat"}).get_json()["attachments"] == []
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["_user_id"] = "1:0"
    page = browser.get("/search", query_string={"q": "wombat"}).get_data(as_text=True)
    assert "In attached files" in page and "notes.md" in page
    assert unsent["id"] not in page
    # purged with its conversation, the file is no hit any more
    api.delete(f"/conversations/{cid}")
    app.test_cli_runner().invoke(args=["files", "gc"])
    assert api.get("/search", query_string={"q": "wombat"}).get_json()["attachments"] == []
