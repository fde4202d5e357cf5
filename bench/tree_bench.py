"""The conversation as a tree: is reading a path flat in the conversation's length?

For conversations of 100, 10,000 and 100,000 messages (``flask seed`` text) with 1,000 branch
points each (an edited prompt and its reply; as many as fit in 100 messages: 49), spread from
the root to the end, the time and the statements of:

- opening the conversation (``GET /c/<id>``, the newest window of the long line);
- switching back to the long line from the branch nearest the root (``services.switch_branch``
  on the original prompt at depth 2: the newest leaf under it is the long line's tail);
- switching to the branch in the middle;
- paging older along the active path (``GET /c/<id>?before=``, the htmx fragment);
- regenerating the last reply: the request (``services.regenerate`` and its commit) up to the
  run's first read of its context (``runs.history``, ``HISTORY_LIMIT`` messages).

Pages go through the Flask test client in this process (no network); switching and
regenerating call the services as their views would (owned rows, the service, one commit),
since their routes belong to the UI. Each case is put back between samples (untimed), so every
sample starts from the same tree. Median and p90 over ``--samples`` after a few warm-up rounds,
in ms, and the statements one operation runs. Prints a Markdown table per database.

Usage::

    .venv/bin/python -m bench.tree_bench [--db sqlite,postgres] [--samples 30]
        [--sizes 100,10000,100000] [--branches 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from webchat import tree
from webchat.auth import services as accounts
from webchat.conversations import paging, services
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Status, User
from webchat.seed import branch_prompts, seed
from webchat.streaming import runs, store

from .common import bench_app, p90, table
from .history import signed_in
from .stream_server import fresh_database

WARMUP = 3
CASES = (
    "open the conversation",
    "switch back to the long line from a branch near the root",
    "switch to a branch in the middle",
    "page older (htmx fragment)",
    "regenerate the last reply (up to the run's first context read)",
)


@dataclass
class Tree:
    """A seeded conversation and the messages the cases start from."""

    id: uuid.UUID
    tail: uuid.UUID  # the long line's last message (the active leaf)
    last_reply: uuid.UUID
    near_root: tuple[uuid.UUID, uuid.UUID]  # (the edited prompt, the original) nearest the root
    middle: uuid.UUID  # the edited prompt of the middle branch
    before: str  # the cursor of the page older than the newest window
    branch_points: int


class Counter:
    """Statements ``engine`` runs while counting."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.count = engine, 0
        event.listen(engine, "before_cursor_execute", self._execute)

    def _execute(self, *args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._execute)


def prepare(app, user_id: int, size: int, branches: int, kind: str) -> Tree:
    """Seed one conversation of ``size`` messages with ``branches`` branch points."""
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        started = time.perf_counter()
        (cid,) = seed(user, messages=size, branches=branches, random_seed=size)
        took = time.perf_counter() - started
        conversation = db.session.get(Conversation, cid)
        assert conversation is not None and conversation.active_message_id is not None
        prompts = branch_prompts(cid)
        window = paging.window(conversation, limit=app.config["PAGE_SIZE"])
        assert window.older is not None
        tail = conversation.active_message_id
        leaf = db.session.get(Message, tail)
        assert leaf is not None and leaf.role == Role.ASSISTANT
        print(
            f"[{kind}] seeded {size:,} messages, {len(prompts):,} branch points, in {took:.1f} s",
            flush=True,
        )
        return Tree(
            cid,
            tail,
            tail,
            prompts[0],
            prompts[len(prompts) // 2][0],
            str(window.older.id),
            len(prompts),
        )


def as_request(app, user_id: int, action: Callable[[User], Any]) -> Callable[[], Any]:
    """``action(user)`` run as a request would: its own app context, one commit."""

    def call() -> Any:
        with app.app_context():
            user = db.session.get(User, user_id)
            assert user is not None
            result = action(user)
            db.session.commit()
            return result

    return call


def cases(app, client, user_id: int, t: Tree) -> dict[str, tuple[Callable, Callable | None]]:
    """Each case as ``(timed call, untimed reset)``; every call starts from the long line."""

    def put_back(leaf_id: uuid.UUID) -> Callable[[], None]:
        def reset() -> None:
            with app.app_context():
                tree.set_active(t.id, leaf_id)
                db.session.commit()

        return reset

    def switch(message_id: uuid.UUID) -> Callable[[User], uuid.UUID]:
        def action(user: User) -> uuid.UUID:
            conversation = services.owned_conversation(user, t.id)
            return services.switch_branch(conversation, services.owned_message(user, message_id))

        return action

    def regenerate(user: User) -> uuid.UUID:
        run = services.regenerate(services.owned_message(user, t.last_reply))
        db.session.commit()
        assert run.message_id is not None
        runs.history(run.message_id)
        return run.id

    def end_run_and_put_back() -> None:
        with app.app_context():
            run_id = db.session.scalars(
                select(Message.run_id).where(
                    Message.conversation_id == t.id, Message.status == Status.PENDING
                )
            ).first()
            if run_id is not None:
                store.finish(run_id, Status.CANCELLED)
        put_back(t.tail)()

    def page(**query: str) -> Callable[[], Any]:
        headers = {"HX-Request": "true"} if query else {}

        def call() -> Any:
            response = client.get(f"/c/{t.id}", query_string=query, headers=headers)
            assert response.status_code == 200, response.status_code
            return response

        return call

    near_edit, near_original = t.near_root
    switch_back = as_request(app, user_id, switch(near_original))

    def reset_to_near_branch() -> None:
        put_back(t.tail)()  # the next sample starts on the branch near the root again
        as_request(app, user_id, switch(near_edit))()

    return {
        CASES[0]: (page(), None),
        CASES[1]: (switch_back, reset_to_near_branch),
        CASES[2]: (as_request(app, user_id, switch(t.middle)), put_back(t.tail)),
        CASES[3]: (page(before=t.before), None),
        CASES[4]: (as_request(app, user_id, regenerate), end_run_and_put_back),
    }


def measure_case(
    engine: Any, call: Callable, reset: Callable | None, samples: int
) -> tuple[list[float], int]:
    """Times in ms of ``samples`` calls (after :data:`WARMUP`), and the statements of one."""
    times, counts = [], []
    if reset is not None:
        reset()
    for i in range(WARMUP + samples):
        counter = Counter(engine)
        try:
            started = time.perf_counter()
            call()
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            counter.close()
        if reset is not None:
            reset()
        if i >= WARMUP:
            times.append(elapsed)
            counts.append(counter.count)
    return times, int(statistics.median(counts))


def measure(kind: str, sizes: list[int], branches: int, samples: int) -> list[list[str]]:
    """Seed a fresh database of ``kind``, run every case at every size; the table's rows."""
    with (
        tempfile.TemporaryDirectory(prefix="webchat-bench-tree-") as folder,
        fresh_database(kind, Path(folder)) as url,
    ):
        app = bench_app(url, folder, DEMO_DELAY_MS=0)
        with app.app_context():
            user_id = accounts.create_user("tree@example.com", "benchmark").id
            db.session.commit()
            engine = db.engine
        trees = {size: prepare(app, user_id, size, branches, kind) for size in sizes}
        client = signed_in(app, user_id)
        cells: dict[str, list[str]] = {name: [] for name in CASES}
        for size in sizes:
            with app.app_context():  # check the starting state once
                leaf = services.switch_branch(
                    db.session.get(Conversation, trees[size].id),  # type: ignore[arg-type]
                    db.session.get(Message, trees[size].near_root[1]),  # type: ignore[arg-type]
                )
                assert leaf == trees[size].tail
                db.session.commit()
            for name, (call, reset) in cases(app, client, user_id, trees[size]).items():
                times, statements = measure_case(engine, call, reset, samples)
                cells[name].append(
                    f"{statistics.median(times):.1f} / {p90(times):.1f} · {statements}"
                )
        with app.app_context():
            db.engine.dispose()
    points = ", ".join(f"{trees[s].branch_points:,}" for s in sizes)
    print(f"[{kind}] branch points: {points}", flush=True)
    return [[name, *cells[name]] for name in CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres, or both")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--branches", type=int, default=1000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for kind in args.db.split(","):
        rows = measure(kind, sizes, args.branches, args.samples)
        print()
        print(f"### {kind}: ms, median / p90 · statements per operation")
        print()
        print(table(["case", *(f"{s:,} messages" for s in sizes)], rows))
        print()


if __name__ == "__main__":
    main()
