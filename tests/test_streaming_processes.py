"""Fault tests with real processes: two gunicorn servers sharing a database and Redis, and a
worker killed with SIGKILL in the middle of a reply.

Each test runs on SQLite and PostgreSQL (the ``make_app`` fixture gives the database; the app it
builds only reads what the servers store). Redis is used for real and the tests that need it are
skipped with a reason when it does not answer.
"""

from __future__ import annotations

import html
import os
import re
import signal
import time
import uuid

import pytest
from sqlalchemy import select

from bench.stream_server import REDIS_URL, Client, Gunicorn, redis_reason
from webchat.extensions import db
from webchat.models import Message, Run, Status
from webchat.providers.demo import DemoProvider

pytestmark = pytest.mark.slow


def server_env(database: str, folder, **settings) -> dict[str, str]:
    env = {
        "WEBCHAT_DATABASE_URL": database,
        "WEBCHAT_INSTANCE_PATH": str(folder),
        "WEBCHAT_SECRET_KEY": "process-tests",  # shared, so one sign-in works on every server
    }
    env.update({f"WEBCHAT_{k}": str(v) for k, v in settings.items()})
    return env


def reply_row(app, message_id: str) -> tuple[str, str, str | None]:
    """(status, content, worker of its run), read straight from the database."""
    with app.app_context():
        message = db.session.get(Message, uuid.UUID(message_id))
        assert message is not None
        worker = db.session.scalar(select(Run.worker).where(Run.id == message.run_id))
        result = (message.status, message.content, worker)
        db.session.remove()
        return result


def live_text(events: list[dict], text: str = "") -> str:
    """What the htmx bubble shows: a snapshot replaces it, deltas append."""
    for event in events:
        if event["event"] == "snapshot":
            match = re.search(r'class="msg-body stream-text"[^>]*>(.*)</div>', event["data"], re.S)
            assert match
            text = html.unescape(match.group(1))
        elif event["event"] == "delta":
            text += html.unescape(event["data"])
    return text


def test_a_reply_started_on_one_server_streams_live_through_another(make_app, tmp_path):
    reason = redis_reason()
    if reason:
        pytest.skip(reason)
    app = make_app()
    # A 30 s database poll: what arrives sooner was woken through Redis.
    env = server_env(
        app.config["DATABASE_URL"],
        tmp_path,
        REDIS_URL=REDIS_URL,
        DEMO_DELAY_MS=25,
        STREAM_POLL_MS=30_000,
    )
    with Gunicorn(tmp_path, env) as one, Gunicorn(tmp_path, env) as two:
        alice = Client(one.url).sign_up()
        cid, reply_id = alice.start_conversation("/long 160")
        on_two = Client(two.url).use_session_of(alice, two.url)
        events: list[tuple[float, dict]] = []
        statuses_while_reading = set()
        for received, event in on_two.stream(reply_id):
            events.append((received, event))
            if event["event"] == "delta" and len(events) % 10 == 0:
                statuses_while_reading.add(reply_row(app, reply_id)[0])
            if sum(e["event"] == "delta" for _, e in events) == 40:
                break  # the reader drops off and comes back through the first server
        last_id = [e["id"] for _, e in events if e["id"]][-1]
        back_on_one = list(alice.stream(reply_id, last_id))
        status, content, worker = reply_row(app, reply_id)

        assert worker is not None and int(worker.rsplit(":", 1)[1]) in one.worker_pids()
        assert Status.STREAMING in statuses_while_reading  # read while it was being written
        deltas = [t for t, e in events if e["event"] == "delta"]
        assert max(b - a for a, b in zip(deltas, deltas[1:], strict=False)) < 1.5  # not polled
        text = live_text([e for _, e in events])
        text = live_text([e for _, e in back_on_one], text)
        assert back_on_one[-1][1]["event"] == "done"
        assert status == Status.COMPLETE
        assert text == content == DemoProvider().reply_text("/long 160")
        # the other server can answer in the same conversation
        second = on_two.send(cid, "and you?")
        done = [e for _, e in alice.stream(second)]
        assert done[-1]["event"] == "done"
        assert reply_row(app, second)[:2] == (
            Status.COMPLETE,
            DemoProvider().reply_text("and you?"),
        )


def test_kill_9_of_the_generating_worker(make_app, tmp_path):
    """The worker generating a reply is killed: the text durable ~100 ms before the kill is
    kept, the reply ends ``interrupted`` once the restarted worker's reaper runs, and the
    conversation goes on."""
    app = make_app()
    env = server_env(
        app.config["DATABASE_URL"],
        tmp_path,
        DEMO_DELAY_MS=20,
        HEARTBEAT_INTERVAL_MS=200,
        STALE_RUN_AFTER_MS=1_500,
        REAPER_INTERVAL_MS=300,
    )
    expected = DemoProvider().reply_text("/long 3000")
    with Gunicorn(tmp_path, env) as server:
        client = Client(server.url).sign_up()
        cid, reply_id = client.start_conversation("/long 3000")
        # Watch the stored text grow for a second: the time between two writes is the most
        # text a kill can lose.
        seen: list[tuple[float, int]] = []
        while not seen or seen[-1][0] - seen[0][0] < 1.0 or seen[-1][1] == 0:
            status, content, worker = reply_row(app, reply_id)
            if not seen or len(content) != seen[-1][1]:
                seen.append((time.monotonic(), len(content)))
            time.sleep(0.005)
        assert status == Status.STREAMING and worker is not None
        pid = int(worker.rsplit(":", 1)[1])
        assert pid in server.worker_pids()
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        before_kill = len(reply_row(app, reply_id)[1])
        gaps = [b[0] - a[0] for a, b in zip(seen[1:], seen[2:], strict=False)]
        assert gaps and max(gaps) < 0.1 + 0.02 + 0.1  # flush interval + one word + slack

        # No request reaches the server meanwhile: the new worker's reaper does this itself.
        while reply_row(app, reply_id)[0] == Status.STREAMING:
            assert time.monotonic() - killed_at < 20, "the reply was never interrupted"
            time.sleep(0.1)
        status, content, _ = reply_row(app, reply_id)
        assert status == Status.INTERRUPTED
        assert len(content) >= before_kill and expected.startswith(content)
        assert len(content) - before_kill < 60  # at most the write in flight at the kill
        assert pid not in server.worker_pids()

        server.wait_ready()
        page = client.http.get(f"{server.url}/c/{cid}", timeout=10).text
        assert "The reply was interrupted" in page and "Retry" in page
        second = client.send(cid, "still there?")
        events = [e for _, e in client.stream(second)]
        assert live_text(events[:-1]) == DemoProvider().reply_text("still there?")
        assert reply_row(app, second)[0] == Status.COMPLETE

        # A graceful stop (SIGTERM) ends the replies its worker generates at once.
        third = client.send(cid, "/long 3000")
        while not reply_row(app, third)[1]:
            time.sleep(0.02)
        server.stop()
    status, content, _ = reply_row(app, third)
    assert status == Status.INTERRUPTED and content and expected.startswith(content)
