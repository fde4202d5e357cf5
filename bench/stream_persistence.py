"""Persistence lag and database writes of streaming replies, in one process, on a real database.

Prints three tables:

1. For runs at a given token rate (alone, or 50 at once): the lag from a delta leaving the
   provider to the commit that makes it durable (p50 / p99 / max, ms), and the write
   transactions and write statements each run costs per second.
2. The time of one append (one write transaction) to a reply that is already 1 KB, 100 KB and
   1 MB long: the row is rewritten, so this is where a longer reply costs more.
3. The time of a send (the page's POST, then the run's start and history) into a conversation of
   1,000 messages and of 100,000.

Usage::

    .venv/bin/python -m bench.stream_persistence [--db sqlite,postgres] [--seconds 5]

The run executor and store are webchat's own; the provider is a paced fake (``PacedProvider``)
and ``store.append`` is wrapped only to note when each commit returned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select

from webchat import tree
from webchat.conversations import services
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Status, User, new_id, utcnow
from webchat.providers import register
from webchat.providers.base import ChatMessage, Event, Finish, TextDelta
from webchat.streaming import runs, store

from .common import bench_app, percentile, table
from .stream_server import fresh_database

WRITES = ("INSERT", "UPDATE", "DELETE")
RUN_THREADS = ("webchat-run-", "webchat-appends")


class StatementLog:
    """Every statement an engine runs, with its thread's name, and the write transactions
    (commits after at least one write) of the run executors' threads (``webchat-run-*``) and
    of the appends' writer (``webchat-appends``)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, str, object]] = []  # (thread, sql, parameters)
        self.run_write_commits: list[float] = []  # time.monotonic() of each
        self._wrote: set[int] = set()
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._execute)
        event.remove(self.engine, "commit", self._commit)

    def run_writes(self) -> int:
        """Write statements of the run executors' threads."""
        return sum(
            t.startswith(RUN_THREADS) and s.lstrip().split(None, 1)[0].upper() in WRITES
            for t, s, _ in self.statements
        )

    def _execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append((threading.current_thread().name, statement, parameters))
        if statement.lstrip().split(None, 1)[0].upper() in WRITES:
            self._wrote.add(id(conn))

    def _commit(self, conn) -> None:
        if id(conn) in self._wrote:
            self._wrote.discard(id(conn))
            if threading.current_thread().name.startswith(RUN_THREADS):
                self.run_write_commits.append(time.monotonic())


def add_history(user_id: int, messages: int) -> uuid.UUID:
    """A conversation of ``messages`` complete messages, each the parent of the next (placed in
    its tree, the last one the active leaf), every assistant message with its run; returns its
    id. Bulk inserts (commits); PostgreSQL skips triggers and foreign-key checks for the load
    (the rows are consistent), which keeps 100,000 messages to seconds."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(db.text("SET LOCAL session_replication_role = replica"))
    conversation = Conversation(id=new_id(), user_id=user_id, title=f"{messages} messages")
    db.session.add(conversation)
    db.session.flush()
    start = utcnow() - timedelta(seconds=messages + 60)
    run_rows, rows, parent = [], [], None
    for i in range(messages):
        at = start + timedelta(seconds=i)
        run_id = new_id() if i % 2 else None
        if run_id:
            run_rows.append(
                {"id": run_id, "conversation_id": conversation.id, "model": "demo/echo"}
                | {"status": Status.COMPLETE, "cancel_requested": False}
                | {"heartbeat_at": at, "created_at": at, "finished_at": at}
            )
        mid = new_id()
        rows.append(
            {"id": mid, "conversation_id": conversation.id, "parent_id": parent, "run_id": run_id}
            | {"role": Role.ASSISTANT if i % 2 else Role.USER, "content": f"message {i}"}
            | {"status": Status.COMPLETE, "metadata": {}, "created_at": at, "updated_at": at}
        )
        parent = mid
    page = {"insertmanyvalues_page_size": 1000}
    tree.place_rows(conversation.id, rows)  # one segment: each message its parent's first child
    db.session.execute(insert(Run.__table__).execution_options(**page), run_rows)
    db.session.execute(insert(Message.__table__).execution_options(**page), rows)
    tree.set_active(conversation.id, parent)
    db.session.commit()
    return conversation.id


class PacedProvider:
    """``paced/<tokens per second>``: ``seconds`` of 4-character words at that rate, each
    yield stamped ``(conversation key, end offset, time.monotonic())`` into :attr:`stamps`.
    The key is the conversation's system prompt."""

    name = "paced"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stamps: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def models(self) -> list[str]:
        return ["20"]

    def stream(
        self, model: str, messages: Sequence[ChatMessage], *, tools: Sequence = (), **_: Any
    ) -> Iterator[Event]:
        rate = float(model)
        key = messages[0].content
        stamps = self.stamps[key]
        start = time.monotonic()
        offset = 0
        for i in range(int(rate * self.seconds)):
            pause = start + (i + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            offset += 4
            stamps.append((offset, time.monotonic()))
            yield TextDelta(f"w{i % 100:02d} ")
        yield Finish()


def make_app(url: str, folder: str):
    return bench_app(url, folder, TESTING=True, TOOLS_ENABLED=False)


def lag_rows(url: str, folder: str, seconds: float) -> list[list]:
    """Table 1 for one database."""
    app = make_app(url, folder)
    provider = PacedProvider(seconds)
    register(app, provider)
    commits: dict[uuid.UUID, list[tuple[float, int]]] = defaultdict(list)
    real_append = store.append

    def timed_append(run_id: uuid.UUID, message_id: uuid.UUID, text: str) -> bool:
        stop = real_append(run_id, message_id, text)
        commits[message_id].append((time.monotonic(), len(text)))
        return stop

    store.append = timed_append  # type: ignore[assignment]
    out = []
    try:
        for count, rate in ((1, 20), (1, 1000), (50, 20), (200, 20)):
            with app.app_context():
                log = StatementLog(db.engine)
                user = User(email=f"{uuid.uuid4().hex}@bench", password_hash="-")
                db.session.add(user)
                db.session.flush()
                started = []
                for k in range(count):
                    key = f"lag-{count}-{rate}-{k}"
                    conversation = services.create_conversation(user, system_prompt=key)
                    conversation.model = f"paced/{rate}"
                    _, run = services.send_message(conversation, "go")
                    started.append((key, run.id, run.message_id))
                db.session.commit()
                for _, run_id, _ in started:
                    runs.launch(run_id, app)
            for thread in app.extensions["webchat.run_threads"]:
                thread.join()
            log.close()
            lags = []
            for key, _, message_id in started:
                written = 0
                durable = []
                for t, chars in commits[message_id]:
                    written += chars
                    durable.append((written, t))
                i = 0
                for offset, t in provider.stamps[key]:
                    while durable[i][0] < offset:
                        i += 1
                    lags.append((durable[i][1] - t) * 1000)
            run_seconds = count * seconds
            out.append(
                [
                    count,
                    rate,
                    len(lags),
                    f"{percentile(lags, 50):.0f}",
                    f"{percentile(lags, 99):.0f}",
                    f"{max(lags):.0f}",
                    f"{len(log.run_write_commits) / run_seconds:.1f}",
                    f"{log.run_writes() / run_seconds:.1f}",
                ]
            )
    finally:
        store.append = real_append  # type: ignore[assignment]
        with app.app_context():
            db.engine.dispose()
    return out


def append_cost_rows(url: str, folder: str, appends: int = 50) -> list[list]:
    """Table 2 for one database: ms per append to a reply of 1 KB, 100 KB and 1 MB."""
    app = make_app(url, folder)
    out = []
    with app.app_context():
        user = User(email=f"{uuid.uuid4().hex}@bench", password_hash="-")
        db.session.add(user)
        db.session.flush()
        conversation = services.create_conversation(user)
        question, run = services.send_message(conversation, "go")
        db.session.commit()
        run_id, message_id = run.id, run.message_id
        assert message_id is not None
        store.start_run(run_id, "bench:0")
        for size in (1_000, 100_000, 1_000_000):
            base = ("0123456789abcdefghijklmnopqrstuvwxyz " * (size // 37 + 1))[:size]
            db.session.execute(
                db.update(Message).where(Message.id == message_id).values(content=base)
            )
            db.session.commit()
            times = []
            for _ in range(appends):
                t = time.perf_counter()
                store.append(run_id, message_id, "delta text")
                times.append((time.perf_counter() - t) * 1000)
            out.append([f"{size // 1000:,} KB", f"{statistics.median(times):.2f}"])
        store.finish(run_id, Status.COMPLETE)
        db.session.remove()
        db.engine.dispose()
    return out


def send_cost_rows(url: str, folder: str, sends: int = 7) -> list[list]:
    """Table 3 for one database: ms of a send through the page's view, and of the run's start
    (``history()`` and the provider's input), in 1,000 and 100,000 messages."""
    app = make_app(url, folder)
    app.config["DEMO_DELAY_MS"] = 0
    app.config["WTF_CSRF_ENABLED"] = False
    out = []
    with app.app_context():
        user = User(email=f"{uuid.uuid4().hex}@bench", password_hash="-")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        sizes = {1_000: add_history(user_id, 1_000), 100_000: add_history(user_id, 100_000)}
        db.session.remove()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    for size, cid in sizes.items():
        post_ms, history_ms = [], []
        for _ in range(sends):
            t = time.perf_counter()
            response = client.post(f"/c/{cid}/messages", data={"content": "one more"})
            post_ms.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 303, response.status_code
            for thread in app.extensions["webchat.run_threads"]:
                thread.join()
            with app.app_context():
                last = db.session.scalars(
                    select(Message)
                    .where(Message.conversation_id == cid)
                    .order_by(Message.created_at.desc())
                ).first()
                assert last is not None and last.status == Status.COMPLETE
                t = time.perf_counter()
                chain = runs.history(last.id)
                history_ms.append((time.perf_counter() - t) * 1000)
                assert len(chain) == runs.HISTORY_LIMIT
        out.append(
            [
                f"{size:,}",
                f"{statistics.median(post_ms):.1f}",
                f"{statistics.median(history_ms):.1f}",
            ]
        )
    with app.app_context():
        db.engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--seconds", type=float, default=5, help="length of each reply")
    args = parser.parse_args()
    lag, cost, send = [], [], []
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as folder, fresh_database(kind, Path(folder)) as url:
            lag += [[kind, *row] for row in lag_rows(url, folder, args.seconds)]
            cost += [[kind, *row] for row in append_cost_rows(url, folder)]
            send += [[kind, *row] for row in send_cost_rows(url, folder)]
    print("Persistence lag (delta leaves the provider → committed) and writes per run-second\n")
    header = ["db", "runs", "tokens/s each", "deltas", "lag p50 ms", "lag p99 ms", "lag max ms"]
    print(table([*header, "write txns / run-s", "write stmts / run-s"], lag))
    print("\nOne append (a write transaction) to a reply already this long\n")
    print(table(["db", "reply so far", "ms per append (median of 50)"], cost))
    print("\nA send into a long conversation (median of 7)\n")
    print(table(["db", "messages", "POST /c/<id>/messages ms", "runs.history() ms"], send))


if __name__ == "__main__":
    main()
