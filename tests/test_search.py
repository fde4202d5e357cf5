"""Search: titles, message text, tool calls and results; ranking, filters, snippets, ownership,
and an index the database keeps in step through edits, deletes and purges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update

from webchat import tree
from webchat.extensions import db
from webchat.models import Conversation, Message, Status, User, new_id
from webchat.search import Filters, parse_filters, search
from webchat.search.query import BadCursor, highlight, index_size, parse_query

from .conftest import sign_up


def make_user(email: str = "ada@example.com") -> User:
    user = User(email=email)
    user.set_password("correct horse")
    db.session.add(user)
    db.session.flush()
    return user


def add_conversation(user: User, title: str, messages: list[dict], **fields) -> Conversation:
    """A conversation with ``messages`` (dicts of Message columns), a minute apart, chained."""
    start = fields.pop("start", datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    conversation = Conversation(
        user_id=user.id, title=title, created_at=start, updated_at=start, **fields
    )
    db.session.add(conversation)
    db.session.flush()
    parent = None
    for i, spec in enumerate(messages):
        message = Message(
            conversation_id=conversation.id,
            parent_id=parent.id if parent else None,
            created_at=start + timedelta(minutes=i),
            updated_at=start + timedelta(minutes=i),
            **spec,
        )
        message.id = new_id()
        tree.attach(message, parent)
        db.session.add(message)
        db.session.flush()
        tree.set_active(conversation, message.id)
        parent = message
    return conversation


def words(results) -> list[str]:
    return [str(hit.snippet) for hit in results.items]


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.rollback()


def test_finds_text_titles_tool_calls_and_tool_results(app, ctx):
    ada = make_user()
    c = add_conversation(
        ada,
        "Kubernetes rollout plan",
        [
            {"role": "user", "content": "How do I roll back the staging deploy?"},
            {
                "role": "assistant",
                "content": "",
                "tool_name": "shell",
                "tool_call": {
                    "id": "call_1",
                    "name": "shell",
                    "arguments": {"cmd": "helm rollback zebrafish"},
                },
            },
            {
                "role": "tool",
                "content": "",
                "tool_name": "shell",
                "tool_result": {"stdout": "Rollback was a success! Happy octopus!", "code": 0},
            },
            {"role": "assistant", "content": "Done: the release is back at revision 3."},
        ],
    )
    db.session.commit()
    title = search(ada, "kubernetes")
    assert [(h.conversation_id, h.message_id) for h in title.items] == [(c.id, None)]
    assert "<mark>Kubernetes</mark>" in str(title.items[0].snippet)

    call = search(ada, "zebrafish").items
    assert len(call) == 1 and call[0].role == "assistant"
    result = search(ada, "octopus").items
    assert len(result) == 1 and result[0].role == "tool"
    assert "<mark>octopus</mark>" in str(result[0].snippet)
    # stemming: "rolled"/"rollback" forms; "roll" finds the user's "roll back"
    assert any(h.role == "user" for h in search(ada, "rolling").items)
    # the call's id is not indexed
    assert search(ada, "call_1").items == []


def test_ranking_titles_and_denser_matches_first(app, ctx):
    ada = make_user()
    add_conversation(
        ada,
        "Notes",
        [
            {
                "role": "user",
                "content": "a single mention of avocado here among many other words " * 3,
            }
        ],
    )
    dense = add_conversation(
        ada, "More notes", [{"role": "user", "content": "avocado avocado avocado toast"}]
    )
    titled = add_conversation(ada, "Avocado", [{"role": "user", "content": "something else"}])
    db.session.commit()
    hits = search(ada, "avocado").items
    assert len(hits) == 3
    assert hits[0].conversation_id == titled.id and hits[0].message_id is None
    assert hits[1].conversation_id == dense.id
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_never_another_users_messages(app, ctx):
    ada, bob = make_user(), make_user("bob@example.com")
    add_conversation(
        ada, "Ada's secrets", [{"role": "user", "content": "the password is swordfish"}]
    )
    mine = add_conversation(
        bob, "Bob's fish", [{"role": "user", "content": "I like swordfish steaks"}]
    )
    db.session.commit()
    hits = search(bob, "swordfish").items
    assert [h.conversation_id for h in hits] == [mine.id]
    assert search(bob, "secrets").items == []
    assert search(bob, "swordfish", Filters(conversation_id=hits[0].conversation_id)).items
    assert len(search(ada, "swordfish").items) == 1


def test_query_syntax_phrases_exclusion_or(app, ctx):
    ada = make_user()
    add_conversation(ada, "t1", [{"role": "user", "content": "the staging cluster is down"}])
    add_conversation(ada, "t2", [{"role": "user", "content": "the cluster of staging servers"}])
    add_conversation(ada, "t3", [{"role": "user", "content": "production cluster fine"}])
    db.session.commit()
    assert len(search(ada, "staging cluster").items) == 2
    assert len(search(ada, '"staging cluster"').items) == 1
    assert len(search(ada, "cluster -staging").items) == 1
    assert len(search(ada, "production OR servers").items) == 2
    # operators and column filters of FTS5 / tsquery are not injectable
    for nasty in ["title:t1", "NEAR(a b)", '"unbalanced', "a & b | !c", "*", "'); drop", "-"]:
        search(ada, nasty)
    assert search(ada, "   ").items == []
    assert parse_query('deploy -"staging cluster" x OR y') == [
        [(False, "deploy"), (True, "staging cluster"), (False, "x")],
        [(False, "deploy"), (True, "staging cluster"), (False, "y")],
    ]


def test_filters_role_model_date(app, ctx):
    ada = make_user()
    add_conversation(
        ada,
        "Lasagne",
        [
            {"role": "user", "content": "lasagne recipe please"},
            {
                "role": "assistant",
                "content": "Here is a lasagne recipe",
                "meta": {"model": "openai/gpt-4o"},
            },
        ],
        model="openai/gpt-4o",
        start=datetime(2023, 1, 10, tzinfo=UTC),
    )
    add_conversation(
        ada,
        "Pasta",
        [{"role": "user", "content": "another lasagne question"}],
        model="demo/echo",
        start=datetime(2024, 6, 1, tzinfo=UTC),
    )
    db.session.commit()
    assert len(search(ada, "lasagne").items) == 4  # a title and three messages
    assert {h.role for h in search(ada, "lasagne", Filters(roles=("user",))).items} == {"user"}
    by_model = search(ada, "lasagne", Filters(model="openai/gpt-4o")).items
    assert len(by_model) == 3 and all(h.model == "openai/gpt-4o" for h in by_model)
    f = parse_filters({"since": "2024-01-01", "until": "2024-06-01"})
    assert [h.created_at.year for h in search(ada, "lasagne", f).items] == [2024]
    f = parse_filters({"until": "2023-12-31", "role": "assistant"})
    assert [h.role for h in search(ada, "lasagne", f).items] == ["assistant"]


def test_pages_with_a_cursor(app, ctx):
    ada = make_user()
    add_conversation(
        ada, "Many", [{"role": "user", "content": f"walrus number {i}"} for i in range(7)]
    )
    db.session.commit()
    first = search(ada, "walrus", limit=3)
    second = search(ada, "walrus", limit=3, cursor=first.next_cursor)
    third = search(ada, "walrus", limit=3, cursor=second.next_cursor)
    ids = [h.message_id for r in (first, second, third) for h in r.items]
    assert len(ids) == 7 == len(set(ids)) and third.next_cursor is None
    with pytest.raises(BadCursor):
        search(ada, "walrus", cursor="not-a-cursor")


def test_index_follows_edits_deletes_trash_and_purge(app, ctx):
    ada = make_user()
    c = add_conversation(ada, "Garden", [{"role": "user", "content": "the tomatoes are ripe"}])
    other = add_conversation(ada, "Kept", [{"role": "user", "content": "tomatoes elsewhere"}])
    db.session.commit()
    message = db.session.scalars(select(Message).where(Message.conversation_id == c.id)).one()
    assert len(search(ada, "tomatoes").items) == 2

    message.content = "the cucumbers are ripe"  # an edit
    db.session.commit()
    assert len(search(ada, "tomatoes").items) == 1
    assert search(ada, "cucumbers").items[0].message_id == message.id

    c.title = "Allotment"  # a rename
    db.session.commit()
    assert search(ada, "garden").items == []
    assert search(ada, "allotment").items[0].message_id is None

    c.deleted_at = datetime.now(UTC)  # Trash hides it
    db.session.commit()
    assert search(ada, "cucumbers").items == []
    c.deleted_at = None
    db.session.commit()
    assert len(search(ada, "cucumbers").items) == 1

    before = index_size()
    db.session.execute(delete(Message).where(Message.id == message.id))
    db.session.commit()
    assert search(ada, "cucumbers").items == [] and index_size() == before - 1

    db.session.execute(delete(Conversation).where(Conversation.id == c.id))  # a purge
    db.session.commit()
    assert search(ada, "allotment").items == [] and index_size() == before - 2
    if db.engine.dialect.name == "sqlite":  # nothing left behind in the FTS table either
        fts_rows = db.session.execute(text("SELECT count(*) FROM search_fts")).scalar()
        assert fts_rows == index_size()
    assert len(search(ada, "tomatoes").items) == 1 and other.id


def test_streaming_messages_are_indexed_when_final(app, ctx):
    """Text and thinking (migration 0010) alike: nothing while the message streams."""
    ada = make_user()
    c = add_conversation(
        ada, "Live", [{"role": "assistant", "content": "", "status": Status.STREAMING}]
    )
    db.session.commit()
    message_id = db.session.scalars(select(Message.id).where(Message.conversation_id == c.id)).one()
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(content=Message.content + "partial narwhal", reasoning="thinking of an ocelot")
    )
    db.session.commit()
    assert search(ada, "narwhal").items == search(ada, "ocelot").items == []  # not while it streams
    db.session.execute(
        update(Message).where(Message.id == message_id).values(status=Status.COMPLETE)
    )
    db.session.commit()
    assert [h.message_id for h in search(ada, "narwhal").items] == [message_id]
    assert [(h.message_id, h.in_reasoning) for h in search(ada, "ocelot").items] == [
        (message_id, True)
    ]
    # thinking stored after the message is final is indexed too (UPDATE OF reasoning)
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(reasoning=Message.reasoning + " and a margay")
    )
    db.session.commit()
    assert [h.in_reasoning for h in search(ada, "margay").items] == [True]


def test_snippets_are_sanitized(app, ctx):
    ada = make_user()
    add_conversation(
        ada,
        "x",
        [{"role": "user", "content": "<script>alert('pelican')</script> & <b>pelican</b>"}],
    )
    db.session.commit()
    snippet = str(search(ada, "pelican").items[0].snippet)
    assert "<script>" not in snippet and "<b>" not in snippet
    assert "<mark>pelican</mark>" in snippet
    if db.engine.dialect.name == "sqlite":  # PostgreSQL's ts_headline drops tags from the text
        assert "&lt;script&gt;" in snippet
    assert str(highlight("a \x02b\x03 \x03c \x02d")) == "a <mark>b</mark> c <mark>d</mark>"


def test_results_page_and_sidebar_box(app, client):
    sign_up(client)
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        c = add_conversation(
            ada, "Trip to Lisbon", [{"role": "user", "content": "pastel de nata <em>recipe</em>"}]
        )
        db.session.commit()
        message_id = db.session.scalars(
            select(Message.id).where(Message.conversation_id == c.id)
        ).one()
        cid = c.id
    page = client.get("/").get_data(as_text=True)
    assert 'action="/search"' in page
    page = client.get("/search?q=nata").get_data(as_text=True)
    assert f"/c/{cid}?around={message_id}#m-{message_id}" in page
    assert "<mark>nata</mark>" in page and "<em>" not in page
    page = client.get("/search?q=lisbon").get_data(as_text=True)
    assert f'href="/c/{cid}"' in page
    assert client.get("/search?q=nata&role=wizard").status_code == 400
    assert client.get("/search?q=nata&since=yesterday").status_code == 400
    assert "Nothing matches" in client.get("/search?q=nata&role=assistant").get_data(as_text=True)


def test_migration_backfills_existing_rows(app, ctx, tmp_path):
    """Downgrading drops the index; upgrading again rebuilds it from the rows present."""
    from flask_migrate import downgrade, upgrade

    from .conftest import ROOT

    ada = make_user()
    add_conversation(ada, "Backfilled title", [{"role": "user", "content": "ocelot"}])
    db.session.commit()
    db.session.remove()
    downgrade(directory=str(ROOT / "migrations"), revision="0001")
    upgrade(directory=str(ROOT / "migrations"))
    ada = db.session.scalars(select(User)).one()
    assert len(search(ada, "ocelot").items) == 1
    assert len(search(ada, "backfilled").items) == 1
    assert uuid.UUID(str(search(ada, "ocelot").items[0].conversation_id))


def test_a_broad_query_ranks_its_newest_matches(ctx, monkeypatch):
    from webchat.search import query

    ada = make_user()
    make_user("bob@example.com")
    c = add_conversation(
        ada, "Many", [{"role": "user", "content": f"heron {'heron ' * i}n{i}"} for i in range(6)]
    )
    db.session.commit()
    everything = search(ada, "heron")
    assert not everything.windowed and len(everything.items) == 6
    monkeypatch.setattr(query, "RANK_WINDOW", 3)
    newest = search(ada, "heron")
    assert newest.windowed and len(newest.items) == 3
    messages = db.session.scalars(
        select(Message).where(Message.conversation_id == c.id).order_by(Message.created_at)
    ).all()
    assert {h.message_id for h in newest.items} == {m.id for m in messages[-3:]}
    assert not search(ada, "heron n0").windowed  # a narrower query ranks all its matches


def test_a_hit_inside_a_reply_opens_the_page_at_that_reply(app, client):
    from webchat.porting import claude_code
    from webchat.porting.report import ImportReport

    from .conftest import fixture_path

    sign_up(client)
    with app.app_context():
        ada = db.session.scalars(select(User)).one()
        path = fixture_path("claude-code", "hello-world-script.jsonl")
        claude_code.import_path(ada, path, ImportReport(format="claude-code"), {})
        [hit] = [h for h in search(ada, "created successfully").items if h.role == "tool"]
        tool = db.session.get(Message, hit.message_id)
        first = db.session.scalars(
            select(Message).where(Message.run_id == tool.run_id).order_by(Message.created_at)
        ).first()
        assert hit.anchor_id == first.id != tool.id
    page = client.get("/search?q=created+successfully").get_data(as_text=True)
    link = f"/c/{hit.conversation_id}?around={tool.id}#m-{first.id}"
    assert link in page
    target = client.get(link.split("#")[0]).get_data(as_text=True)
    assert f'id="m-{first.id}"' in target
