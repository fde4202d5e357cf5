"""``flask seed``: conversations full of complete messages, for benchmarks and for trying limits.

Each conversation gets N messages alternating user / assistant, ~300 characters of varied text
each (assistant text with some Markdown), one second apart and ending now, each the parent of
the next; each assistant message has the finished run that wrote it, as in a real conversation.
Assistant messages carry their sanitized HTML, rendered once per distinct text (the texts come
from a pool of a few hundred), so pages of seeded conversations do no Markdown work.

Rows go in by multi-row ``INSERT … VALUES`` statements of :data:`BATCH` rows: a hundred
statements for 100,000 messages, and on PostgreSQL one firing of the statement triggers of
``messages`` per statement (see migration 0003).
"""

from __future__ import annotations

import itertools
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import insert, select, update

from . import tree
from .auth import services as accounts
from .extensions import db
from .models import (
    Conversation,
    Message,
    Project,
    Role,
    Run,
    Status,
    Tag,
    User,
    conversation_tags,
    new_id,
    utcnow,
)
from .rendering import render_markdown

BATCH = 1000  # rows per INSERT statement (14 columns: well under SQLite's 32,766 variables)
COMMIT_EVERY = 20_000  # messages per transaction
POOL = 499  # distinct texts per role (a prime, so user and assistant texts pair up variously)

_WORD_TEXT = (
    "about above across after again air along also always answer around ask back because "
    "before begin best better between both build call came change check city close cold come "
    "could country cover cross cut data day deep did different does done door down draw during "
    "each early earth east easy end enough even every example eye face fact fall family far "
    "fast feel field figure find fire first fish five follow food form found four free friend "
    "full game gave give good great green ground group grow hand hard head hear heat help here "
    "high hold home horse house idea important inside island just keep kind knew know land large "
    "last late learn leave left less letter life light line list little live long look made main "
    "make many map mark mean measure might mile mind minute model money moon more morning most "
    "mountain move much music must name near need never next night north note nothing notice "
    "number object ocean often once only open order other over page paper part pattern people "
    "picture piece place plain plan plant point power press problem product pull question quick "
    "rain reach read ready real record remember rest right river road rock room round rule run "
    "same say science sea second see seem sentence serve set shape ship short should show side "
    "simple since size sleep slow small snow some song soon sound south space special spell "
    "stand star start state step still stood stop story street strong study such sun sure "
    "surface system table tail take talk teach test than thing think those thought three through "
    "time together told took top toward town travel tree true try turn under unit until upon use "
    "usual very voice vowel wait walk want warm watch water wave week weight west wheel where "
    "while white whole wind winter wish with without wonder wood word work world write year young"
)
_WORDS = tuple(_WORD_TEXT.split())


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(6, 16))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def _paragraph(rng: random.Random, chars: int) -> str:
    sentences: list[str] = []
    while sum(len(s) + 1 for s in sentences) < chars:
        sentences.append(_sentence(rng))
    return " ".join(sentences)


def _user_text(rng: random.Random) -> str:
    return _paragraph(rng, rng.randint(200, 380))


def _assistant_text(rng: random.Random) -> str:
    """~300 characters with some Markdown: emphasis, a list, inline code or a code block."""
    shape = rng.randrange(4)
    if shape == 0:
        word = rng.choice(_WORDS)
        return f"**{word.title()}.** " + _paragraph(rng, rng.randint(180, 320))
    if shape == 1:
        items = "\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 4)))
        return _paragraph(rng, rng.randint(80, 160)) + "\n\n" + items
    if shape == 2:
        name = "_".join(rng.choices(_WORDS, k=2))
        code = f"def {name}(x):\n    return x * {rng.randint(2, 99)}\n"
        return _paragraph(rng, rng.randint(120, 220)) + f"\n\n```python\n{code}```"
    word = rng.choice(_WORDS)
    return (
        _paragraph(rng, rng.randint(120, 200))
        + f" Use `{word}()` for that. "
        + (_paragraph(rng, rng.randint(60, 120)))
    )


class _Texts:
    """Pools of user and assistant texts, and each assistant text's HTML rendered once."""

    def __init__(self, rng: random.Random, model: str) -> None:
        self.rng = rng
        self.model = model
        self.user = [_user_text(rng) for _ in range(POOL)]
        self.assistant = [_assistant_text(rng) for _ in range(POOL)]
        self._html: dict[str, str] = {}

    def html(self, text: str) -> str:
        if text not in self._html:
            self._html[text] = render_markdown(text)
        return self._html[text]


def _row(
    texts: _Texts,
    conversation_id: uuid.UUID,
    mid: uuid.UUID,
    parent: uuid.UUID | None,
    role: str,
    content: str,
    at: datetime,
) -> dict:
    return {
        "id": mid,
        "conversation_id": conversation_id,
        "parent_id": parent,
        "run_id": None,
        "role": role,
        "content": content,
        "content_html": texts.html(content) if role == Role.ASSISTANT else None,
        "tool_name": None,
        "tool_call": None,
        "tool_result": None,
        "status": Status.COMPLETE,
        "error": None,
        "metadata": {"seeded": True},
        "created_at": at,
        "updated_at": at,
    }


class _MessageRows:
    """The rows of ``count`` messages ending at ``end``, one second apart, each the parent of the
    next; an assistant message's row carries the ``run`` that wrote it (see :func:`_run_row`).
    Once iterated, ``tail`` is the last message's id and ``branch_points`` the ``(id,
    created_at)`` of the messages at ``branch_depths``."""

    def __init__(
        self,
        texts: _Texts,
        conversation_id: uuid.UUID,
        count: int,
        end: datetime,
        branch_depths: set[int],
    ) -> None:
        self.texts, self.conversation_id, self.count, self.end = texts, conversation_id, count, end
        self.branch_depths = branch_depths
        self.tail: uuid.UUID | None = None
        self.branch_points: list[tuple[uuid.UUID, datetime]] = []

    def __iter__(self) -> Iterator[dict]:
        texts = self.texts
        start = self.end - timedelta(seconds=self.count)
        for i in range(self.count):
            role = Role.USER if i % 2 == 0 else Role.ASSISTANT
            pool = texts.user if role == Role.USER else texts.assistant
            at = start + timedelta(seconds=i + 1)
            mid = new_id()
            row = _row(
                texts,
                self.conversation_id,
                mid,
                self.tail,
                role,
                pool[texts.rng.randrange(POOL)],
                at,
            )
            if role == Role.ASSISTANT:
                row["run"] = _run_row(self.conversation_id, mid, self.tail, texts.model, at)
            if i in self.branch_depths:
                self.branch_points.append((mid, at))
            yield row
            self.tail = mid


_message_rows = _MessageRows


def _run_row(
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    user_message_id: uuid.UUID | None,
    model: str,
    at: datetime,
) -> dict:
    """A finished run that wrote ``message_id`` in answer to ``user_message_id``, as a real
    conversation has one per reply."""
    return {
        "id": new_id(),
        "conversation_id": conversation_id,
        "message_id": message_id,
        "user_message_id": user_message_id,
        "model": model,
        "status": Status.COMPLETE,
        "cancel_requested": False,
        "worker": None,
        "error": None,
        "heartbeat_at": at,
        "created_at": at,
        "finished_at": at,
    }


def _batched_insert(table):
    """An ``INSERT`` that, given many rows, runs as multi-row statements of :data:`BATCH` rows
    (SQLAlchemy's "insertmanyvalues", used for executemany with ``RETURNING``): compiled once,
    and few statements, so PostgreSQL fires each statement trigger once per batch."""
    return insert(table).returning(table.c.id).execution_options(insertmanyvalues_page_size=BATCH)


def seed(
    user: User,
    *,
    messages: int,
    conversations: int = 1,
    random_seed: int | None = None,
    on_commit=None,
    branches: int = 0,
) -> list[uuid.UUID]:
    """Create ``conversations`` conversations of ``user`` with ``messages`` complete messages
    each; returns their ids, newest activity last. Commits every ~20,000 messages (calling
    ``on_commit(ids)`` with the ids committed so far).

    ``branches`` spreads that many branch points over each conversation: an assistant message
    whose next prompt has an edited version (a sibling) with a reply of its own, two messages
    more per branch point. The active path is the long line."""
    model = current_app.config["DEFAULT_MODEL"]
    texts = _Texts(random.Random(random_seed), model)
    now = utcnow()
    ids: list[uuid.UUID] = []
    conversation_rows: list[dict] = []
    message_rows: list[dict] = []
    pending = 0

    def flush(commit: bool) -> None:
        nonlocal pending
        # Messages and runs refer to each other: messages first, then their runs, then the
        # messages' run_id in one UPDATE … FROM.
        run_rows = [row.pop("run") for row in message_rows if "run" in row]
        run_ids = [row["id"] for row in run_rows]
        by_conversation: dict[uuid.UUID, list[dict]] = {}
        for row in message_rows:
            by_conversation.setdefault(row["conversation_id"], []).append(row)
        if conversation_rows:
            db.session.execute(_batched_insert(Conversation.__table__), conversation_rows)
            conversation_rows.clear()
        for cid, rows in by_conversation.items():
            tree.place_rows(cid, rows)
        for table, rows in (
            (Message.__table__, message_rows),
            (Run.__table__, run_rows),
        ):
            if rows:
                db.session.execute(_batched_insert(table), rows)
                rows.clear()
        for start in range(0, len(run_ids), BATCH):
            batch = run_ids[start : start + BATCH]
            db.session.execute(
                update(Message)
                .where(Message.id == Run.message_id, Run.id.in_(batch))
                .values(run_id=Run.id)
                .execution_options(synchronize_session=False)
            )
        if commit:
            db.session.commit()
            pending = 0
            if on_commit is not None:
                on_commit(list(ids))

    for index in range(conversations):
        cid = new_id()
        end = now - timedelta(minutes=conversations - 1 - index)
        first = end - timedelta(seconds=messages)
        conversation_rows.append(
            {
                "id": cid,
                "user_id": user.id,
                "title": f"Seeded conversation {index + 1} · {messages:,} messages",
                "model": model,
                "system_prompt": None,
                "metadata": {"seeded": True},
                "pinned": False,
                "archived_at": None,
                "deleted_at": None,
                "created_at": first,
                "updated_at": end,
            }
        )
        ids.append(cid)
        main = _message_rows(texts, cid, messages, end, _branch_depths(messages, branches))
        for row in itertools.chain(main, _branch_rows(texts, cid, main)):
            message_rows.append(row)
            pending += 1
            if len(message_rows) >= BATCH * 5:
                flush(commit=pending >= COMMIT_EVERY)
        flush(commit=False)
        tree.set_active(cid, main.tail)
        if len(conversation_rows) >= BATCH:
            flush(commit=False)
    flush(commit=True)
    return ids


def _branch_depths(count: int, branches: int) -> set[int]:
    """Depths of ``branches`` assistant messages spread evenly over a chain of ``count``, each
    to get an edited next prompt (a branch point)."""
    if count < 2 or branches <= 0:
        return set()
    odd = list(range(1, count - 1, 2))  # assistant messages with a prompt after them
    step = max(1, len(odd) / branches)
    return {odd[int(k * step)] for k in range(min(branches, len(odd)))}


def _branch_rows(texts: _Texts, conversation_id: uuid.UUID, main: _MessageRows) -> Iterator[dict]:
    """For each branch point of ``main`` (read after it is consumed): an edited prompt (a
    sibling of the prompt that follows it, half a second older) and a reply to it."""
    for parent_id, at in main.branch_points:
        edited = new_id()
        reply = new_id()
        content = texts.user[texts.rng.randrange(POOL)]
        answer = texts.assistant[texts.rng.randrange(POOL)]
        for mid, pid, role, text, when in (
            (edited, parent_id, Role.USER, content, at + timedelta(milliseconds=500)),
            (reply, edited, Role.ASSISTANT, answer, at + timedelta(milliseconds=750)),
        ):
            row = _row(texts, conversation_id, mid, pid, role, text, when)
            row["metadata"] = {"seeded": True, "branch": True}
            if role == Role.ASSISTANT:
                row["run"] = _run_row(conversation_id, mid, pid, texts.model, when)
            yield row


def branch_prompts(conversation_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``(edited prompt, original prompt)`` ids of each branch point :func:`seed` made in the
    conversation, nearest the root first: the edit starts a branch, the original is the long
    line's prompt it is a version of (a sibling). For benchmarks and tests."""
    edits = db.session.execute(
        select(Message.id, Message.parent_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.meta["branch"].as_boolean(),
            Message.role == Role.USER,
        )
        .order_by(Message.depth)
    ).all()
    originals = dict(
        db.session.execute(
            select(Message.parent_id, Message.id).where(
                Message.parent_id.in_([e.parent_id for e in edits]),
                Message.id.not_in([e.id for e in edits]),
            )
        ).all()
    )
    return [(e.id, originals[e.parent_id]) for e in edits]


def organise(user: User, *, projects: int, tags: int, random_seed: int = 0) -> None:
    """Spread the user's conversations over ``projects`` new projects (one in ``projects + 1``
    left loose) and give each one to three of ``tags`` new tags, by multi-row statements: the
    projects' and tags' rows, one UPDATE per project, the tag links inserted 5,000 at a time.
    For benchmarks and the work-counting tests of the sidebar. Flush only."""
    rng = random.Random(random_seed)
    now = utcnow()
    project_ids = [new_id() for _ in range(projects)]
    tag_ids = [new_id() for _ in range(tags)]
    if project_ids:
        db.session.execute(
            insert(Project),
            [
                {"id": pid, "user_id": user.id, "name": f"Project {i + 1:03d}",
                 "created_at": now, "updated_at": now}
                for i, pid in enumerate(project_ids)
            ],
        )  # fmt: skip
    if tag_ids:
        db.session.execute(
            insert(Tag),
            [
                {"id": tid, "user_id": user.id, "name": f"tag-{i + 1:02d}", "created_at": now}
                for i, tid in enumerate(tag_ids)
            ],
        )
    conversation_ids = list(
        db.session.scalars(select(Conversation.id).where(Conversation.user_id == user.id))
    )
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    for index, cid in enumerate(conversation_ids):
        slot = index % (projects + 1)
        if slot < projects:
            groups.setdefault(project_ids[slot], []).append(cid)
    for pid, members in groups.items():
        for start in range(0, len(members), 5_000):
            db.session.execute(
                update(Conversation)
                .where(Conversation.id.in_(members[start : start + 5_000]))
                .values(project_id=pid)
                .execution_options(synchronize_session=False)
            )
    links = [
        {"conversation_id": cid, "tag_id": tid}
        for cid in conversation_ids
        for tid in (rng.sample(tag_ids, min(3, len(tag_ids))) if tag_ids else [])
    ]
    for start in range(0, len(links), 5_000):
        db.session.execute(insert(conversation_tags), links[start : start + 5_000])
    db.session.flush()


@click.command("seed")
@with_appcontext
@click.argument("email")
@click.option(
    "--messages",
    "-n",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Messages in each conversation.",
)
@click.option(
    "--conversations",
    "-c",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many conversations.",
)
@click.option("--random-seed", type=int, default=None, help="The same text for the same seed.")
@click.option(
    "--branches",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Branch points spread over each conversation (an edited prompt and its reply each).",
)
def seed_command(
    email: str, messages: int, conversations: int, random_seed: int | None, branches: int
) -> None:
    """Fill an account with conversations of complete messages; prints their ids."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"No account with the email {email}.")
    started = time.perf_counter()
    printed = 0

    def echo_new(ids: list[uuid.UUID]) -> None:
        nonlocal printed
        for cid in ids[printed:]:
            click.echo(str(cid))
        printed = len(ids)

    seed(
        user,
        messages=messages,
        conversations=conversations,
        random_seed=random_seed,
        on_commit=echo_new,
        branches=branches,
    )
    took = time.perf_counter() - started
    click.echo(
        f"seeded {conversations:,} conversation(s) × {messages:,} messages in {took:.1f} s",
        err=True,
    )
    sys.stderr.flush()
