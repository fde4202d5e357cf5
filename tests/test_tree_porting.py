"""The tree through imports, exports and search: ChatGPT opens on ``current_node``'s path, a
rewound Claude Code session keeps its abandoned attempt as a sibling branch, webchat JSON
carries the whole tree and its active leaf exactly, Markdown prints the active path (or every
branch), and a search hit on another branch opens the page on the path that holds it."""

from __future__ import annotations

import copy
import json
import uuid

from sqlalchemy import select

from webchat import tree
from webchat.conversations import services
from webchat.extensions import db
from webchat.models import Conversation, Message, User
from webchat.porting import chatgpt, claude_code, export, native
from webchat.porting.report import ImportReport
from webchat.rendering import render_markdown
from webchat.search import search
from webchat.seed import seed

from .conftest import fixture_path, sign_up
from .test_porting import CHATGPT_MODERN, CLAUDE, by_source, jsonl, make_user, messages_of


def contents(path: tree.Path | None) -> list[str]:
    """The text of each message on ``path``, root first."""
    assert path is not None
    return [m.content for m in path.messages(0, path.length - 1)]


def only_conversation() -> Conversation:
    return db.session.scalars(select(Conversation)).one()


# --- ChatGPT: the conversation opens on current_node's path --------------------------------


def edited_export() -> dict:
    """The fixture's "Deploying the staging cluster" (a hidden context node, then two turns)
    with its second prompt edited in ChatGPT: a newer sibling prompt with its own answer. No
    conversation of the fixtures has a branch, so this one is built from the real one's shape."""
    data = json.loads(fixture_path(*CHATGPT_MODERN).read_text(encoding="utf-8"))
    raw = copy.deepcopy(next(c for c in data if c.get("title") == "Deploying the staging cluster"))
    mapping = raw["mapping"]
    edit, answer = copy.deepcopy(mapping["user-2"]), copy.deepcopy(mapping["assistant-2"])
    edit.update(id="user-2-edit", children=["assistant-2-edit"])
    edit["message"].update(id="user-2-edit", create_time=1756000100.0)
    edit["message"]["content"]["parts"] = ["And if the rollback hangs?"]
    answer.update(id="assistant-2-edit", parent="user-2-edit", children=[])
    answer["message"].update(id="assistant-2-edit", create_time=1756000101.0)
    answer["message"]["content"]["parts"] = ["Cancel it and redeploy the previous image."]
    mapping.update({"user-2-edit": edit, "assistant-2-edit": answer})
    mapping["assistant-1"]["children"].append("user-2-edit")
    return raw


def test_chatgpt_opens_on_current_node_with_the_edit_a_click_away(ctx):
    raw = edited_export()
    raw["current_node"] = "assistant-2"  # the person went back to the first version
    user = make_user()
    chatgpt.import_bytes(user, json.dumps([raw]).encode())
    conversation = only_conversation()
    rows = by_source(messages_of(conversation.id))
    assert conversation.active_message_id == rows["assistant-2"].id  # not the newest message
    assert contents(tree.active_path(conversation)) == [
        "How do I roll back the deploy?",
        "Run `helm rollback staging`.",
        "And if that fails?",
        "Restore from the last known-good chart.",
    ]
    position = tree.siblings([rows["user-2"]])[rows["user-2"].id]
    assert (position.index, position.count, position.next_id) == (1, 2, rows["user-2-edit"].id)
    leaf = services.switch_branch(conversation, rows["user-2-edit"])
    assert leaf == rows["assistant-2-edit"].id
    assert contents(tree.active_path(conversation))[2:] == [
        "And if the rollback hangs?",
        "Cancel it and redeploy the previous image.",
    ]


def test_chatgpt_current_node_that_is_skipped_opens_on_its_kept_ancestor(ctx):
    raw = edited_export()
    mapping = raw["mapping"]
    thoughts = copy.deepcopy(mapping["assistant-2-edit"])  # an answer cut off while thinking
    thoughts.update(id="thoughts", parent="assistant-2-edit", children=[])
    thoughts["message"].update(id="thoughts", create_time=1756000102.0)
    thoughts["message"]["content"] = {"content_type": "thoughts", "thoughts": []}
    mapping["thoughts"] = thoughts
    mapping["assistant-2-edit"]["children"] = ["thoughts"]
    mapping["assistant-2"]["message"]["create_time"] = 1756000200.0  # the other branch is newer
    raw["current_node"] = "thoughts"
    user = make_user()
    report = chatgpt.import_bytes(user, json.dumps([raw]).encode())
    assert report.skipped["reasoning summary"] == 1
    conversation = only_conversation()
    rows = by_source(messages_of(conversation.id))
    assert conversation.active_message_id == rows["assistant-2-edit"].id


# --- Claude Code: a rewind is a sibling branch, the session's newest line is active --------


def test_claude_code_rewind_is_a_sibling_and_the_newest_line_is_active(ctx):
    user = make_user()
    session = fixture_path(CLAUDE, "dag_compact_after_rewind.jsonl")
    claude_code.import_path(user, session, ImportReport("claude-code"), {})
    conversation = only_conversation()
    rows = by_source(messages_of(conversation.id))
    active = tree.active_path(conversation)
    assert active is not None and active.leaf.id == rows["p1a"].id
    assert [k for m in active.messages(0, active.length - 1) for k in m.meta["source_ids"]] == [
        "u1",
        "a1",
        "b2u",
        "b2a",
        "b2u2",
        "b2a2",
        "cb",  # the compaction boundary, under its logicalParentUuid
        "cs",
        "p1u",
        "p1a",
    ]
    position = tree.siblings([rows["b2u"]])[rows["b2u"].id]
    assert (position.index, position.count, position.previous_id) == (2, 2, rows["b1u"].id)
    assert services.switch_branch(conversation, rows["b1u"]) == rows["b1a"].id
    assert contents(tree.active_path(conversation)) == [
        "Start",
        "Ready",
        "First attempt",
        "First answer",
    ]


def test_claude_code_sidechain_is_never_the_active_leaf(ctx):
    lines = jsonl(CLAUDE, "sidechain_integrated.jsonl")
    main = [line for line in lines if not line.get("isSidechain")]
    lines = lines[:-1]  # the session ends on the Task's result…
    lines[-1]["timestamp"] = "2025-11-19T23:59:00.000Z"  # …after a sub-agent line stamped later
    assert lines[-1]["isSidechain"]
    user = make_user()
    claude_code.import_bytes(user, "\n".join(json.dumps(line) for line in lines).encode())
    conversation = only_conversation()
    rows = by_source(messages_of(conversation.id))
    assert conversation.active_message_id == rows[main[-2]["uuid"]].id  # the Task's result


# --- webchat JSON: the whole tree and its active leaf, exactly ------------------------------


def branched(user: User) -> Conversation:
    """A seeded conversation with branches, feedback on two replies, an edited reply, and the
    active leaf moved off the long line (so it is neither the newest nor the default)."""
    (cid,) = seed(user, messages=24, branches=4, random_seed=9)
    conversation = db.session.get(Conversation, cid)
    assert conversation is not None
    replies = db.session.scalars(
        select(Message)
        .where(Message.conversation_id == cid, Message.role == "assistant")
        .order_by(Message.created_at)
    ).all()
    services.set_feedback(replies[1], "up", "Clear.")
    services.set_feedback(replies[-1], "down")
    services.edit_message(replies[3], "An edited reply.")
    branch = db.session.scalars(
        select(Message)
        .where(Message.conversation_id == cid, Message.meta["branch"].as_boolean())
        .order_by(Message.created_at)
    ).first()
    assert branch is not None
    services.switch_branch(conversation, branch)
    db.session.commit()
    return conversation


def test_json_round_trip_keeps_every_branch_and_the_active_leaf(ctx):
    ada = make_user()
    source = branched(ada)
    document = export.to_json(source)
    bob = make_user("bob@example.com")
    report = native.import_bytes(bob, json.dumps(document).encode())
    assert report.conversations_created == 1 and report.failed == []
    copy_ = db.session.scalars(select(Conversation).where(Conversation.user_id == bob.id)).one()
    before, after = messages_of(source.id), messages_of(copy_.id)
    assert len(before) == len(after) == 24 + 2 * 4 + 1
    # new ids, handed out in the old ids' order
    ids = dict(zip(sorted(m.id for m in before), sorted(m.id for m in after), strict=True))
    assert ids.keys().isdisjoint(ids.values())
    copied = {m.id: m for m in after}
    for old in before:
        new = copied[ids[old.id]]
        assert new.parent_id == (ids[old.parent_id] if old.parent_id else None)
        assert (new.role, new.content, new.meta, new.created_at, new.depth) == (
            old.role,
            old.content,
            old.meta,
            old.created_at,
            old.depth,
        )
        assert (new.feedback_rating, new.feedback_comment) == (
            old.feedback_rating,
            old.feedback_comment,
        )
    assert source.active_message_id is not None
    assert copy_.active_message_id == ids[source.active_message_id]
    assert contents(tree.active_path(copy_)) == contents(tree.active_path(source))
    for old in before:  # the same siblings, in the same order
        was = tree.siblings([old])[old.id]
        now = tree.siblings([copied[ids[old.id]]])[ids[old.id]]
        assert (now.index, now.count) == (was.index, was.count)


# --- Markdown: the active path, or every branch ---------------------------------------------


def test_markdown_prints_the_active_path_or_every_branch(app, client):
    sign_up(client)
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        conversation = branched(ada)
        cid = conversation.id
        path = tree.active_path(conversation)
        active = contents(path)
        everything = messages_of(cid)
        others = [m.content for m in everything if m.content not in active]
        segments = len({m.segment_id for m in everything})
    text = client.get(f"/c/{cid}/export?format=markdown").get_data(as_text=True)
    assert all(m.strip() in text for m in active)
    assert not any(m.strip() in text for m in others)
    assert "## Branch" not in text
    whole = client.get(f"/c/{cid}/export?format=markdown&branches=all").get_data(as_text=True)
    assert all(m.content.strip() in whole for m in everything)
    # the active path, then each segment off it: the long line's rest is one of them
    assert whole.count("\n## Branch ") == segments
    assert "\n## Branch 1 · the active path\n" in whole and "\n### You · " in whole
    first_off = whole.index("\n## Branch 2 · from message ")
    assert whole.index(active[-1].strip()) < first_off  # the active path comes first
    assert client.get(f"/c/{cid}/export?format=markdown&branches=some").status_code == 400
    # the API's download takes the same parameter
    api = client.get(f"/api/v1/conversations/{cid}/export?format=markdown&branches=all")
    assert api.status_code == 200
    assert api.get_data(as_text=True).count("\n## Branch ") == segments
    bad = client.get(f"/api/v1/conversations/{cid}/export?format=markdown&branches=some")
    assert bad.status_code == 400


# --- Search: a hit on another branch opens the path that holds it ---------------------------


def test_a_search_hit_on_another_branch_opens_its_path_highlighted(app, client):
    sign_up(client)
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        (cid,) = seed(ada, messages=200, branches=5, random_seed=3)
        conversation = db.session.get(Conversation, cid)
        assert conversation is not None
        off = db.session.scalars(
            select(Message)
            .where(
                Message.conversation_id == cid,
                Message.meta["branch"].as_boolean(),
                Message.role == "assistant",
            )
            .order_by(Message.created_at)
        ).all()[2]  # the reply on the middle branch of five, off the active path
        assert not tree.active_path(conversation).holds(off)  # type: ignore[union-attr]
        off.content = "a zymurgical answer on a side branch"
        off.content_html = render_markdown(off.content)
        db.session.commit()
        [hit] = search(ada, "zymurgical").items
        assert hit.message_id == off.id
        anchor, hit_id = hit.anchor_id, off.id
        edited = db.session.get(Message, off.parent_id)
        assert edited is not None
        sibling = db.session.scalars(  # the long line's prompt that the edit is a version of
            select(Message.id).where(Message.parent_id == edited.parent_id, Message.id != edited.id)
        ).one()
    results = client.get("/search?q=zymurgical").get_data(as_text=True)
    link = f"/c/{cid}?around={hit_id}#m-{anchor}"
    assert link in results
    page = client.get(link.split("#")[0]).get_data(as_text=True)
    assert f'id="m-{anchor}"' in page  # the page's :target rule highlights it
    assert "zymurgical" in page
    assert f'id="m-{sibling}"' not in page  # the long line's version is not on this path
    with app.app_context():
        still = db.session.get(Conversation, cid)
        assert still is not None and not tree.active_path(still).holds(  # type: ignore[union-attr]
            db.session.get(Message, uuid.UUID(str(hit_id)))  # type: ignore[arg-type]
        )  # reading a branch does not switch to it
