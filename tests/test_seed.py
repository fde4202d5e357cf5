"""``flask seed``: many complete messages, fast, with their HTML rendered once per text."""

from __future__ import annotations

import re
import uuid
from statistics import mean

from sqlalchemy import func, select

from webchat import seed as seeding
from webchat.auth import services as accounts
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Status
from webchat.rendering import render_markdown

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def make_user(app, email: str = "ada@example.com") -> None:
    with app.app_context():
        accounts.create_user(email, "correct horse")
        db.session.commit()


def test_seed_command_fills_conversations_and_prints_their_ids(app, runner):
    make_user(app)
    result = runner.invoke(
        args=["seed", "ada@example.com", "--messages", "25", "--conversations", "3"]
    )
    assert result.exit_code == 0, result.output
    ids = [line for line in result.stdout.splitlines() if UUID.match(line)]
    assert len(ids) == 3
    with app.app_context():
        for cid in ids:
            conversation = db.session.get(Conversation, uuid.UUID(cid))
            assert conversation.user.email == "ada@example.com"
            assert conversation.message_count == 25  # kept by the database's triggers
            messages = db.session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.created_at, Message.id)
            ).all()
            assert [m.role for m in messages] == [Role.USER, Role.ASSISTANT] * 12 + [Role.USER]
            assert {m.status for m in messages} == {Status.COMPLETE}
            assert messages[0].parent_id is None
            assert all(b.parent_id == a.id for a, b in zip(messages, messages[1:], strict=False))
            assert conversation.updated_at == messages[-1].created_at
            for m in messages:
                if m.role == Role.ASSISTANT:
                    assert m.content_html == render_markdown(m.content)
                    run = db.session.get(Run, m.run_id)  # the finished run that wrote it
                    assert (run.message_id, run.user_message_id) == (m.id, m.parent_id)
                    assert run.status == Status.COMPLETE and run.conversation_id == conversation.id
                else:
                    assert m.run_id is None
            assert 200 <= mean(len(m.content) for m in messages) <= 420
            assert len({m.content for m in messages}) > 15  # varied text


def test_seed_renders_each_distinct_text_once(app, monkeypatch):
    make_user(app)
    calls: list[str] = []

    def counting(text: str) -> str:
        calls.append(text)
        return render_markdown(text)

    monkeypatch.setattr(seeding, "render_markdown", counting)
    with app.app_context():
        user = accounts.find_user("ada@example.com")
        (cid,) = seeding.seed(user, messages=3000, random_seed=7)
        assistant = db.session.scalar(
            select(func.count(Message.id)).where(
                Message.conversation_id == cid, Message.role == Role.ASSISTANT
            )
        )
    assert assistant == 1500
    assert len(calls) == len(set(calls)) <= seeding.POOL < assistant


def test_seed_commits_in_batches_larger_than_one_statement(app):
    make_user(app)
    committed: list[int] = []
    with app.app_context():
        user = accounts.find_user("ada@example.com")
        ids = seeding.seed(
            user,
            messages=9,
            conversations=2 * seeding.BATCH // 9 + 3,
            on_commit=lambda done: committed.append(len(done)),
        )
        counts = db.session.execute(
            select(Conversation.message_count, func.count(Message.id))
            .join(Message, Message.conversation_id == Conversation.id)
            .group_by(Conversation.id)
        ).all()
    assert committed[-1] == len(ids)
    assert len(counts) == len(ids) and all(a == b == 9 for a, b in counts)


def test_seed_unknown_account_fails(runner):
    result = runner.invoke(args=["seed", "nobody@example.com", "--messages", "2"])
    assert result.exit_code != 0 and "No account" in result.output
