"""Writes that don't grow: a reply costs at most ~10 write transactions a second however fast
its tokens come, and sending into a conversation of 100,000 messages does the same work as into
one of 1,000 (no whole-conversation reads on the write path).

Work is counted, not timed: write transactions by the run's thread, and for every query on the
path the rows PostgreSQL touches (``EXPLAIN ANALYZE``) or the virtual-machine steps SQLite takes
(its progress handler), measured again afterwards with the same parameters.
"""

from __future__ import annotations

import json
import re
import time
import uuid

from sqlalchemy import select

from bench.stream_persistence import RUN_THREADS, StatementLog, add_history
from webchat.extensions import db
from webchat.models import Message, Role, Status, User
from webchat.providers import register
from webchat.providers.base import Finish, TextDelta
from webchat.streaming.runs import HISTORY_LIMIT

from .conftest import post, sign_up, wait_for_runs
from .fakes.queued import QueuedProvider


def test_a_fast_reply_costs_at_most_ten_writes_a_second(make_app):
    """1,500 deltas as fast as the provider can give them (~1,000 a second)."""
    app = make_app()
    fake = QueuedProvider()
    register(app, fake)
    script: list = []
    for i in range(1500):
        script.append(TextDelta(f"w{i} "))
        if i % 2:
            script.append(0.002)
    fake.queue(*script, Finish())
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        log = StatementLog(db.engine)
    try:
        started = time.monotonic()
        post(client, "/c", {"content": "go", "model": "fake/model"})
        wait_for_runs(app)
        seconds = time.monotonic() - started
    finally:
        log.close()
    with app.app_context():
        reply = db.session.scalars(select(Message).where(Message.role == Role.ASSISTANT)).one()
        assert reply.status == Status.COMPLETE
        assert reply.content == "".join(f"w{i} " for i in range(1500))
    commits = log.run_write_commits
    assert seconds > 1.0  # the reply really took a while
    # start, the appends (one per 100 ms, plus the final flush: at most 10 * seconds + 1, as
    # counted below), usage metadata, finish
    assert len(commits) <= 10 * seconds + 4, (len(commits), seconds)
    gaps = [b - a for a, b in zip(commits, commits[1:], strict=False)]
    assert sum(g < 0.09 for g in gaps) <= 3  # never two appends within one flush interval
    appends = [s for t, s, _ in log.statements if t.startswith(RUN_THREADS)]
    assert sum("UPDATE messages SET content" in s for s in appends) <= 10 * seconds + 1


# --- the same work in a long conversation as in a short one -------------------------------------


def query_work(statement: str, parameters) -> int:
    """The work the database does for one read: rows touched by every node of PostgreSQL's plan
    (``EXPLAIN ANALYZE``), or steps of SQLite's virtual machine (in units of 10)."""
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            ).scalar()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            return _rows_touched(plan[0]["Plan"])
        raw = conn.connection.driver_connection
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        raw.set_progress_handler(count, 10)
        try:
            raw.execute(statement, parameters).fetchall()
        finally:
            raw.set_progress_handler(None, 0)
        return steps[0]


def _rows_touched(node: dict) -> int:
    rows = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    total = rows * max(1, node.get("Actual Loops", 1))
    return total + sum(_rows_touched(child) for child in node.get("Plans", []))


def reads_of_a_send(app, client, conversation_id: uuid.UUID) -> dict[str, int]:
    """Send a message into the conversation through the page; returns the work of each distinct
    read the request and its run did, by the statement's text (the most of its executions)."""
    with app.app_context():
        log = StatementLog(db.engine)
    try:
        response = post(client, f"/c/{conversation_id}/messages", {"content": "one more"})
        assert response.status_code == 303
        wait_for_runs(app)
    finally:
        log.close()
    work: dict[str, int] = {}
    with app.app_context():
        for _thread, statement, parameters in log.statements:
            if re.match(r"\s*(SELECT|WITH)\b", statement, re.I):
                work[statement] = max(work.get(statement, 0), query_work(statement, parameters))
        reply = db.session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.created_at.desc())
        ).first()
        assert reply is not None and reply.status == Status.COMPLETE
    return work


def test_sending_into_100000_messages_does_the_work_of_sending_into_1000(make_app):
    app = make_app(DEMO_DELAY_MS=0)
    client = app.test_client()
    sign_up(client)
    with app.app_context():
        user_id = db.session.scalar(select(User.id))
        short = add_history(user_id, 1_000)
        long = add_history(user_id, 100_000)
    assert HISTORY_LIMIT < 1_000  # both histories are cut at the limit
    small = reads_of_a_send(app, client, short)
    large = reads_of_a_send(app, client, long)
    assert set(large) == set(small)  # the same queries
    grown = {
        statement: (small[statement], large[statement])
        for statement in small
        if large[statement] > 2 * small[statement] + 100
    }
    assert grown == {}, "reads whose work grows with the conversation"
    with app.app_context():
        history = db.session.scalars(
            select(Message.id).where(Message.conversation_id == long).order_by(Message.created_at)
        ).all()
        assert len(history) == 100_002
