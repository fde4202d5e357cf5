"""What a provider receives of a message's files, recorded by the loopback upstream that
replays real recorded streams (:mod:`tests.fakes.upstream`): OpenAI-compatible image parts as
data URLs, PDFs as file parts (or their text), text files inlined as fenced blocks; Anthropic
image and document blocks. The files go in through the page, as a person sends them."""

from __future__ import annotations

import base64
import io

import pytest

from . import files_corpus as corpus
from . import test_providers
from .conftest import csrf_token, fixture_path, post, sign_up, wait_for_runs
from .fakes.upstream import cassette_replies, chunk_file_reply
from .test_conversations import messages_of
from .test_providers import ANTHROPIC_TOOLS, TEXT_CHUNKS, upstream_config

upstream = test_providers.upstream  # the loopback upstream fixture, as the providers' tests have it


@pytest.fixture
def app(make_app, upstream):
    return make_app(**upstream_config(upstream, TOOLS_ENABLED=False))


def page_upload(client, name: str, data: bytes) -> dict:
    """Upload as the composer does: POST /api/v1/files with the session and its CSRF token."""
    response = client.post(
        "/api/v1/files",
        data={"file": (io.BytesIO(data), name)},
        headers={"X-CSRFToken": csrf_token(client, "/")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def send_files(app, client, model: str, files: list[dict], content: str = "What is this?"):
    """Start a conversation on ``model`` with ``files`` from the new-chat form; wait for the
    reply; returns the conversation id."""
    response = post(
        client, "/c", {"content": content, "model": model, "files": [f["id"] for f in files]}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    wait_for_runs(app)
    return response.headers["Location"].rsplit("/", 1)[1]


def test_openai_receives_image_parts_inlined_text_and_pdf_text(app, user_client, upstream):
    upstream.queue(chunk_file_reply(fixture_path(*TEXT_CHUNKS)))
    shot = page_upload(user_client, "screenshot.png", corpus.png())
    code = page_upload(user_client, "main.py", b"print('```fenced```')\n")
    report = page_upload(user_client, "report.pdf", corpus.text_pdf())
    cid = send_files(app, user_client, "openai/gpt-4o-mini", [shot, code, report])
    assert messages_of(app, cid)[1].status == "complete"
    [request] = upstream.posts()
    [message] = request["json"]["messages"]
    text, image = message["content"]
    assert text["type"] == "text"
    assert text["text"].startswith("What is this?\n\nmain.py:\n````\nprint('```fenced```')\n")
    assert "report.pdf:\n```\nQuarterly ocelot report" in text["text"]  # a server without PDFs
    assert image["type"] == "image_url"
    prefix = "data:image/png;base64,"
    assert image["image_url"]["url"].startswith(prefix)
    sent = base64.b64decode(image["image_url"]["url"][len(prefix) :])
    assert sent == user_client.get(shot["url"]).get_data()  # the stored, re-encoded bytes


def test_openai_sends_pdfs_as_file_parts_where_supported(make_app, upstream):
    app = make_app(**upstream_config(upstream, TOOLS_ENABLED=False, OPENAI_PDF_PARTS=True))
    client = app.test_client()
    sign_up(client)
    upstream.queue(chunk_file_reply(fixture_path(*TEXT_CHUNKS)))
    report = page_upload(client, "report.pdf", corpus.text_pdf())
    send_files(app, client, "openai/gpt-4o-mini", [report], content="Sum it up")
    [message] = upstream.posts()[0]["json"]["messages"]
    assert message["content"][0] == {"type": "text", "text": "Sum it up"}
    part = message["content"][1]
    assert part["type"] == "file" and part["file"]["filename"] == "report.pdf"
    data = part["file"]["file_data"].removeprefix("data:application/pdf;base64,")
    assert base64.b64decode(data) == corpus.text_pdf()


def test_anthropic_receives_image_and_document_blocks(app, user_client, upstream):
    upstream.queue(cassette_replies(fixture_path(*ANTHROPIC_TOOLS))[1])
    shot = page_upload(user_client, "photo.jpg", corpus.jpeg_with_gps())
    report = page_upload(user_client, "report.pdf", corpus.text_pdf())
    notes = page_upload(user_client, "notes.txt", b"buy milk")
    cid = send_files(app, user_client, "anthropic/claude-haiku-4-5", [shot, report, notes])
    assert messages_of(app, cid)[1].status == "complete"
    [request] = upstream.posts()
    [message] = request["json"]["messages"]
    image, document, text = message["content"]
    assert image["type"] == "image" and image["source"]["media_type"] == "image/jpeg"
    assert base64.b64decode(image["source"]["data"]) == user_client.get(shot["url"]).get_data()
    assert document["type"] == "document" and document["title"] == "report.pdf"
    assert document["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(document["source"]["data"]) == corpus.text_pdf()
    assert text == {"type": "text", "text": "What is this?\n\nnotes.txt:\n```\nbuy milk\n```"}


def test_a_later_turn_still_carries_the_earlier_files(app, user_client, upstream):
    replies = [chunk_file_reply(fixture_path(*TEXT_CHUNKS)) for _ in range(2)]
    upstream.queue(*replies)
    notes = page_upload(user_client, "notes.txt", b"buy milk")
    cid = send_files(app, user_client, "openai/gpt-4o-mini", [notes])
    post(user_client, f"/c/{cid}/messages", {"content": "And then?"})
    wait_for_runs(app)
    first, _reply, second = upstream.posts()[1]["json"]["messages"]
    assert first["content"][0]["text"].endswith("notes.txt:\n```\nbuy milk\n```")
    assert second == {"role": "user", "content": "And then?"}


def test_a_model_without_vision_gets_a_clear_error_and_nothing_is_sent(make_app, upstream):
    config = upstream_config(upstream, TOOLS_ENABLED=False, VISION_MODELS=["anthropic/*"])
    app = make_app(**config)
    client = app.test_client()
    sign_up(client)
    shot = page_upload(client, "screenshot.png", corpus.png())
    response = post(
        client, "/c", {"content": "see", "model": "openai/gpt-4o-mini", "files": shot["id"]}
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "can&#39;t read images" in page
    assert f'name="files" value="{shot["id"]}"' in page  # the composer keeps the file attached
    assert upstream.posts() == []


def test_claude_code_finds_the_files_in_its_working_folder(make_app, tmp_path, monkeypatch):
    from .test_providers_claude_code import FAKE_CLAUDE, calls, use_transcript

    log = tmp_path / "claude-calls.jsonl"
    monkeypatch.setenv("FAKE_CLAUDE_LOG", str(log))
    use_transcript(monkeypatch, "hello-world-script.jsonl")
    work = tmp_path / "work"
    app = make_app(CLAUDE_CODE_COMMAND=str(FAKE_CLAUDE), CLAUDE_CODE_CWD=str(work))
    client = app.test_client()
    sign_up(client)
    notes = page_upload(client, "notes.txt", b"buy milk")
    shot = page_upload(client, "shot.png", corpus.png())
    send_files(app, client, "claude-code/default", [notes, shot], content="Read these")
    [call] = calls(log)
    written = sorted((work / "webchat-files").iterdir(), key=lambda p: p.name.split("-", 1)[1])
    assert [p.name.split("-", 1)[1] for p in written] == ["notes.txt", "shot.png"]
    assert written[0].read_bytes() == b"buy milk"
    assert written[1].read_bytes() == client.get(shot["url"]).get_data()
    assert call["stdin"].startswith("Read these\n\nAttached files, in the working folder:\n")
    for path in written:
        assert f"webchat-files/{path.name}" in call["stdin"]
