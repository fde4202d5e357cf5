"""Fault tests of the streaming path, in one process: disconnects and resumes, a provider that
fails, hangs or never finishes, cancel, closed clients, stale runs and concurrent writers.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture). Processes, gunicorn, Redis and
``kill -9`` are in ``test_streaming_processes.py``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from webchat import tree
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Status, User, new_id, utcnow
from webchat.providers import register
from webchat.providers.base import Finish, ProviderError, TextDelta
from webchat.providers.demo import DemoProvider
from webchat.streaming import runs, sse, store

from .conftest import csrf_token, parse_sse, post, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider


class JsonFormat:
    """A JSON flavour of the stream, as a program would read it (no snapshot: it replays)."""

    def snapshot(self, run_id: uuid.UUID) -> None:
        return None

    def delta(self, message: sse.StoredMessage, text: str) -> str:
        return json.dumps({"message": str(message.id), "text": text})

    def tool_call(self, message: sse.StoredMessage) -> str:
        return json.dumps({"message": str(message.id), "tool_call": message.tool_call})

    def tool_result(self, message: sse.StoredMessage) -> str:
        return json.dumps({"message": str(message.id), "tool_result": message.tool_result})

    def error(self, run_id: uuid.UUID, text: str) -> str:
        return json.dumps({"error": text})

    def done(self, run_id: uuid.UUID) -> str:
        return json.dumps({"run": str(run_id)})


class JsonClient:
    """What a program reading the JSON stream keeps: text per message and the last event id.

    It checks every delta against its id: the id's offset must be where the client's text for
    that message ends after the delta, so a gap or an overlap fails at once.
    """

    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.last_id: str | None = None
        self.events: list[dict] = []

    def feed(self, chunk: str) -> None:
        for event in parse_sse(chunk):
            self.events.append(event)
            if event["event"] == "delta":
                payload = json.loads(event["data"])
                mid, offset = event["id"].rsplit(":", 1)
                assert mid == payload["message"]
                self.text[mid] = self.text.get(mid, "") + payload["text"]
                assert len(self.text[mid]) == int(offset), "gap or overlap in the stream"
            if event["id"]:
                self.last_id = event["id"]

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1]["event"] == "done"


def live_text(events: list[dict], text: str = "") -> str:
    """The text an htmx client shows: a snapshot replaces the bubble, deltas append to it."""
    for event in events:
        if event["event"] == "snapshot":
            match = re.search(r'class="msg-body stream-text"[^>]*>(.*)</div>', event["data"], re.S)
            assert match, event["data"]
            text = html.unescape(match.group(1))
        elif event["event"] == "delta":
            text += html.unescape(event["data"])
    return text


def manual_run(app, first_text: str = "") -> tuple[uuid.UUID, uuid.UUID]:
    """A streaming run that no executor drives: the test appends to it with the store itself.
    Returns ``(run_id, message_id)``."""
    with app.app_context():
        user = User(email=f"{uuid.uuid4().hex[:8]}@example.com", password_hash="x")
        db.session.add(user)
        db.session.flush()
        conversation = Conversation(user_id=user.id, model="demo/echo")
        db.session.add(conversation)
        db.session.flush()
        question = Message(
            id=new_id(),
            conversation_id=conversation.id,
            role=Role.USER,
            content="hi",
            status=Status.COMPLETE,
            created_at=utcnow(),
        )
        tree.attach(question, None)
        db.session.add(question)
        db.session.flush()
        run = store.create_reply(conversation, question, "demo/echo")
        run_id, message_id = run.id, run.message_id
        db.session.commit()
        assert store.start_run(run_id, "test:0")
        if first_text:
            store.append(run_id, message_id, first_text)
        db.session.remove()
    assert message_id is not None
    return run_id, message_id


def append(app, run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> bool:
    with app.app_context():
        return store.append(run_id, message_id, text)


def finish(app, run_id: uuid.UUID, status: str = Status.COMPLETE, error: str | None = None):
    with app.app_context():
        store.finish(run_id, status, error)


def stored(app, message_id) -> Message:
    with app.app_context():
        message = db.session.get(Message, uuid.UUID(str(message_id)))
        db.session.expunge(message)
        return message


def run_of(app, run_id) -> Run:
    with app.app_context():
        run = db.session.get(Run, run_id)
        db.session.expunge(run)
        return run


def conversation_with_reply(client, content: str, model: str | None = None) -> tuple[str, str]:
    """Start a conversation through the new-chat form; returns (conversation id, reply id)."""
    data = {"content": content, **({"model": model} if model else {})}
    response = post(client, "/c", data)
    assert response.status_code == 303, response.get_data(as_text=True)
    cid = response.headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/c/{cid}").get_data(as_text=True)
    reply_ids = re.findall(r'id="m-([0-9a-f-]{36})"', page)
    return cid, reply_ids[-1]


def wait_until(predicate, timeout: float = 20, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


# --- resume after a disconnect -------------------------------------------------------------------


def test_json_stream_resumes_exactly_from_last_event_id(app):
    run_id, mid = manual_run(app, "Hello ")
    client = JsonClient()
    stream = sse.follow(app, run_id, JsonFormat())
    client.feed(next(stream))  # retry + opening comment
    client.feed(next(stream))
    assert client.text == {str(mid): "Hello "} and client.last_id == f"{mid}:6"
    append(app, run_id, mid, "wor")
    client.feed(next(stream))
    append(app, run_id, mid, "ld")  # stored, never read by this connection
    stream.close()  # the client goes away

    append(app, run_id, mid, " — ünïcode\nand a second line")
    stream = sse.follow(app, run_id, JsonFormat(), client.last_id)
    client.feed(next(stream))
    client.feed(next(stream))
    finish(app, run_id)
    for chunk in stream:
        client.feed(chunk)
    assert client.done
    assert client.text == {str(mid): stored(app, mid).content}
    assert stored(app, mid).content == "Hello world — ünïcode\nand a second line"


def test_json_stream_resumes_at_an_end_cursor_and_after_the_run(app):
    run_id, mid = manual_run(app, "All of it.")
    finish(app, run_id)
    everything = JsonClient()
    for chunk in sse.follow(app, run_id, JsonFormat()):
        everything.feed(chunk)
    assert everything.text == {str(mid): "All of it."} and everything.done
    # A client that saw the message whole gets no text again, only the end of the stream.
    again = JsonClient()
    for chunk in sse.follow(app, run_id, JsonFormat(), f"{mid}:end"):
        again.feed(chunk)
    assert again.text == {} and [e["event"] for e in again.events] == ["done"]
    # A malformed id starts over rather than guessing.
    over = JsonClient()
    for chunk in sse.follow(app, run_id, JsonFormat(), "garbage"):
        over.feed(chunk)
    assert over.text == {str(mid): "All of it."}


def test_an_idle_stream_starts_with_a_comment_and_pings(make_app):
    app = make_app(SSE_HEARTBEAT_MS=100, STREAM_POLL_MS=30)
    run_id, mid = manual_run(app, "thinking")
    stream = sse.follow(app, run_id, JsonFormat())
    opening = next(stream)
    assert opening.startswith("retry: 1000\n: ")  # a comment first, so proxies flush
    assert parse_sse(next(stream))[0]["id"] == f"{mid}:8"
    started = time.monotonic()
    assert next(stream) == ": ping\n\n"  # nothing new for a while: a comment, not an event
    assert 0.09 < time.monotonic() - started < 2
    stream.close()


def test_snapshot_and_cursor_agree_when_a_write_lands_between_them(app):
    """A delta committed while the stream renders its snapshot must reach the client once."""
    run_id, mid = manual_run(app, "before ")

    class RacingFormat(JsonFormat):
        def snapshot(self, run_id):
            text = db.session.scalar(select(Message.content).where(Message.id == mid))
            writer = threading.Thread(target=append, args=(app, run_id, mid, "between "))
            writer.start()
            writer.join()  # committed by another connection after this read
            return json.dumps({"snapshot": text})

    stream = sse.follow(app, run_id, RacingFormat())
    next(stream)
    events = parse_sse(next(stream))
    snapshot = json.loads(events[0]["data"])["snapshot"]
    assert snapshot == "before "
    assert events[0]["id"] == f"{mid}:{len(snapshot)}"
    if len(events) == 1:  # the new delta comes on the next read
        append(app, run_id, mid, "")
        events += parse_sse(next(stream))
    text = snapshot + "".join(json.loads(e["data"])["text"] for e in events[1:])
    assert text == "before between "
    stream.close()


def read_some(response, deltas: int) -> list[dict]:
    """Read a streaming test-client response until ``deltas`` delta events have arrived."""
    events: list[dict] = []
    chunks = iter(response.response)
    while sum(e["event"] == "delta" for e in events) < deltas:
        events += parse_sse(next(chunks).decode())
    return events


def test_htmx_stream_reconnects_mid_reply_without_losing_or_repeating(make_app):
    app = make_app(DEMO_DELAY_MS=5)
    client = app.test_client()
    sign_up(client)
    _, reply_id = conversation_with_reply(client, "/long 800")
    text = ""
    last_id = None
    for _ in range(3):  # three connections cut mid-reply, each resuming with Last-Event-ID
        headers = {"Last-Event-ID": last_id} if last_id else {}
        response = client.get(f"/m/{reply_id}/stream", headers=headers, buffered=False)
        events = read_some(response, 3)
        response.close()
        assert stored(app, reply_id).status == Status.STREAMING, "the reply ended too soon"
        text = live_text(events, text)
        last_id = [e["id"] for e in events if e["id"]][-1]
        assert stored(app, reply_id).content.startswith(text)
    response = client.get(f"/m/{reply_id}/stream", headers={"Last-Event-ID": last_id})
    events = parse_sse(response.get_data(as_text=True))
    assert events[0]["event"] == "snapshot" and events[-1]["event"] == "done"
    text = live_text(events[:-1], text)
    wait_for_runs(app)
    reply = stored(app, reply_id)
    assert reply.status == Status.COMPLETE
    assert text == reply.content == DemoProvider().reply_text("/long 800")


def test_json_stream_survives_many_disconnects_of_a_live_run(make_app):
    app = make_app(DEMO_DELAY_MS=3)
    client = app.test_client()
    sign_up(client)
    _, reply_id = conversation_with_reply(client, "/long 400")
    run_id = stored(app, reply_id).run_id
    reader = JsonClient()
    connections = 0
    while not reader.done:
        connections += 1
        stream = sse.follow(app, run_id, JsonFormat(), reader.last_id)
        for i, chunk in enumerate(stream):
            reader.feed(chunk)
            if i == 3:
                break
        stream.close()
    wait_for_runs(app)
    assert connections > 3  # it really was cut mid-reply
    assert reader.text == {reply_id: stored(app, reply_id).content}
    assert reader.text[reply_id] == DemoProvider().reply_text("/long 400")


# --- a provider that fails -----------------------------------------------------------------------

FAILURES = {
    "raises": (
        [TextDelta("Half a "), TextDelta("reply"), 0.05, ProviderError("upstream broke")],
        "upstream broke",
    ),
    "raises-unexpectedly": (
        [TextDelta("Half a "), TextDelta("reply"), RuntimeError("secret=abc at 10.0.0.1")],
        "The provider failed unexpectedly (RuntimeError).",
    ),
    "hangs": (
        [TextDelta("Half a "), TextDelta("reply"), 3.0, TextDelta(" too late"), Finish()],
        "The provider sent nothing for 0.4 s and was given up on.",
    ),
    "never-finishes": (
        [TextDelta("Half a "), TextDelta("reply")],
        "The provider ended the stream without finishing the reply.",
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_failing_provider_keeps_partial_text_shows_the_error_and_retry_works(make_app, failure):
    app = make_app(PROVIDER_TIMEOUT_MS=400)
    fake = QueuedProvider()
    register(app, fake)
    script, error = FAILURES[failure]
    fake.queue(*script)
    fake.queue(TextDelta("A whole "), TextDelta("reply."), Finish("stop"))
    client = app.test_client()
    sign_up(client)
    cid, reply_id = conversation_with_reply(client, "try me", model="fake/model")
    events = parse_sse(client.get(f"/m/{reply_id}/stream").get_data(as_text=True))
    wait_for_runs(app)
    reply = stored(app, reply_id)
    assert (reply.status, reply.content, reply.error) == (Status.ERROR, "Half a reply", error)
    assert [e["event"] for e in events][-2:] == ["error", "done"]
    assert html.unescape(events[-2]["data"]) == error
    assert live_text(events[:-2]) == "Half a reply"
    assert "secret" not in json.dumps(events)
    page = client.get(f"/c/{cid}").get_data(as_text=True)
    assert html.escape(error, quote=False) in page and "Retry" in page

    assert post(client, f"/m/{reply_id}/retry", htmx=True).status_code == 200
    wait_for_runs(app)
    with app.app_context():
        replies = db.session.scalars(
            select(Message)
            .where(Message.conversation_id == uuid.UUID(cid), Message.role == Role.ASSISTANT)
            .order_by(Message.created_at)
        ).all()
        assert [(m.status, m.content) for m in replies] == [
            (Status.ERROR, "Half a reply"),
            (Status.COMPLETE, "A whole reply."),
        ]
    assert [m.content for m in fake.requests[1]] == ["try me"]  # the same question again
    assert "A whole reply." in client.get(f"/c/{cid}").get_data(as_text=True)


# --- cancel, and clients that go away ------------------------------------------------------------


def test_stop_keeps_the_partial_text_and_the_conversation_goes_on(make_app):
    app = make_app(DEMO_DELAY_MS=10)
    client = app.test_client()
    sign_up(client)
    cid, reply_id = conversation_with_reply(client, "/long 1000")
    wait_until(lambda: len(stored(app, reply_id).content) > 40)
    assert post(client, f"/m/{reply_id}/cancel", htmx=True).status_code == 204
    wait_for_runs(app)
    reply = stored(app, reply_id)
    assert reply.status == Status.CANCELLED and len(reply.content) > 40
    assert DemoProvider().reply_text("/long 1000").startswith(reply.content)
    assert run_of(app, reply.run_id).status == Status.CANCELLED
    events = parse_sse(client.get(f"/m/{reply_id}/stream").get_data(as_text=True))
    assert live_text(events[:-1]) == reply.content
    assert "Stopped." in events[-1]["data"] and "Retry" in events[-1]["data"]
    response = post(client, f"/c/{cid}/messages", {"content": "and now?"}, htmx=True)
    assert response.status_code == 200
    wait_for_runs(app)
    with app.app_context():
        statuses = db.session.scalars(
            select(Message.status)
            .where(Message.conversation_id == uuid.UUID(cid))
            .order_by(Message.created_at)
        ).all()
    assert statuses == [Status.COMPLETE, Status.CANCELLED, Status.COMPLETE, Status.COMPLETE]


def test_cancel_reaches_a_run_whose_provider_is_silent(make_app):
    app = make_app(HEARTBEAT_INTERVAL_MS=100)
    fake = QueuedProvider()
    register(app, fake)
    fake.queue(TextDelta("thinking…"), 30.0, Finish())
    client = app.test_client()
    sign_up(client)
    _, reply_id = conversation_with_reply(client, "slow", model="fake/model")
    wait_until(lambda: stored(app, reply_id).content == "thinking…")
    started = time.monotonic()
    post(client, f"/m/{reply_id}/cancel", htmx=True)
    wait_for_runs(app)
    assert time.monotonic() - started < 2
    reply = stored(app, reply_id)
    assert (reply.status, reply.content) == (Status.CANCELLED, "thinking…")


def test_closing_every_client_does_not_stop_the_run(make_app):
    app = make_app(DEMO_DELAY_MS=5)
    client = app.test_client()
    sign_up(client)
    _, reply_id = conversation_with_reply(client, "/long 500")
    for _ in range(2):  # two tabs open the stream, read a little and close
        response = client.get(f"/m/{reply_id}/stream", buffered=False)
        read_some(response, 2)
        response.close()
    assert stored(app, reply_id).status == Status.STREAMING
    wait_for_runs(app)
    reply = stored(app, reply_id)
    assert reply.status == Status.COMPLETE
    assert reply.content == DemoProvider().reply_text("/long 500")


# --- stale runs ----------------------------------------------------------------------------------


def make_stale(app, run_id, seconds: float = 60) -> None:
    """Age the run's heartbeat, as a worker killed ``seconds`` ago leaves it."""
    with app.app_context():
        db.session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )
        db.session.commit()


def test_reaper_interrupts_a_stale_run_once_and_keeps_its_text(app):
    run_id, mid = manual_run(app, "Stored before the crash")
    fresh_id, fresh_mid = manual_run(app, "Still alive")
    make_stale(app, run_id)
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def reaper():
        barrier.wait()
        counts.append(runs.reap(app))

    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, 0, 0, 1]  # four processes reaping at once: one wins
    reply = stored(app, mid)
    assert (reply.status, reply.content) == (Status.INTERRUPTED, "Stored before the crash")
    assert reply.error == "The reply was interrupted: the server stopped."
    assert reply.content_html == "<p>Stored before the crash</p>\n"
    assert run_of(app, run_id).status == Status.INTERRUPTED
    assert stored(app, fresh_mid).status == Status.STREAMING  # a live run is left alone
    events = parse_sse("".join(sse.follow(app, run_id, JsonFormat())))
    assert [e["event"] for e in events] == ["delta", "done"]  # interrupted: no error event


def test_a_late_write_of_a_reaped_run_neither_lands_nor_revives_it(app):
    """A worker that was only slow, not dead, finds its run interrupted and stops."""
    run_id, mid = manual_run(app, "first part")
    make_stale(app, run_id)
    assert runs.reap(app) == 1
    assert append(app, run_id, mid, " written too late") is True  # told to stop
    finish(app, run_id, Status.COMPLETE)  # and its own ending does not overwrite the reaper's
    reply = stored(app, mid)
    assert (reply.status, reply.content) == (Status.INTERRUPTED, "first part")
    assert run_of(app, run_id).status == Status.INTERRUPTED


def test_a_busy_run_is_not_reaped_while_its_process_lives(make_app):
    """A run whose executor is busy elsewhere (waiting its turn for the database in an
    overloaded worker, say) is not taken for dead: its process's heartbeat thread touches it, and
    its own process's reaper knows it is alive. Once its process no longer runs it (the executor
    ended without finishing it), its heartbeat goes stale and a reaper takes it."""
    one = make_app(HEARTBEAT_INTERVAL_MS=50, STALE_RUN_AFTER_MS=400)
    other = make_app(HEARTBEAT_INTERVAL_MS=50, STALE_RUN_AFTER_MS=400)  # another process
    run_id, mid = manual_run(one, "busy")
    runs._beating(one, run_id, True)
    try:
        time.sleep(0.8)  # twice the stale age, and no executor touched the run
        assert runs.reap(other) == 0
        make_stale(one, run_id)
        assert runs.reap(one) == 0
        assert stored(one, mid).status == Status.STREAMING
    finally:
        runs._beating(one, run_id, False)
    time.sleep(0.5)
    assert runs.reap(other) == 1
    assert stored(one, mid).status == Status.INTERRUPTED
    wait_until(lambda: one.extensions["webchat.heartbeat_pid"] is None)  # the thread ended


def test_a_stale_run_that_was_asked_to_stop_ends_cancelled(app):
    run_id, mid = manual_run(app, "partial")
    with app.app_context():
        store.request_cancel(run_id)
    make_stale(app, run_id)
    assert runs.reap(app) == 1
    assert stored(app, mid).status == Status.CANCELLED


# --- many writers at once ------------------------------------------------------------------------


def test_fifty_concurrent_writers_never_see_database_is_locked(make_app, caplog):
    """50 clients start conversations at once (views that read, then write) while the 50 runs
    they start append deltas: every write waits its turn instead of failing."""
    app = make_app(DEMO_DELAY_MS=1)
    caplog.set_level(logging.WARNING)
    first = app.test_client()
    sign_up(first)
    cookie = first.get_cookie("session")
    assert cookie is not None
    token = csrf_token(first, "/")
    barrier = threading.Barrier(50)
    results: list = []

    def writer(i: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie.value)
        barrier.wait()
        try:
            response = client.post(
                "/c", data={"content": f"/long {20 + i}"}, headers={"X-CSRFToken": token}
            )
            cid = response.headers["Location"].rsplit("/", 1)[1]
            second = client.post(
                f"/c/{cid}/messages",
                data={"content": "again"},
                headers={"X-CSRFToken": token},
            )
            results.append((response.status_code, second.status_code))
        except Exception as exc:  # recorded, so the assertion below names it
            results.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for_runs(app, timeout=120)
    errors = [r for r in results if not isinstance(r, tuple) or r[0] != 303]
    assert errors == [] and len(results) == 50
    # the second send was refused (409) only while the first reply still streamed
    assert {r[1] for r in results} <= {303, 409}
    assert "locked" not in caplog.text and "failed" not in caplog.text
    with app.app_context():
        replies = db.session.scalars(select(Message).where(Message.role == Role.ASSISTANT)).all()
        assert len(replies) == 50 + sum(r[1] == 303 for r in results)
        assert {(m.status, m.error) for m in replies} == {(Status.COMPLETE, None)}
        demo = DemoProvider()
        for reply in replies:
            question = db.session.get(Message, reply.parent_id)
            assert reply.content == demo.reply_text(question.content)
