"""Search, export and import under /api/v1: same results as the pages, the API's auth and errors,
and the routes in the OpenAPI document."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from .conftest import fixture_path
from .test_api import Api, api_token, assert_error
from .test_porting import CHATGPT, CLAUDE


@pytest.fixture
def ada(app) -> Api:
    """An API client with Ada's token."""
    return Api(app, api_token(app))


def upload(ada: Api, data: bytes, name: str, **form):
    return ada.post(
        "/import",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def test_import_search_export_round_trip(app, ada):
    report = upload(ada, fixture_path(*CHATGPT).read_bytes(), "conversations.json")
    assert report.status_code == 200, report.get_json()
    body = report.get_json()
    assert body["format"] == "chatgpt" and body["conversations_created"] == 2
    assert body["messages"] == 19 and body["skipped"] == {"hidden node": 2}
    session = fixture_path(CLAUDE, "coverage-test-fix.jsonl").read_bytes()
    grown = upload(ada, session, "c.jsonl", format="claude-code").get_json()
    assert grown["conversations_created"] == 1 and grown["messages"] == 32

    found = ada.get("/search", query_string={"q": "volkswagen", "role": "tool", "limit": 2})
    assert found.status_code == 200
    page = found.get_json()
    assert len(page["items"]) == 2 and page["next_cursor"] == "2"
    hit = page["items"][0]
    assert set(hit) >= {"conversation_id", "message_id", "role", "snippet", "created_at"}
    assert hit["role"] == "tool" and "<mark>" in hit["snippet"]
    rest = ada.get("/search", query_string={"q": "volkswagen", "role": "tool", "cursor": "2"})
    assert {h["message_id"] for h in rest.get_json()["items"]}.isdisjoint(
        {h["message_id"] for h in page["items"]}
    )
    title = ada.get("/search", query_string={"q": "Web Search"}).get_json()["items"][0]
    assert title["message_id"] is None and title["role"] is None

    cid = hit["conversation_id"]
    exported = ada.get(f"/conversations/{cid}/export")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    doc = json.loads(exported.data)
    assert doc["conversation"]["id"] == cid and len(doc["messages"]) == 15
    markdown = ada.get(f"/conversations/{cid}/export", query_string={"format": "markdown"})
    assert markdown.mimetype == "text/markdown" and markdown.data.startswith(b"# Conversation 1")
    everything = ada.get("/export").data.decode().splitlines()
    assert len(everything) == 3
    archive = ada.get("/export", query_string={"format": "zip"})
    assert len(zipfile.ZipFile(io.BytesIO(archive.data)).namelist()) == 3

    # the export imports into another account, exactly as many messages
    other = Api(app, api_token(app, "bob@example.com"))
    moved = upload(other, exported.data, "conversation.json").get_json()
    assert moved["conversations_created"] == 1 and moved["messages"] == 15
    assert moved["notes"] == {"ids taken on this server (imported with new ids)": 1}


def test_errors_and_ownership(app, ada):
    assert_error(ada.get("/search"), 400, "invalid_input", "q")
    assert_error(
        ada.get("/search", query_string={"q": "x", "role": "wizard"}), 400, "invalid_input", "role"
    )
    assert_error(
        ada.get("/search", query_string={"q": "x", "cursor": "abc"}), 400, "invalid_input", "cursor"
    )
    assert_error(ada.get("/export", query_string={"format": "pdf"}), 400, "invalid_input", "format")
    unknown = upload(ada, b"plain text", "notes.txt").get_json()  # a readable request: a report
    assert unknown["messages"] == 0 and unknown["failed"][0]["conversation"] == "notes.txt"
    assert "not a webchat export" in unknown["failed"][0]["reason"]
    assert_error(upload(ada, b"{}", "x.json", format="excel"), 400, "invalid_input", "format")
    assert_error(ada.post("/import", data={}), 400, "invalid_input", "file")
    upload(ada, fixture_path(CLAUDE, "hello-world-script.jsonl").read_bytes(), "s.jsonl")
    hit = ada.get("/search", query_string={"q": "hello"}).get_json()["items"][0]
    cid = hit["conversation_id"]
    assert_error(
        ada.get(f"/conversations/{cid}/export", query_string={"format": "pdf"}),
        400,
        "invalid_input",
        "format",
    )
    other = Api(app, api_token(app, "bob@example.com"))
    assert_error(other.get(f"/conversations/{cid}/export"), 404, "not_found")
    assert other.get("/search", query_string={"q": "hello"}).get_json()["items"] == []
    assert other.get("/export").data == b""
    anonymous = app.test_client()
    assert anonymous.get("/api/v1/search?q=hello").status_code == 401
    assert anonymous.post("/api/v1/import").status_code == 401


def test_routes_are_in_the_openapi_document(app, ada):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    search = paths["/api/v1/search"]["get"]
    assert {p["name"] for p in search["parameters"]} >= {"q", "role", "model", "since", "until"}
    assert "SearchResults" in json.dumps(search["responses"]["200"])
    assert "format" in {
        p["name"]
        for p in paths["/api/v1/conversations/{conversation_id}/export"]["get"]["parameters"]
    }
    upload_body = paths["/api/v1/import"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    assert (
        document["components"]["schemas"]["ImportForm"]["properties"]["file"]["format"] == "binary"
    )
