"""Files travel with their conversation: the ZIP export carries their bytes (each once), an
import into a fresh instance restores them byte for byte with the same hashes and the same
messages; the Markdown export links them; the JSON document lists them."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest

from webchat import create_app
from webchat.extensions import db

from . import files_corpus as corpus
from .conftest import BASE_CONFIG, wait_for_runs
from .test_api import Api, api_token
from .test_files import fetch, uploaded


@pytest.fixture
def fresh(sqlite_template, tmp_path_factory):
    """Another webchat: its own empty SQLite database and instance folder (database backend,
    so the bytes land elsewhere than where they came from)."""
    folder = tmp_path_factory.mktemp("fresh")
    shutil.copy(sqlite_template, folder / "webchat.sqlite3")
    app = create_app(
        {
            **BASE_CONFIG,
            "DATABASE_URL": f"sqlite:///{folder / 'webchat.sqlite3'}",
            "INSTANCE_PATH": str(folder),
            "FILES_BACKEND": "database",
        }
    )
    yield app
    wait_for_runs(app)
    with app.app_context():
        db.engine.dispose()


def conversation_with_files(app, api: Api) -> tuple[str, list[dict]]:
    files = [
        uploaded(api, "screenshot.png", corpus.png((300, 200))),
        uploaded(api, "report.pdf", corpus.text_pdf()),
        uploaded(api, "notes.md", "# Notes\n\nñ ünïcode\n".encode()),
    ]
    cid = api.post("/conversations", json={"title": "With files"}).get_json()["id"]
    ids = [f["id"] for f in files]
    api.post(f"/conversations/{cid}/messages", json={"content": "all three", "files": ids})
    wait_for_runs(app)
    api.post(f"/conversations/{cid}/messages", json={"content": "again", "files": ids[:1]})
    wait_for_runs(app)
    return cid, files


def test_zip_export_then_import_into_a_fresh_instance_restores_the_files(app, fresh):
    api = Api(app, api_token(app))
    cid, files = conversation_with_files(app, api)
    archive = api.get("/export", query_string={"format": "zip"}).get_data()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        members = [n for n in z.namelist() if n.startswith("files/")]
    assert sorted(members) == sorted(f"files/{f['sha256']}" for f in files)  # each once
    other = Api(fresh, api_token(fresh))
    response = other.post(
        "/import",
        data={"file": (io.BytesIO(archive), "export.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["conversations_created"] == 1 and not report["failed"], report
    messages = other.get(f"/conversations/{cid}/messages").get_json()["items"]
    users = [m for m in messages if m["role"] == "user"]
    assert [[f["name"] for f in m["files"]] for m in users] == [
        ["screenshot.png", "report.pdf", "notes.md"],
        ["screenshot.png"],
    ]
    for before, after in zip(files, users[0]["files"], strict=True):
        described = other.get(f"/files/{after['id']}").get_json()
        assert described["sha256"] == before["sha256"]
        assert described["media_type"] == before["media_type"]
        assert fetch(other, after["url"]).get_data() == fetch(api, before["url"]).get_data()
    assert fetch(other, users[0]["files"][0]["thumbnail_url"]).status_code == 200
    again = other.post(
        "/import", data={"file": (io.BytesIO(archive), "export.zip")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert again.get_json()["conversations_unchanged"] == 1


def test_a_tampered_file_in_the_zip_is_left_out_and_reported(app, fresh):
    api = Api(app, api_token(app))
    _cid, files = conversation_with_files(app, api)
    archive = api.get("/export", query_string={"format": "zip"}).get_data()
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(tampered, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name == f"files/{files[2]['sha256']}":
                data = b"<script>alert(1)</script>"
            out.writestr(name, data)
    other = Api(fresh, api_token(fresh))
    report = other.post(
        "/import", data={"file": (io.BytesIO(tampered.getvalue()), "x.zip")},
        content_type="multipart/form-data",
    ).get_json()  # fmt: skip
    assert report["conversations_created"] == 1
    assert any("SHA-256" in note for note in report["notes"]), report


def test_json_and_markdown_exports_list_and_link_the_files(app):
    api = Api(app, api_token(app))
    cid, files = conversation_with_files(app, api)
    document = api.get(f"/conversations/{cid}/export", query_string={"format": "json"}).get_json()
    assert {f["sha256"] for f in document["files"]} == {f["sha256"] for f in files}
    assert len(document["message_files"]) == 4
    markdown = api.get(
        f"/conversations/{cid}/export", query_string={"format": "markdown"}
    ).get_data(as_text=True)
    assert f"- [report.pdf](/files/{files[1]['id']}) (application/pdf)" in markdown
