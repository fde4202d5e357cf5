"""Search latency over many stored messages, on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Fills a fresh database with ``--sizes`` messages (cumulatively: 100,000, then up to 1,000,000)
for one user, plus 10 % as many for a second user (so the index holds other people's rows too):
conversations of 100 messages, alternating user / assistant, 1 in 20 a tool result; text of
30–60 words drawn from a 50,000-word vocabulary with a Zipf distribution (s = 1.1), so some words
are in most messages and most words in few. Rows go in by batched multi-row INSERTs with the
search triggers on, so the index is built as the app builds it (the fill rate is printed too).

Then times :func:`webchat.search.search` (the function the page and the API call: ranking, the
user filter, snippets of the first page of 20) for queries of every selectivity: the most common
word, a common one, a medium one, a rare one, two words, a phrase, a word with a role filter,
a word only in tool results, a word in no message. Median and p90 in ms over ``--samples`` runs
each, after 3 warm-up runs, and over all queries together. Prints a Markdown table per database
and size. Stops by itself.

Usage::

    .venv/bin/python -m bench.search_bench [--db sqlite,postgres] [--sizes 100000,1000000]
        [--samples 20]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text

from webchat.extensions import db
from webchat.models import Conversation, Message, User, new_id
from webchat.search import Filters, Results, search

from .common import bench_app, p90
from .stream_server import fresh_database

VOCABULARY = 50_000
PER_CONVERSATION = 100
BATCH = 2_000
WARMUP = 3
SYLLABLES = [a + b for a in "bcdfghjklmnprstvz" for b in "aeiou"]


def vocabulary(rng: random.Random) -> list[str]:
    """50,000 distinct pronounceable words (2–4 syllables), in rank order."""
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words["".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))] = None
    return list(words)


class Texts:
    """Zipf-distributed text over :func:`vocabulary`."""

    def __init__(self, seed: int = 6) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        weights = [1 / (rank**1.1) for rank in range(1, VOCABULARY + 1)]
        self.cumulative = list(itertools.accumulate(weights))

    def text(self) -> str:
        k = self.rng.randint(30, 60)
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=k))


def fill(user: User, count: int, texts: Texts, start: datetime) -> None:
    """Add ``count`` messages for ``user`` in conversations of :data:`PER_CONVERSATION`."""
    conversations, messages = [], []

    def flush() -> None:
        if conversations:
            db.session.execute(insert(Conversation), conversations)
        if messages:
            db.session.execute(insert(Message), messages)
        db.session.commit()
        conversations.clear()
        messages.clear()

    for c in range(count // PER_CONVERSATION):
        cid = new_id()
        at = start + timedelta(minutes=c)
        conversations.append(
            {
                "id": cid,
                "user_id": user.id,
                "title": " ".join(texts.text().split()[:5]),
                "model": "demo/echo" if c % 3 else "openai/gpt-4o",
                "meta": {},
                "pinned": False,
                "created_at": at,
                "updated_at": at,
            }
        )
        parent = None
        for i in range(PER_CONVERSATION):
            mid = new_id()
            role = "tool" if i % 20 == 19 else ("user" if i % 2 == 0 else "assistant")
            row = {
                "id": mid,
                "conversation_id": cid,
                "parent_id": parent,
                "role": role,
                "content": texts.text(),
                "status": "complete",
                "tool_name": None,
                "tool_result": None,
                "meta": {},
                "created_at": at + timedelta(seconds=i),
                "updated_at": at + timedelta(seconds=i),
            }
            if role == "tool":
                row["tool_name"] = "search_web"
                row["tool_result"] = {"result": "zyzzyvaresult " + texts.text(), "error": None}
                row["content"] = "ok"
            messages.append(row)
            parent = mid
        if len(messages) >= BATCH:
            flush()
    flush()


def analyze() -> None:
    """Refresh the planner's statistics after the bulk fill, as autovacuum (PostgreSQL) would
    soon do by itself; SQLite's ``ANALYZE`` likewise."""
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def queries(texts: Texts) -> list[tuple[str, str, Filters]]:
    words = texts.words
    return [
        ("most common word", words[0], Filters()),
        ("common word (rank 100)", words[99], Filters()),
        ("medium word (rank 3,000)", words[2999], Filters()),
        ("rare word (rank 45,000)", words[44999], Filters()),
        ("two common words", f"{words[10]} {words[50]}", Filters()),
        ("phrase of two words", f'"{words[0]} {words[1]}"', Filters()),
        ("common word, role=assistant", words[99], Filters(roles=("assistant",))),
        ("word only in tool results", "zyzzyvaresult", Filters()),
        ("word in no message", "qqqxxqqq", Filters()),
    ]


def measure(user: User, q: str, filters: Filters, samples: int) -> tuple[list[float], Results]:
    """``samples`` times (ms) of one search's first page, after :data:`WARMUP`; its results."""
    times = []
    for i in range(WARMUP + samples):
        started = time.perf_counter()
        results = search(user, q, filters, limit=20)
        elapsed = (time.perf_counter() - started) * 1000
        db.session.rollback()
        if i >= WARMUP:
            times.append(elapsed)
    return times, results


def run(kind: str, sizes: list[int], samples: int) -> None:
    texts = Texts()
    folder = Path(tempfile.mkdtemp(prefix="webchat-search-bench-"))
    with fresh_database(kind, folder) as url:
        app = bench_app(url, folder)
        with app.app_context():
            ada, bob = User(email="ada@example.com"), User(email="bob@example.com")
            for user in (ada, bob):
                user.set_password("correct horse")
                db.session.add(user)
            db.session.commit()
            stored = 0
            start = datetime(2024, 1, 1, tzinfo=UTC)
            for size in sizes:
                began = time.perf_counter()
                fill(ada, size - stored, texts, start + timedelta(days=stored // 1000))
                fill(bob, (size - stored) // 10, texts, start)
                seconds = time.perf_counter() - began
                analyze()
                added = (size - stored) * 11 // 10
                stored = size
                total = db.session.scalar(select(func.count()).select_from(Message))
                print(
                    f"\n### {kind}: {size:,} messages of the searching user "
                    f"({total:,} stored in all)\n\nfilled at {added / seconds:,.0f} messages/s "
                    f"(search triggers on)\n"
                )
                print("| query | matches ranked | median ms | p90 ms |")
                print("| --- | --- | ---: | ---: |")
                every: list[float] = []
                for label, q, filters in queries(texts):
                    times, results = measure(ada, q, filters, samples)
                    every += times
                    ranked = "newest 10,000" if results.windowed else "all"
                    ranked = ranked if results.items else "none match"
                    median = statistics.median(times)
                    print(f"| {label} | {ranked} | {median:.1f} | {p90(times):.1f} |")
                print(
                    f"| **all queries** | | **{statistics.median(every):.1f}** | "
                    f"**{p90(every):.1f}** |"
                )
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    for kind in args.db.split(","):
        run(kind, sizes, args.samples)


if __name__ == "__main__":
    main()
