"""The conversation pages: sending, streaming, ownership, bad input."""

from __future__ import annotations

import html
import re
import uuid

from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Conversation, Message, Run
from webchat.providers import register
from webchat.providers.base import Finish, ProviderError, TextDelta
from webchat.providers.demo import DemoProvider

from .conftest import parse_sse, post, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider


def start_conversation(client, content="Hello there, model"):
    """Create a conversation with one message through the new-chat form; returns its id."""
    response = post(client, "/c", {"content": content})
    assert response.status_code == 303
    return response.headers["Location"].rsplit("/", 1)[1]


def messages_of(app, conversation_id):
    with app.app_context():
        return db.session.scalars(
            select(Message)
            .where(Message.conversation_id == uuid.UUID(str(conversation_id)))
            .order_by(Message.created_at, Message.id)
        ).all()


def stream_text(events):
    """The text an htmx client ends up with: the snapshot, then the deltas."""
    text = ""
    for e in events:
        if e["event"] == "snapshot":
            body = re.sub(r"<[^>]+>", "", e["data"])
            text = html.unescape(body).strip()
        elif e["event"] == "delta":
            text += html.unescape(e["data"])
    return text


def test_new_chat_stores_message_and_reply(app, user_client):
    cid = start_conversation(user_client, "Hello there, model")
    wait_for_runs(app)
    user, reply = messages_of(app, cid)
    assert (user.role, user.content, user.status) == ("user", "Hello there, model", "complete")
    assert reply.role == "assistant" and reply.status == "complete"
    assert reply.parent_id == user.id
    assert reply.content == DemoProvider().reply_text("Hello there, model")
    assert reply.meta["model"] == "demo/echo" and reply.meta["finish_reason"] == "stop"
    assert reply.content_html and "<p>" in reply.content_html
    with app.app_context():
        conversation = db.session.get(Conversation, reply.conversation_id)
        assert conversation.title == "Hello there, model"


def test_page_shows_history(app, user_client):
    cid = start_conversation(user_client, "Tell me *something*")
    wait_for_runs(app)
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert "Tell me *something*" in page
    assert "offline demo model" in page
    assert "sse-connect" not in page  # finished replies do not stream


def test_stream_delivers_the_stored_text(app, user_client):
    cid = start_conversation(user_client, "stream me")
    _, reply = messages_of(app, cid)
    body = user_client.get(f"/m/{reply.id}/stream").get_data(as_text=True)
    events = parse_sse(body)
    assert events[0]["event"] == "snapshot"
    assert events[-1]["event"] == "done"
    assert f"m-{reply.id}" in events[-1]["data"]
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    assert stream_text(events) == reply.content
    ids = [e["id"] for e in events if e["event"] == "delta"]
    assert all(i.startswith(str(reply.id) + ":") for i in ids)


def test_json_resume_from_last_event_id_has_no_duplicates(app, user_client):
    cid = start_conversation(user_client, "/long 400")
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    # A client that saw the first 100 characters reconnects with that cursor.
    body = user_client.get(
        f"/m/{reply.id}/stream", headers={"Last-Event-ID": f"{reply.id}:100"}
    ).get_data(as_text=True)
    events = parse_sse(body)
    snapshot = [e for e in events if e["event"] == "snapshot"]
    assert len(snapshot) == 1  # htmx flavour always starts exact
    assert stream_text(events) == reply.content


def test_send_htmx_returns_both_bubbles(app, user_client):
    cid = start_conversation(user_client)
    wait_for_runs(app)
    response = post(user_client, f"/c/{cid}/messages", {"content": "second"}, htmx=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "second" in page and 'sse-connect="/m/' in page
    wait_for_runs(app)
    assert [m.role for m in messages_of(app, cid)] == ["user", "assistant"] * 2


def test_empty_and_oversized_messages_are_refused(app, user_client):
    cid = start_conversation(user_client)
    wait_for_runs(app)
    empty = post(user_client, f"/c/{cid}/messages", {"content": "   "}, htmx=True)
    assert empty.status_code == 400 and "empty" in empty.get_data(as_text=True)
    assert empty.headers["HX-Retarget"] == "#composer"
    big = post(user_client, f"/c/{cid}/messages", {"content": "x" * 100_001})
    assert big.status_code == 413 and "limit is 100,000" in big.get_data(as_text=True)
    assert len(messages_of(app, cid)) == 2  # nothing was half-written


def test_other_users_conversation_is_404(app, client):
    sign_up(client, "a@example.com")
    cid = start_conversation(client)
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    other = app.test_client()
    sign_up(other, "b@example.com")
    assert other.get(f"/c/{cid}").status_code == 404
    assert other.get(f"/m/{reply.id}/stream").status_code == 404
    assert post(other, f"/c/{cid}/messages", {"content": "hi"}).status_code == 404
    assert post(other, f"/m/{reply.id}/retry").status_code == 404
    assert other.get("/c/not-a-uuid").status_code == 404
    # the message tree's actions (tests/test_tree_pages.py sweeps them with htmx too)
    assert other.get(f"/m/{reply.id}/edit").status_code == 404
    for action in ("edit", "regenerate", "switch", "fork", "feedback"):
        assert post(other, f"/m/{reply.id}/{action}", {"content": "x"}).status_code == 404


def test_csrf_is_required(app, user_client):
    response = user_client.post("/c", data={"content": "no token"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Conversation)).first() is None


def test_failed_reply_keeps_partial_text_and_retry_works(app, user_client):
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(TextDelta("Half a "), TextDelta("reply"), ProviderError("upstream broke"))
    fake.queue(TextDelta("A whole reply."), Finish("stop"))
    response = post(user_client, "/c", {"content": "try me", "model": "fake/model"})
    cid = response.headers["Location"].rsplit("/", 1)[1]
    wait_for_runs(app)
    _, reply = messages_of(app, cid)
    assert reply.status == "error"
    assert reply.content == "Half a reply"  # partial kept
    assert reply.error == "upstream broke"
    page = user_client.get(f"/c/{cid}").get_data(as_text=True)
    assert "upstream broke" in page and "Retry" in page
    response = post(user_client, f"/m/{reply.id}/retry", htmx=True)
    assert response.status_code == 200
    wait_for_runs(app)
    messages = messages_of(app, cid)
    assert [m.status for m in messages] == ["complete", "error", "complete"]
    assert messages[2].parent_id == messages[0].id  # a new reply to the same user message
    assert messages[2].content == "A whole reply."
    # the retry sent the same history: the user message, not the failed reply
    assert [m.content for m in fake.requests[1]] == ["try me"]
    with app.app_context():
        assert len(db.session.scalars(select(Run)).all()) == 2
