"""Long histories: is the cost of a conversation flat in its length?

For conversations of 100, 10,000 and 100,000 messages (``flask seed``'s text), the server time
of: the conversation page (``GET /c/<id>``, the newest window), the API's newest page
(``GET /api/v1/conversations/<id>``), an older page (``GET .../messages?before=<a message in the
middle>``) and sending one message (``POST .../messages``, the 202; the demo reply then runs
outside the timing), and the shared page of a share link of it (``GET /s/<id>``, every branch,
signed out). Then the sidebar: the new-chat page of a user with 100 conversations in one
project with 5 tags and of one with 10,000 in 100 projects with 50 tags, and an htmx page of
the sidebar from the middle of the 10,000's loose conversations.

Times are of the Flask test client calling the WSGI app in this process (no network): median
and p90 over ``--samples`` requests after a few warm-up ones, in ms, and each median's ratio to
the smallest case (goal: ≤ 1.2). Prints a Markdown table per database. Stops by itself.

Usage::

    .venv/bin/python -m bench.history [--db sqlite,postgres] [--samples 30]
        [--sizes 100,10000,100000] [--conversations 10000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from webchat import tree
from webchat.api import tokens
from webchat.auth import services as accounts
from webchat.conversations import paging
from webchat.extensions import db
from webchat.models import Conversation
from webchat.seed import organise, seed
from webchat.shares import services as shares

from .common import bench_app, p90, table
from .stream_server import fresh_database

WARMUP = 5


def timed(calls: dict, samples: int, after: Callable[[], None] | None = None) -> dict:
    """Wall times in ms of each of ``calls`` (``{key: call}``), ``samples`` each after ``WARMUP``
    untimed rounds. The calls take turns, so load from elsewhere on the machine falls on every
    key alike and their ratios stay fair; ``after`` runs untimed after each call."""
    times: dict = {key: [] for key in calls}
    for i in range(WARMUP + samples):
        for key, call in calls.items():
            started = time.perf_counter()
            response = call()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code >= 400:
                raise SystemExit(f"request failed with {response.status_code}: {response.data!r}")
            if after is not None:
                after()
            if i >= WARMUP:
                times[key].append(elapsed)
    return times


def wait_for_runs(app) -> None:
    for thread in list(app.extensions.get("webchat.run_threads", [])):
        thread.join(30)


def signed_in(app, user_id: int):
    """A test client whose session is signed in as ``user_id`` (Flask-Login's session key)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    return client


def prepare(app, sizes: list[int], conversations: int, kind: str) -> dict:
    """Accounts, a token, the seeded conversations, and the cursors the cases use."""
    with app.app_context():
        reader = accounts.create_user("reader@example.com", "benchmark")
        small = accounts.create_user("small@example.com", "benchmark")
        many = accounts.create_user("many@example.com", "benchmark")
        _row, token = tokens.create_token(reader, "bench")
        db.session.commit()
        ids = {}
        for size in sizes:
            started = time.perf_counter()
            (ids[size],) = seed(reader, messages=size, random_seed=size)
            took = time.perf_counter() - started
            print(f"[{kind}] seeded {size:,} messages in {took:.1f} s", flush=True)
        started = time.perf_counter()
        seed(small, messages=2, conversations=100, random_seed=1)
        seed(many, messages=2, conversations=conversations, random_seed=2)
        organise(small, projects=1, tags=5)
        organise(many, projects=100, tags=50)
        db.session.commit()
        took = time.perf_counter() - started
        print(f"[{kind}] seeded {conversations:,} conversations in {took:.1f} s", flush=True)
        middles = {}
        for size, cid in ids.items():
            conversation = db.session.get(Conversation, cid)
            path = tree.active_path(conversation) if conversation is not None else None
            items, _more = paging.newer(path, None, 1, offset=size // 2)
            middles[size] = str(items[0].id)
        loose = conversations // 101  # the many user's loose ones (1 in 101)
        middle_cursor = str(paging.conversations_page(many, limit=loose // 2, project=None)[1])
        share_ids = {}
        for size, cid in ids.items():
            conversation = db.session.get(Conversation, cid)
            assert conversation is not None
            share_ids[size] = shares.create_share(reader, conversation, all_branches=True).id
        db.session.commit()
        setup = {
            "token": token,
            "ids": ids,
            "middles": middles,
            "users": {"reader": reader.id, "small": small.id, "many": many.id},
            "middle_cursor": middle_cursor,
            "shares": share_ids,
        }
        db.session.remove()
    return setup


def time_conversations(app, setup: dict, samples: int) -> dict[str, dict[int, list[float]]]:
    """The four per-conversation cases, each timed for every size in turn."""
    bearer = {"Authorization": f"Bearer {setup['token']}"}
    api = app.test_client()
    page = signed_in(app, setup["users"]["reader"])
    ids, middles = setup["ids"], setup["middles"]
    return {
        "conversation page": timed(
            {size: (lambda cid=cid: page.get(f"/c/{cid}")) for size, cid in ids.items()}, samples
        ),
        "API: newest page": timed(
            {
                size: (lambda cid=cid: api.get(f"/api/v1/conversations/{cid}", headers=bearer))
                for size, cid in ids.items()
            },
            samples,
        ),
        "API: older page (?before=, middle)": timed(
            {
                size: (
                    lambda cid=cid, size=size: api.get(
                        f"/api/v1/conversations/{cid}/messages",
                        query_string={"before": middles[size], "limit": 50},
                        headers=bearer,
                    )
                )
                for size, cid in ids.items()
            },
            samples,
        ),
        "send one message (202)": timed(
            {
                size: (
                    lambda cid=cid: api.post(
                        f"/api/v1/conversations/{cid}/messages",
                        json={"content": "One more question about all of this."},
                        headers=bearer,
                    )
                )
                for size, cid in ids.items()
            },
            samples,
            after=lambda: wait_for_runs(app),
        ),
        "shared page (signed out, every branch)": timed(
            {
                size: (lambda share_id=share_id: api.get(f"/s/{share_id}"))
                for size, share_id in setup["shares"].items()
            },
            samples,
        ),
    }


def measure(kind: str, sizes: list[int], conversations: int, samples: int) -> list[list[str]]:
    """Seed a fresh database of ``kind`` and time every case; returns the table's rows."""
    with (
        tempfile.TemporaryDirectory(prefix="webchat-bench-history-") as folder,
        fresh_database(kind, Path(folder)) as url,
    ):
        app = bench_app(url, folder, DEMO_DELAY_MS=0, RATELIMIT_ENABLED=False)  # it sends fast
        setup = prepare(app, sizes, conversations, kind)
        results = time_conversations(app, setup, samples)
        rows = [_row(name, [cells[s] for s in sizes]) for name, cells in results.items()]

        small = signed_in(app, setup["users"]["small"])
        many = signed_in(app, setup["users"]["many"])
        sidebar = timed(
            {
                "small": lambda: small.get("/"),
                "many": lambda: many.get("/"),
                "deep": lambda: many.get(
                    "/",
                    query_string={"cursor": setup["middle_cursor"]},
                    headers={"HX-Request": "true"},
                ),
            },
            samples,
        )
        sidebar_small, sidebar_many, sidebar_deep = (
            sidebar["small"],
            sidebar["many"],
            sidebar["deep"],
        )
        gap: list[list[float] | None] = [None] * (len(sizes) - 2)
        rows.append(
            _row(
                f"sidebar: new-chat page (first column 100 conversations, 1 project, 5 tags; "
                f"last {conversations:,} in 100 projects, 50 tags)",
                [sidebar_small, *gap, sidebar_many],
            )
        )
        rows.append(
            _row(
                f"sidebar: htmx page from the middle of the loose ones of {conversations:,}",
                [None, *gap, sidebar_deep],
                base=sidebar_small,
            )
        )
        with app.app_context():
            db.engine.dispose()
    return rows


def _row(name: str, cells: list[list[float] | None], base: list[float] | None = None) -> list[str]:
    reference = statistics.median(base or next(c for c in cells if c))
    out = [name]
    for cell in cells:
        if cell is None:
            out.append("–")
            continue
        median = statistics.median(cell)
        out.append(f"{median:.1f} / {p90(cell):.1f} (×{median / reference:.2f})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres, or both")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--conversations", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for kind in args.db.split(","):
        rows = measure(kind, sizes, args.conversations, args.samples)
        print()
        print(f"### {kind}: server time in ms, median / p90 (× the smallest case's median)")
        print()
        header = ["case", *(f"{s:,} messages" for s in sizes)]
        print(table(header, rows))
        print()


if __name__ == "__main__":
    main()
