"""Notifications with payloads, in one process and over Redis, and the group commit of appends:
what lets 1,000 streams share a worker without a database read per delta per reader."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bench.stream_persistence import StatementLog
from bench.stream_server import REDIS_URL, redis_reason
from webchat.extensions import db
from webchat.streaming import sse, store
from webchat.streaming.notify import RECENT, LocalNotifier, RedisNotifier

from .test_streaming_faults import JsonClient, JsonFormat, append, finish, manual_run, stored


def test_a_reader_gets_the_payloads_since_its_version_or_none():
    notifier = LocalNotifier()
    with notifier.subscribe("run") as sub:
        seen = sub.version
        assert sub.since(seen) == (seen, [])
        notifier.publish("run", ("m", 0, "Hel"))
        notifier.publish("run", ("m", 3, "lo"))
        assert sub.since(seen) == (seen + 2, [("m", 0, "Hel"), ("m", 3, "lo")])
        assert sub.since(seen + 1) == (seen + 2, [("m", 3, "lo")])
        notifier.publish("run")  # a plain wake: the database has news the payloads don't say
        assert sub.since(seen) == (seen + 3, None)
        for i in range(RECENT + 1):
            notifier.publish("run", ("m", 5 + i, "x"))
        version, payloads = sub.since(seen + 3)
        assert version == seen + 4 + RECENT and payloads is None  # too old: read the database


def test_redis_carries_payloads_to_other_processes_and_not_back():
    reason = redis_reason()
    if reason:
        pytest.skip(reason)
    one, two = RedisNotifier(REDIS_URL), RedisNotifier(REDIS_URL)
    key = uuid.uuid4().hex
    with one.subscribe(key) as on_one, two.subscribe(key) as on_two:
        time.sleep(0.3)  # both listeners have subscribed
        seen_one, seen_two = on_one.version, on_two.version
        one.publish(key, ("m", 0, "über"))
        assert on_two.wait(seen_two, 5)
        assert on_two.since(seen_two) == (seen_two + 1, [("m", 0, "über")])
        time.sleep(0.2)
        assert on_one.since(seen_one) == (seen_one + 1, [("m", 0, "über")])  # woken once, locally
        one.publish_many({key: None})
        assert on_two.wait(seen_two + 1, 5)
        assert on_two.since(seen_two) == (seen_two + 2, None)


def test_a_reader_at_the_cursor_sends_notified_text_without_reading_the_database(app):
    run_id, mid = manual_run(app, "Hello")
    client = JsonClient()
    stream = sse.follow(app, run_id, JsonFormat())
    client.feed(next(stream))
    client.feed(next(stream))
    assert client.text == {str(mid): "Hello"}
    with app.app_context():
        log = StatementLog(db.engine)
    me = threading.current_thread().name
    try:
        append(app, run_id, mid, ", world")
        before = sum(thread == me for thread, _, _ in log.statements)
        client.feed(next(stream))
        after = sum(thread == me for thread, _, _ in log.statements)
    finally:
        log.close()
    assert client.text == {str(mid): "Hello, world"}
    assert after == before  # the reader read nothing
    finish(app, run_id)
    for chunk in stream:
        client.feed(chunk)
    assert client.done and client.text == {str(mid): stored(app, mid).content}


def test_a_reader_that_missed_a_notification_reads_the_database(app):
    run_id, mid = manual_run(app, "one ")
    stream = sse.follow(app, run_id, JsonFormat(), f"{mid}:0")
    client = JsonClient()
    client.feed(next(stream))
    client.feed(next(stream))
    with app.app_context():
        notifier = app.extensions["webchat.notifier"]
        with app.app_context():
            store.append(run_id, mid, "two ")
        notifier.publish(str(run_id), (str(mid), 999, "not what is stored"))  # a stray payload
    client.feed(next(stream))
    append(app, run_id, mid, "three")
    finish(app, run_id)
    for chunk in stream:
        client.feed(chunk)
    assert client.text == {str(mid): "one two three"} == {str(mid): stored(app, mid).content}


def test_concurrent_appends_are_committed_together(make_app):
    app = make_app()
    started = [manual_run(app) for _ in range(20)]
    with app.app_context():
        log = StatementLog(db.engine)
    barrier = threading.Barrier(len(started))

    def writer(run_id, mid):
        barrier.wait()
        for i in range(5):
            assert append(app, run_id, mid, f"{i}") is False

    threads = [threading.Thread(target=writer, args=pair) for pair in started]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        log.close()
    for _, mid in started:
        assert stored(app, mid).content == "01234"
    assert len(log.run_write_commits) < 100  # 100 appends, fewer transactions
