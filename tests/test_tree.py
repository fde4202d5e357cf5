"""The conversation as a tree: placing messages, paths, newest leaves, and the services that
edit, regenerate, switch, fork and rate — on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from webchat import tree
from webchat.auth import services as accounts
from webchat.conversations import paging, services
from webchat.errors import InvalidInput
from webchat.extensions import db
from webchat.models import Conversation, Message, Role, Run, Segment, Status, new_id
from webchat.streaming import runs

from .conftest import ROOT, wait_for_runs

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def user():
    found = accounts.find_user("ada@example.com")
    return found or accounts.create_user("ada@example.com", "correct horse battery")


def conversation_of(owner) -> Conversation:
    conversation = services.create_conversation(owner)
    db.session.commit()
    return conversation


def add(conversation: Conversation, parent: Message | None, role: str = Role.USER, **kw):
    """A complete message under ``parent``, placed and committed, made the active leaf."""
    at = (parent.created_at if parent else START) + timedelta(seconds=1)
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        parent_id=parent.id if parent else None,
        role=role,
        content=kw.pop("content", f"{role} text"),
        status=Status.COMPLETE,
        created_at=kw.pop("at", at),
        **kw,
    )
    message.updated_at = message.created_at
    tree.attach(message, parent)
    db.session.add(message)
    db.session.flush()
    tree.set_active(conversation, message.id)
    db.session.commit()
    return message


def chain(conversation, parent, count):
    out = []
    for i in range(count):
        parent = add(conversation, parent, Role.USER if i % 2 == 0 else Role.ASSISTANT)
        out.append(parent)
    return out


def path_ids(conversation) -> list[uuid.UUID]:
    path = tree.active_path(conversation)
    assert path is not None
    return [m.id for m in path.messages(0, path.leaf.depth)]


def test_first_child_continues_its_parents_segment_later_ones_start_their_own(ctx):
    conversation = conversation_of(user())
    line = chain(conversation, None, 6)
    assert {m.segment_id for m in line} == {line[0].segment_id}
    assert [m.depth for m in line] == [0, 1, 2, 3, 4, 5]
    branch = add(conversation, line[2], content="an edit")
    assert branch.segment_id != line[0].segment_id and branch.depth == 3
    below = add(conversation, branch, Role.ASSISTANT)
    assert below.segment_id == branch.segment_id
    path = tree.path_to(below)
    assert [(s.lo, s.hi) for s in path.spans] == [(0, 2), (3, 4)]
    assert path_ids(conversation) == [*(m.id for m in line[:3]), branch.id, below.id]
    assert not path.holds(line[3]) and path.holds(line[1])


def test_two_children_placed_at_once_never_share_a_depth_of_one_segment(ctx):
    conversation = conversation_of(user())
    (root,) = chain(conversation, None, 1)
    first = add(conversation, root, Role.ASSISTANT)
    second = add(conversation, root, Role.ASSISTANT)
    assert first.segment_id == root.segment_id and second.segment_id != root.segment_id
    with pytest.raises(Exception, match="(?i)unique|duplicate"):  # the index guards the rule
        db.session.execute(
            text("UPDATE messages SET segment_id = :s, depth = 1 WHERE id = :m"),
            {
                "s": root.segment_id.hex if db.engine.name == "sqlite" else root.segment_id,
                "m": second.id.hex if db.engine.name == "sqlite" else second.id,
            },
        )
    db.session.rollback()


def test_newest_leaf_under_a_message_on_the_long_line_is_its_tail(ctx):
    conversation = conversation_of(user())
    line = chain(conversation, None, 40)
    edit = add(
        conversation,
        line[1],
        content="edited prompt",
        at=line[1].created_at + timedelta(milliseconds=1),
    )
    edit_reply = add(conversation, edit, Role.ASSISTANT)
    # Branches further down, older than the tail: the tail stays the newest leaf.
    middle = add(conversation, line[20], at=line[20].created_at + timedelta(milliseconds=1))
    assert tree.newest_leaf(line[2]) == line[-1].id
    assert tree.newest_leaf(edit) == edit_reply.id
    assert tree.newest_leaf(line[-1]) == line[-1].id
    assert tree.newest_leaf(line[21]) == line[-1].id  # a sibling of ``middle``
    assert tree.newest_leaf(middle) == middle.id
    # Switching back from the branch near the root lands at the tail of the long line.
    services.switch_branch(conversation, edit)
    db.session.commit()
    assert conversation.active_message_id == edit_reply.id
    services.switch_branch(conversation, line[2])
    db.session.commit()
    assert conversation.active_message_id == line[-1].id
    assert path_ids(conversation) == [m.id for m in line]


def test_a_newer_branch_below_a_message_is_its_newest_leaf(ctx):
    conversation = conversation_of(user())
    line = chain(conversation, None, 10)
    late = add(conversation, line[5], at=line[-1].created_at + timedelta(minutes=5))
    late_reply = add(conversation, late, Role.ASSISTANT)
    assert tree.newest_leaf(line[2]) == late_reply.id
    assert tree.newest_leaf(line[0]) == late_reply.id
    assert tree.newest_leaf(line[6]) == line[-1].id


def test_siblings_are_counted_oldest_first(ctx):
    conversation = conversation_of(user())
    root, answer = chain(conversation, None, 2)
    second = add(conversation, root, Role.ASSISTANT)
    third = add(conversation, root, Role.ASSISTANT)
    other_root = add(conversation, None)
    info = tree.siblings([answer, second, third, root, other_root])
    assert (info[answer.id].index, info[answer.id].count) == (1, 3)
    assert info[answer.id].previous_id is None and info[answer.id].next_id == second.id
    assert (info[third.id].index, info[third.id].previous_id, info[third.id].next_id) == (
        3,
        second.id,
        None,
    )
    assert (info[root.id].index, info[root.id].count, info[root.id].next_id) == (
        1,
        2,
        other_root.id,
    )


def ask(conversation, content="Hello", **kw):
    message, run = services.send_message(conversation, content, **kw)
    db.session.commit()
    return message, run


def finish(app, run):
    db.session.commit()
    runs.launch(run.id, app)
    wait_for_runs(app)
    db.session.expire_all()
    return db.session.get(Message, run.message_id)


def test_edit_regenerate_switch_and_send_keep_every_version(ctx):
    app = ctx
    conversation = conversation_of(user())
    question, run = ask(conversation, "What is a tree?")
    first = finish(app, run)
    regenerated = finish(app, services.regenerate(first))
    assert regenerated.parent_id == question.id and regenerated.id != first.id
    assert conversation.active_message_id == regenerated.id
    again = finish(app, services.regenerate(question))  # a user message: another reply to it
    info = tree.siblings([first, regenerated, again])
    assert [info[m.id].index for m in (first, regenerated, again)] == [1, 2, 3]
    assert {info[m.id].count for m in (first, regenerated, again)} == {3}

    edited, run = services.edit_message(question, "What is a forest?")
    db.session.commit()
    edited_reply = finish(app, run)
    assert edited.parent_id is None and edited.meta["edited_from"] == str(question.id)
    assert db.session.get(Message, question.id).content == "What is a tree?"  # never changed
    assert path_ids(conversation) == [edited.id, edited_reply.id]
    assert "forest" in edited_reply.content

    version, none = services.edit_message(edited_reply, "A better answer.")
    db.session.commit()
    assert none is None and version.parent_id == edited.id
    assert version.meta["edited_from"] == str(edited_reply.id) and version.content_html
    assert path_ids(conversation) == [edited.id, version.id]

    services.switch_branch(conversation, first)
    db.session.commit()
    assert path_ids(conversation) == [question.id, first.id]
    follow_up, run = ask(conversation, "And a leaf?")
    assert follow_up.parent_id == first.id
    reply = finish(app, run)
    # The model's context is exactly the active path.
    assert [m.id for m in runs.history(reply.id)] == [question.id, first.id, follow_up.id, reply.id]
    total = db.session.scalar(
        select(func.count()).select_from(Message).where(Message.conversation_id == conversation.id)
    )
    assert total == 9  # nothing was overwritten or deleted


def test_a_reply_streaming_on_a_branch_left_does_not_pull_the_page_back(ctx):
    conversation = conversation_of(user())
    question, run = ask(conversation)
    reply_id = run.message_id
    other = add(conversation, None, content="another line")
    # The run adds a tool call under its reply while the person reads another branch.
    tool_call = runs.store.add_message(run.id, reply_id, Role.TOOL, content="result")
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.active_message_id == other.id
    assert tree.newest_leaf(question) == tool_call


def test_a_second_run_in_a_conversation_is_refused_with_409(ctx):
    conversation = conversation_of(user())
    question, run = ask(conversation)  # not launched: the reply stays pending
    before = db.session.scalar(select(func.count()).select_from(Message))
    for action in (
        lambda: services.send_message(conversation, "more"),
        lambda: services.regenerate(question),
        lambda: services.edit_message(question, "edited"),
    ):
        with pytest.raises(InvalidInput) as caught:
            action()
        assert caught.value.status == 409 and "streaming" in caught.value.message
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Message)) == before
    db.session.execute(
        Run.__table__.update().where(Run.__table__.c.id == run.id).values(status="complete")
    )
    db.session.commit()


def test_bad_edits_and_feedback_are_refused_and_change_nothing(ctx):
    app = ctx
    conversation = conversation_of(user())
    question, run = ask(conversation)
    reply = finish(app, run)
    tool = add(conversation, reply, Role.TOOL, content="42")
    cases = [
        (lambda: services.edit_message(question, "   "), 400),
        (lambda: services.edit_message(question, "x" * 100_001), 413),
        (lambda: services.edit_message(tool, "edited"), 400),
        (lambda: services.regenerate(tool), 400),
        (lambda: services.regenerate(reply, model="nope/none"), 400),
        (lambda: services.set_feedback(reply, "sideways"), 400),
        (lambda: services.set_feedback(question, "up"), 400),
        (lambda: services.set_feedback(reply, "down", "y" * 2001), 400),
        (lambda: services.send_message(conversation, "hi", parent_id="not-an-id"), 400),
        (lambda: services.send_message(conversation, "hi", parent_id=uuid.uuid4()), 404),
    ]
    count = db.session.scalar(select(func.count()).select_from(Message))
    for action, status in cases:
        with pytest.raises(InvalidInput) as caught:
            action()
        assert caught.value.status == status, caught.value.message
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Message)) == count

    elsewhere = conversation_of(user())
    with pytest.raises(InvalidInput) as caught:
        services.send_message(elsewhere, "hi", parent_id=question.id)
    assert caught.value.status == 400 and caught.value.field == "parent_id"
    db.session.rollback()

    services.set_feedback(reply, "up", "  Clear and right.  ")
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Message, reply.id)
    assert (stored.feedback_rating, stored.feedback_comment) == ("up", "Clear and right.")
    services.set_feedback(stored, None, "")
    db.session.commit()
    assert (stored.feedback_rating, stored.feedback_comment) == (None, None)


def test_fork_copies_the_path_to_a_message_with_its_runs(ctx):
    app = ctx
    owner = user()
    conversation = conversation_of(owner)
    question, run = ask(conversation, "First")
    first = finish(app, run)
    follow, run = ask(conversation, "Second")
    second = finish(app, run)
    finish(app, services.regenerate(second))
    copy = services.fork(owner, second)
    db.session.commit()
    assert copy.meta["forked_from"] == {
        "conversation_id": str(conversation.id),
        "message_id": str(second.id),
    }
    copied = [db.session.get(Message, i) for i in path_ids(copy)]
    originals = [question, first, follow, second]
    assert [(m.role, m.content) for m in copied] == [(m.role, m.content) for m in originals]
    assert all(
        c.id != o.id and c.conversation_id == copy.id
        for c, o in zip(copied, originals, strict=True)
    )
    assert copied[1].run_id is not None and copied[1].run_id != first.run_id
    assert db.session.get(Run, copied[1].run_id).conversation_id == copy.id
    assert (
        db.session.scalar(
            select(func.count()).select_from(Message).where(Message.conversation_id == copy.id)
        )
        == 4
    )
    # Writing on in the fork leaves the original alone.
    reply = finish(app, ask(copy, "Third, in the fork")[1])
    assert [m.id for m in runs.history(reply.id)][:4] == [c.id for c in copied]


def test_pages_of_the_active_path_skip_other_branches(ctx):
    conversation = conversation_of(user())
    line = chain(conversation, None, 30)
    add(conversation, line[9], content="edit", at=line[9].created_at + timedelta(milliseconds=1))
    services.switch_branch(conversation, line[10])
    db.session.commit()
    window = paging.window(conversation, limit=10)
    assert [m.id for m in window.messages] == [m.id for m in line[20:]]
    older = paging.window(conversation, limit=10, before=str(window.older.id), fragment=True)
    assert [m.id for m in older.messages] == [m.id for m in line[10:20]]
    items, more = paging.older(tree.active_path(conversation), None, 5, offset=25)
    assert [m.id for m in items] == [m.id for m in line[:5]] and not more


# --- The migration, from the previous schema with data in it --------------------------------


def test_migration_places_existing_messages_and_sets_the_active_leaf(make_app, tmp_path):
    from flask_migrate import downgrade, upgrade

    app = make_app()
    with app.app_context():
        downgrade(directory=str(ROOT / "migrations"), revision="0005")
        conn = db.session.connection()
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash, is_admin, created_at) "
                "VALUES ('old@example.com', 'x', false, :t)"
            ),
            {"t": START.replace(tzinfo=None)},
        )
        uid = conn.execute(text("SELECT id FROM users")).scalar()
        cid = uuid.uuid4()
        ids = [uuid.uuid4() for _ in range(5)]
        key = (lambda u: u.hex) if db.engine.name == "sqlite" else (lambda u: u)
        conn.execute(
            text(
                "INSERT INTO conversations (id, user_id, title, model, metadata, pinned, "
                "created_at, updated_at) VALUES (:id, :u, 'Old', 'demo/echo', '{}', false, "
                ":t, :t)"
            ),
            {"id": key(cid), "u": uid, "t": START.replace(tzinfo=None)},
        )
        # question → reply (retried: a second reply, a sibling) → follow-up under the retry
        parents = [None, 0, 0, 2, 3]
        for i, (mid, parent) in enumerate(zip(ids, parents, strict=True)):
            conn.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                    "status, metadata, created_at, updated_at) VALUES (:id, :c, :p, :r, :x, "
                    "'complete', '{}', :t, :t)"
                ),
                {
                    "id": key(mid),
                    "c": key(cid),
                    "p": key(ids[parent]) if parent is not None else None,
                    "r": "user" if i in (0, 3) else "assistant",
                    "x": f"message {i}",
                    "t": (START + timedelta(seconds=i)).replace(tzinfo=None),
                },
            )
        db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))
        db.session.expire_all()
        conversation = db.session.get(Conversation, cid)
        assert conversation.active_message_id == ids[4]
        assert path_ids(conversation) == [ids[0], ids[2], ids[3], ids[4]]
        messages = {m.id: m for m in db.session.scalars(select(Message))}
        assert [messages[i].depth for i in ids] == [0, 1, 1, 2, 3]
        assert messages[ids[1]].segment_id == messages[ids[0]].segment_id  # the oldest child
        assert messages[ids[2]].segment_id != messages[ids[0]].segment_id
        assert tree.newest_leaf(messages[ids[1]]) == ids[1]
        assert db.session.scalar(select(func.count()).select_from(Segment)) == 2
