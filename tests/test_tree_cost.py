"""Reading the tree does work that doesn't grow: opening a conversation, switching branches
(to one near the root, back to the long line from it, to one in the middle and at the end),
paging older along the active path, and regenerating do the same work in a conversation of
10,000 messages as in one of 100, each with 20 branch points spread from the root to the end.

Work is counted, not timed (as in ``test_streaming_writes``): the statements each operation
runs, the rows its reads return (each read run again, just before it, on the same connection),
and for every distinct read the rows PostgreSQL's plan touches or the steps SQLite takes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select

from webchat.conversations import paging, services
from webchat.extensions import db
from webchat.models import Conversation, Status, User
from webchat.seed import branch_prompts, seed
from webchat.streaming import runs, store

from .conftest import sign_up
from .test_streaming_writes import query_work

SIZES = (100, 10_000)
BRANCHES = 20
CONTEXT = 40  # messages of context read by a regenerated run here (both sizes hold more)
READ = re.compile(r"\s*(SELECT|WITH)\b", re.I)
WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b", re.I)


@dataclass
class Work:
    """What one operation asked of the database."""

    statements: list[tuple[str, Any]] = field(default_factory=list)  # (SQL, parameters)
    rows: int = 0  # rows its reads returned

    def reads(self) -> dict[str, int]:
        """Each distinct read's work (:func:`query_work`, the most of its executions)."""
        work: dict[str, int] = {}
        for statement, parameters in self.statements:
            if READ.match(statement) and not WRITE.search(statement):
                work[statement] = max(work.get(statement, 0), query_work(statement, parameters))
        return work


@contextmanager
def recorded() -> Iterator[Work]:
    """Record the statements of the app's engine, counting the rows each read returns."""
    work = Work()

    def execute(conn, cursor, statement, parameters, context, executemany) -> None:
        work.statements.append((statement, parameters))
        if executemany or not READ.match(statement) or WRITE.search(statement):
            return
        probe = cursor.connection.cursor()
        try:
            probe.execute(statement, parameters)
            work.rows += len(probe.fetchall())
        finally:
            probe.close()

    event.listen(db.engine, "before_cursor_execute", execute)
    try:
        yield work
    finally:
        event.remove(db.engine, "before_cursor_execute", execute)


@dataclass
class Seeded:
    """A seeded conversation and the messages the operations start from."""

    id: uuid.UUID
    user_id: int
    tail: uuid.UUID  # the long line's last message
    edits: list[uuid.UUID]  # the edited prompts (a branch each), oldest first
    originals: list[uuid.UUID]  # the long line's prompt each edit is a version of


def seeded(app, email: str, messages: int) -> Seeded:
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        (cid,) = seed(user, messages=messages, branches=BRANCHES, random_seed=messages)
        conversation = db.session.get(Conversation, cid)
        assert conversation is not None and conversation.active_message_id is not None
        prompts = branch_prompts(cid)
        assert len(prompts) == BRANCHES
        return Seeded(
            cid,
            user.id,
            conversation.active_message_id,
            [edit for edit, _ in prompts],
            [original for _, original in prompts],
        )


def in_request(app, action: Callable[[User], Any]) -> tuple[Any, Work]:
    """Run ``action(user)`` as a request would (its own app context and session, one commit),
    recording its work; the user is loaded before, as Flask-Login does it."""
    with app.app_context():
        user = db.session.get(User, db.session.scalar(select(User.id)))
        assert user is not None
        with recorded() as work:
            result = action(user)
            db.session.commit()
        return result, work


def operations(app, client, conversation: Seeded) -> dict[str, Work]:
    """The work of each operation on ``conversation``, in the order a person might do them."""
    cid = conversation.id
    done: dict[str, Work] = {}
    limit = app.config["PAGE_SIZE"]

    def get(name: str, **query: str) -> str:
        htmx = {"HX-Request": "true"} if query else {}
        with app.app_context(), recorded() as work:
            response = client.get(f"/c/{cid}", query_string=query, headers=htmx)
        assert response.status_code == 200, (name, response.status_code)
        done[name] = work
        return response.get_data(as_text=True)

    def older_than_window() -> dict[str, str]:
        with app.app_context():
            found = db.session.get(Conversation, cid)
            assert found is not None
            window = paging.window(found, limit=limit)
            assert window.older is not None and len(window.messages) >= limit
            return {"before": str(window.older.id)}

    def switch(name: str, message_id: uuid.UUID) -> uuid.UUID:
        def action(user: User) -> uuid.UUID:
            found = services.owned_conversation(user, cid)
            return services.switch_branch(found, services.owned_message(user, message_id))

        leaf, done[name] = in_request(app, action)
        return leaf

    def regenerate(name: str, edit: uuid.UUID) -> None:
        """Another reply to the branch's edited prompt: the request, up to the run's first read
        of its context; the run is then ended without a provider."""

        def action(user: User) -> uuid.UUID:
            run = services.regenerate(services.owned_message(user, edit))
            db.session.commit()
            assert run.message_id is not None
            context = runs.history(run.message_id, CONTEXT)
            assert context[-1].id == run.message_id and context[-2].id == edit
            return run.id

        run_id, done[name] = in_request(app, action)
        with app.app_context():
            store.finish(run_id, Status.CANCELLED)

    root, middle, end = 0, BRANCHES // 2, BRANCHES - 1
    page = get("open")
    assert f'id="m-{conversation.tail}"' in page
    get("page older", **older_than_window())
    assert switch("switch to a branch near the root", conversation.edits[root]) != conversation.tail
    get("open on a branch near the root")
    leaf = switch("switch back to the long line", conversation.originals[root])
    assert leaf == conversation.tail  # the newest leaf under the original prompt
    switch("switch to a branch in the middle", conversation.edits[middle])
    get("open on a branch in the middle")
    get("page older on a branch in the middle", **older_than_window())
    switch("switch to a branch at the end", conversation.edits[end])
    get("open on a branch at the end")
    for name, index in (("near the root", root), ("in the middle", middle), ("at the end", end)):
        regenerate(f"regenerate {name}", conversation.edits[index])
    return done


def test_tree_reads_do_the_same_work_at_100_and_10000_messages(make_app):
    # Pages of 10 messages, so that even the short conversation has a full page before a
    # branch in its middle.
    app = make_app(PAGE_SIZE=10)
    client = app.test_client()
    sign_up(client)
    short, long = (seeded(app, "ada@example.com", size) for size in SIZES)  # both in the sidebar
    assert_same_work(app, operations(app, client, short), operations(app, client, long))


def assert_same_work(
    app,
    small: dict[str, Work],
    large: dict[str, Work],
    rows_slack: int = 0,
    exempt: Callable[[str, int], bool] = lambda sql, work: False,
) -> None:
    """Each operation of ``large`` ran the same statements as in ``small``, its reads returned
    at most ``rows_slack`` rows more, and no read's work grew past twice + 100 (unless
    ``exempt(sql, work)``)."""
    assert small.keys() == large.keys()
    statements = {
        name: (len(small[name].statements), len(large[name].statements))
        for name in small
        if len(large[name].statements) != len(small[name].statements)
    }
    assert statements == {}, "operations whose number of statements changed"
    rows = {
        name: (small[name].rows, large[name].rows)
        for name in small
        if large[name].rows > small[name].rows + rows_slack
    }
    assert rows == {}, "operations whose reads return more rows in the larger case"
    with app.app_context():
        grown = {}
        for name in small:
            few, many = small[name].reads(), large[name].reads()
            assert set(few) == set(many), name  # the same reads
            for sql in few:
                if many[sql] > 2 * few[sql] + 100 and not exempt(sql, many[sql]):
                    grown[(name, sql)] = (few[sql], many[sql])
    assert grown == {}, "reads whose work grows with the size"
