"""Compression: pages, JSON and static files go out Brotli- or gzip-compressed; Server-Sent Events
never are, and their first event still arrives at once (before the reply ends), through real
gunicorn with ``Accept-Encoding: gzip, br``."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest
import requests

from .browser.conftest import Server
from .conftest import CSRF_RE, sign_up

ACCEPT = {"Accept-Encoding": "gzip, br"}


def test_pages_json_and_static_files_are_compressed(client):
    sign_up(client)
    page = client.get("/", headers={"Accept-Encoding": "br"})
    assert page.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in page.headers["Vary"]
    assert b"How can I help?" in brotli.decompress(page.data)
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert b"How can I help?" in gzip.decompress(page.data)
    listed = client.get("/api/v1/conversations", headers={"Accept-Encoding": "gzip, br"})
    assert listed.status_code == 200
    assert listed.headers.get("Content-Encoding") in (None, "br")  # JSON of 500 bytes and more
    css = client.get("/static/css/app.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers["Content-Encoding"] == "gzip"
    assert b".composer" in gzip.decompress(css.data)
    plain = client.get("/static/css/app.css")  # no Accept-Encoding: as it is
    assert "Content-Encoding" not in plain.headers and b".composer" in plain.data
    assert len(css.data) < len(plain.data) / 3


def first_event(response: requests.Response) -> str:
    """The text of the stream's first named event (up to its blank line; the opening ``retry``
    and comment lines before it are skipped), read as it arrives."""
    text = ""
    for chunk in response.iter_content(chunk_size=None):
        text += chunk.decode()
        blocks = text.split("\n\n")
        for block in blocks[:-1]:  # the last one may be incomplete
            if "\nevent: " in "\n" + block:
                return block
    raise AssertionError("the stream ended without an event")


@pytest.fixture
def slow_server(tmp_path):
    srv = Server(tmp_path, WEBCHAT_DEMO_DELAY_MS="100", WEBCHAT_TITLE_GENERATION="false").start()
    yield srv
    srv.stop()


def test_event_streams_are_never_compressed_or_held(slow_server):
    base = slow_server.url
    http = requests.Session()
    token = CSRF_RE.search(http.get(base + "/signup", timeout=10).text)
    assert token
    form = {"email": "ada@example.com", "password": "correct horse", "confirm": "correct horse"}
    http.post(base + "/signup", data={**form, "csrf_token": token.group(1)}, timeout=10)
    headers = {"X-CSRFToken": token.group(1)}
    page = http.post(base + "/c", data={"content": "/long 200"}, headers=headers, timeout=10)
    stream_path = re.search(r'sse-connect="([^"]+)"', page.text)
    assert stream_path, "the new conversation's reply has no stream"
    with http.get(base + stream_path.group(1), headers=ACCEPT, stream=True, timeout=10) as live:
        assert live.headers["Content-Type"].startswith("text/event-stream")
        assert "Content-Encoding" not in live.headers
        event = first_event(live)
        assert "event: snapshot" in event or "event: delta" in event
        # the reply (200 words, 100 ms each) is still being written: the event was not held
        # until the stream ended
        reply = http.get(base + page.url.removeprefix(base), timeout=10).text
        assert 'data-status="streaming"' in reply
    stop = re.search(r'hx-post="(/m/[^"]+/cancel)"', reply)
    assert stop
    http.post(base + stop.group(1), headers=headers, timeout=10)
